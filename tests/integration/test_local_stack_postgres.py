"""`AIRFLOW_OBS_DB=postgres make up`: a private PostgreSQL 15 cluster in the stack's folder, on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest

from local_stack.airflow_env import metadata_db_url
from local_stack.health import AIRFLOW_COMPONENTS
from local_stack.programs import postgres_data_dir
from tests.integration.conftest import LocalStack, alive, http_json, processes_of, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres_stack() -> Iterator[LocalStack]:
    with running_stack({"AIRFLOW_OBS_DB": "postgres"}) as stack:
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
