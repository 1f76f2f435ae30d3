"""The stack-health DAG against real loopback HTTP servers standing in for the stack's components."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, free_port
from tests.dags.conftest import run_dag, task_states
from tests.dags.http_standins import (
    HEALTH_DAG,
    REPORT_DAG,
    VIEWER,
    Route,
    _json,
    _text,
    serving,
)


def ready_route(path: str, answer: str) -> Route:
    def route(method, request_path, query, headers, body):
        return _text(answer) if method == "GET" and request_path == path else _text("not found", 404)

    return route


def airflow_health_route(method, path, query, headers, body):
    from airflow.api_fastapi.core_api.datamodels.monitor import HealthInfoResponse

    if path != "/api/v2/monitor/health":
        return _text("not found", 404)
    beat = datetime.now(UTC).isoformat()
    report = HealthInfoResponse.model_validate(
        {
            "metadatabase": {"status": "healthy"},
            "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": beat},
            "triggerer": {"status": "healthy", "latest_triggerer_heartbeat": beat},
            "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": beat},
        }
    )
    return _json(report.model_dump(mode="json"))


@pytest.fixture
def recorded_stats(monkeypatch: pytest.MonkeyPatch):
    """Airflow's (Task SDK) Stats client, with a backend that remembers gauges and timings."""
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

    class Recorder(NoStatsLogger):
        gauges: dict[str, float] = {}
        timings: dict[str, float] = {}

        @classmethod
        def gauge(cls, stat, value, *args, **kwargs):
            cls.gauges[stat] = value

        @classmethod
        def timing(cls, stat, dt, *args, **kwargs):
            cls.timings[stat] = dt

    Recorder.gauges, Recorder.timings = {}, {}
    monkeypatch.setattr(stats, "_backend", Recorder())
    return Recorder


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Stand-ins of Airflow's API, Prometheus, Alertmanager and the exporter, behind the suite's connection ids."""
    with contextlib.ExitStack() as servers:
        urls = {
            "airflow_api": servers.enter_context(serving(airflow_health_route)),
            "prometheus": servers.enter_context(serving(ready_route("/-/ready", "Prometheus Server is Ready."))),
            "alertmanager": servers.enter_context(serving(ready_route("/-/ready", "OK"))),
            "airflow_exporter": servers.enter_context(serving(ready_route("/healthz", "ok"))),
        }
        for conn_id, url in urls.items():
            url = url.replace("http://", f"http://{VIEWER}:s3cret%2Fpw@") if conn_id == "airflow_api" else url
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", url)
        yield urls


def stack_health_rows(warehouse_path: Path) -> dict[str, tuple[int, float | None, str]]:
    with contextlib.closing(sqlite3.connect(warehouse_path)) as db:
        rows = db.execute("SELECT checked_at, component, healthy, latency_ms, detail FROM stack_health").fetchall()
    assert len({row[0] for row in rows}) == 1, f"one check per run expected: {rows}"
    return {component: (healthy, latency, detail) for _, component, healthy, latency, detail in rows}


def checked_at(warehouse_path: Path) -> str:
    with contextlib.closing(sqlite3.connect(warehouse_path)) as db:
        return db.execute("SELECT DISTINCT checked_at FROM stack_health").fetchone()[0]


def test_the_monitoring_dag_files_import_cleanly_with_their_tasks(dagbag) -> None:
    mine = [REPO_ROOT / "dags" / f"{dag_id}.py" for dag_id in (HEALTH_DAG, REPORT_DAG)]
    errors = {path: error for path, error in dagbag.import_errors.items() if "monitoring" in path}
    assert errors == {}
    assert all(dagbag.get_dag(path.stem) is not None for path in mine)
    assert sorted(dagbag.get_dag(HEALTH_DAG).task_ids) == [
        "check_stack",
        "emit_health_metrics",
        "fail_if_unhealthy",
        "record_health",
    ]
    assert sorted(dagbag.get_dag(REPORT_DAG).task_ids) == [
        "fetch_dag_runs",
        "fetch_failed_tasks",
        "summarise_stack_health",
        "write_status_report",
    ]


def test_a_healthy_stack_gives_a_successful_run_five_healthy_rows_and_gauges_of_one(
    dagbag, stack, warehouse_path, data_dir, recorded_stats
) -> None:
    dag_run = run_dag(dagbag, HEALTH_DAG, logical_date=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))

    assert dag_run.state == "success", task_states(dag_run)
    rows = stack_health_rows(warehouse_path)
    assert sorted(rows) == ["airflow_api", "alertmanager", "exporter", "metadata_db", "prometheus"]
    assert {component: healthy for component, (healthy, _, _) in rows.items()} == dict.fromkeys(rows, 1)
    assert rows["airflow_api"][2] == "scheduler, triggerer, dag_processor healthy"
    assert rows["metadata_db"][2] == "metadatabase=healthy (Airflow's health report)"
    assert all(latency is not None and latency >= 0 for c, (_, latency, _) in rows.items() if c != "metadata_db")
    ours = {name: value for name, value in recorded_stats.gauges.items() if name.startswith("airflow_obs.")}
    assert ours == {f"airflow_obs.stack_health.{component}": 1 for component in rows}
    assert {name for name in recorded_stats.timings if name.startswith("airflow_obs.")} == {
        f"airflow_obs.stack_health.{c}.latency" for c in ("airflow_api", "alertmanager", "exporter", "prometheus")
    }


def test_a_component_that_is_down_is_recorded_unhealthy_and_the_final_task_fails_naming_it(
    dagbag, stack, warehouse_path, data_dir, recorded_stats, monkeypatch, capfd
) -> None:
    dead_port = free_port()  # nothing listens there: Prometheus is down
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS", f"http://127.0.0.1:{dead_port}")

    dag_run = run_dag(dagbag, HEALTH_DAG, logical_date=datetime(2026, 3, 1, 12, 5, tzinfo=UTC))

    assert dag_run.state == "failed"
    assert task_states(dag_run) == {
        "check_stack": "success",
        "record_health": "success",
        "emit_health_metrics": "success",
        "fail_if_unhealthy": "failed",
    }
    rows = stack_health_rows(warehouse_path)
    healthy, latency, detail = rows["prometheus"]
    assert (healthy, latency) == (0, None)
    assert detail == f"GET http://127.0.0.1:{dead_port}/-/ready failed: ConnectionError: [Errno 111] Connection refused"
    assert [c for c, (ok, _, _) in rows.items() if not ok] == ["prometheus"]
    assert recorded_stats.gauges["airflow_obs.stack_health.prometheus"] == 0
    output = "".join(capfd.readouterr())  # dag.test() prints the task's exception with its log
    assert f"StackUnhealthy: 1 component(s) unhealthy at {checked_at(warehouse_path)}: prometheus ({detail})" in output


def test_a_connection_that_is_not_configured_is_recorded_unhealthy_with_that_message(
    dagbag, stack, warehouse_path, data_dir, recorded_stats, monkeypatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_ALERTMANAGER")

    dag_run = run_dag(dagbag, HEALTH_DAG, logical_date=datetime(2026, 3, 1, 12, 10, tzinfo=UTC))

    assert dag_run.state == "failed"
    assert task_states(dag_run)["fail_if_unhealthy"] == "failed"
    rows = stack_health_rows(warehouse_path)
    assert rows["alertmanager"] == (0, None, "connection alertmanager not configured")
    assert [c for c, (ok, _, _) in rows.items() if not ok] == ["alertmanager"]


def test_the_bad_data_fault_switch_reports_the_exporter_down_labelled_as_a_demo(
    dagbag, stack, warehouse_path, data_dir, recorded_stats
) -> None:
    dag_run = run_dag(
        dagbag,
        HEALTH_DAG,
        logical_date=datetime(2026, 3, 1, 12, 15, tzinfo=UTC),
        demo_fault_task="check_stack",
        demo_fault_mode="bad_data",
    )

    assert dag_run.state == "failed"
    rows = stack_health_rows(warehouse_path)
    assert rows["exporter"][0] == 0 and rows["exporter"][2].startswith("demo fault switch bad_data")
    assert [c for c, (ok, _, _) in rows.items() if not ok] == ["exporter"]
