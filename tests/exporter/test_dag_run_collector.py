"""The DAG-run collector against a real Airflow metadata DB: active runs and freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_obs.exporter.collectors.dag_runs import DagRunCollector
from sqlalchemy import update

from tests.exporter.conftest import registry_for, seed_dag, seed_run, writable

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def collector(engine) -> DagRunCollector:
    return DagRunCollector(engine, clock=NOW.timestamp)


def test_active_runs_are_counted_and_the_oldest_running_one_is_aged(engine) -> None:
    seed_dag(engine, "etl")
    seed_run(engine, "etl", "a", "running", run_after=NOW - timedelta(hours=3), start=NOW - timedelta(hours=2))
    seed_run(engine, "etl", "b", "running", run_after=NOW - timedelta(hours=1), start=NOW - timedelta(minutes=30))
    seed_run(engine, "etl", "c", "queued", run_after=NOW)

    value = registry_for(collector(engine)).get_sample_value

    assert value("airflow_dag_runs_active", {"dag_id": "etl", "state": "running"}) == 2.0
    assert value("airflow_dag_runs_active", {"dag_id": "etl", "state": "queued"}) == 1.0
    assert value("airflow_dag_run_oldest_running_age_seconds", {"dag_id": "etl"}) == 7200.0


def test_a_dag_whose_next_run_is_overdue_shows_its_lateness_and_a_paused_one_does_not(engine) -> None:
    from airflow.models.dag import DagModel

    seed_dag(engine, "on_time")
    seed_dag(engine, "stuck")
    seed_dag(engine, "paused", paused=True)
    table = DagModel.__table__
    with writable(engine).begin() as connection:
        for dag_id, when in (
            ("on_time", NOW + timedelta(hours=1)),
            ("stuck", NOW - timedelta(hours=3)),
            ("paused", NOW - timedelta(days=2)),
        ):
            connection.execute(update(table).where(table.c.dag_id == dag_id).values(next_dagrun_create_after=when))

    value = registry_for(collector(engine)).get_sample_value

    assert value("airflow_dag_schedule_lateness_seconds", {"dag_id": "on_time"}) == 0.0
    assert value("airflow_dag_schedule_lateness_seconds", {"dag_id": "stuck"}) == 3 * 3600.0
    assert (
        value("airflow_dag_next_run_expected_timestamp_seconds", {"dag_id": "stuck"})
        == (NOW - timedelta(hours=3)).timestamp()
    )
    assert value("airflow_dag_schedule_lateness_seconds", {"dag_id": "paused"}) is None
    assert value("airflow_exporter_collector_success", {"collector": "dag_runs"}) == 1.0
