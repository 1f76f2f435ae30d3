"""`AIRFLOW_OBS_DB=postgres make up`: a private PostgreSQL 15 cluster in the stack's folder, on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest

from local_stack.airflow_env import metadata_db_url
from local_stack.health import AIRFLOW_COMPONENTS
from local_stack.incidents.arrivals import alertmanager_arrivals
from local_stack.incidents.runner import run_scenario
from local_stack.incidents.scenarios import COMPRESSED_THRESHOLDS, SCENARIOS
from local_stack.programs import postgres_data_dir
from tests.integration.conftest import LocalStack, alive, http_json, processes_of, running_stack
from tests.integration.incident_checks import FAST_ALERTMANAGER, assert_links_work, assert_once_per_sink

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres_stack() -> Iterator[LocalStack]:
    # Compressed alert timings, for the metadata-DB incident below; nothing else here depends on them.
    with running_stack({"AIRFLOW_OBS_DB": "postgres", **COMPRESSED_THRESHOLDS, **FAST_ALERTMANAGER}) as stack:
        yield stack


def test_airflow_runs_on_the_private_postgres_cluster(postgres_stack: LocalStack) -> None:
    settings = postgres_stack.settings
    assert (postgres_data_dir(settings) / "PG_VERSION").read_text().strip() == "15"
    status, report = http_json(postgres_stack.url("airflow") + "/api/v2/monitor/health")
    assert status == 200
    assert all(report[name]["status"] == "healthy" for name in AIRFLOW_COMPONENTS), report

    url = metadata_db_url(settings)
    assert url.startswith("postgresql+psycopg2://airflow:") and f"127.0.0.1:{settings.ports['postgres']}/" in url
    connection = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM alembic_version")
            assert cursor.fetchone()[0] == 1
    finally:
        connection.close()


def test_the_exporter_reads_the_postgres_metadata_db(postgres_stack: LocalStack) -> None:
    status, metrics = http_json(postgres_stack.url("exporter") + "/metrics")
    assert status == 200
    assert "airflow_up 1.0" in metrics


def test_the_metadata_db_stopping_pages_once_and_resolves_when_it_is_back(postgres_stack: LocalStack) -> None:
    scenario = SCENARIOS["metadata_db_stopped"]
    report = run_scenario(postgres_stack.settings, scenario, fire_timeout=180, resolve_timeout=300, settle_seconds=8)

    assert report.expected_sinks == {"AirflowMetadataDBUnreachable": {"slack", "email", "pager"}}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)
    assert_links_work(postgres_stack, next(arrival for arrival in report.firing if arrival.sink == "pager"))
    # Nothing the outage caused paged besides it: the DB alert explains the components' silence.
    others = [a for a in alertmanager_arrivals(postgres_stack.settings)
              if report.injected_at <= a.received_at < report.recovered_at and a.status == "firing"
              and a.alertname != "AirflowMetadataDBUnreachable" and a.alertname.startswith("Airflow")]  # fmt: skip
    assert others == []


def test_status_lists_postgres_and_down_stops_it_keeping_the_data(postgres_stack: LocalStack) -> None:
    result = postgres_stack.run("status")
    assert result.returncode == 0, result.stdout
    assert any(line.startswith("ok") and " postgres " in line for line in result.stdout.splitlines())
    postgres_pid = postgres_stack.program_pids()["postgres"]

    assert postgres_stack.run("down", timeout=150).returncode == 0

    assert not alive(postgres_pid)
    assert processes_of(postgres_stack.settings.home) == []
    assert (postgres_data_dir(postgres_stack.settings) / "PG_VERSION").exists()

    # Up again on the same folder: the cluster and its database are reused, not recreated.
    result = postgres_stack.run("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created a private PostgreSQL" not in result.stdout
