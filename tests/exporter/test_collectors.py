"""Exporter collectors against a real, migrated Airflow metadata DB (SQLite), read with a private registry."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

from airflow_obs.exporter.collectors.components import ComponentHeartbeatCollector
from airflow_obs.exporter.collectors.dags import DagCollector
from prometheus_client import generate_latest
from sqlalchemy import insert

from tests.exporter.conftest import registry_for, seed_dag, writable

HOSTILE_DAG_ID = 'quote"back\\slash\nnewline_ünïcode'


def test_running_jobs_give_each_component_its_latest_heartbeat(engine) -> None:
    from airflow.jobs.job import Job

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    rows = [
        ("SchedulerJob", "running", now - timedelta(seconds=30)),
        ("SchedulerJob", "running", now - timedelta(seconds=5)),
        ("TriggererJob", "running", now - timedelta(seconds=10)),
        ("DagProcessorJob", "failed", now),  # a dead job says nothing about liveness
    ]
    with writable(engine).begin() as connection:
        for job_type, state, heartbeat in rows:
            connection.execute(
                insert(Job.__table__).values(
                    job_type=job_type, state=state, latest_heartbeat=heartbeat, start_date=now, hostname="h"
                )
            )

    registry = registry_for(ComponentHeartbeatCollector(engine))
    value = registry.get_sample_value

    assert (
        value("airflow_component_last_heartbeat_timestamp_seconds", {"component": "scheduler"})
        == (now - timedelta(seconds=5)).timestamp()
    )
    assert (
        value("airflow_component_last_heartbeat_timestamp_seconds", {"component": "triggerer"})
        == (now - timedelta(seconds=10)).timestamp()
    )
    assert value("airflow_component_last_heartbeat_timestamp_seconds", {"component": "dag_processor"}) is None
    assert value("airflow_exporter_collector_success", {"collector": "components"}) == 1.0


def test_dag_info_carries_owner_team_and_tags_and_paused_state(engine) -> None:
    seed_dag(engine, "etl_orders", owners="data-eng", tags=("etl", "team:data-platform"))
    seed_dag(engine, "ml_train", paused=True, owners="ml-eng", tags=("team:ml",))

    value = registry_for(DagCollector(engine)).get_sample_value

    assert (
        value(
            "airflow_dag_info",
            {"dag_id": "etl_orders", "owner": "data-eng", "team": "data-platform", "tags": "etl,team:data-platform"},
        )
        == 1.0
    )
    assert value("airflow_dag_paused", {"dag_id": "etl_orders"}) == 0.0
    assert value("airflow_dag_paused", {"dag_id": "ml_train"}) == 1.0


def test_a_deleted_or_stale_dag_disappears_from_the_next_scrape(engine) -> None:
    from airflow.models.dag import DagModel

    seed_dag(engine, "going_away")
    registry = registry_for(DagCollector(engine))
    assert registry.get_sample_value("airflow_dag_paused", {"dag_id": "going_away"}) == 0.0

    with writable(engine).begin() as connection:
        connection.execute(DagModel.__table__.update().values(is_stale=True))

    assert registry.get_sample_value("airflow_dag_paused", {"dag_id": "going_away"}) is None


def test_import_errors_are_counted_per_file_and_in_total(engine) -> None:
    from airflow.models.errors import ParseImportError

    with writable(engine).begin() as connection:
        for filename in ("broken.py", "broken.py", "other.py"):
            connection.execute(
                insert(ParseImportError.__table__).values(
                    filename=filename, bundle_name="test-bundle", stacktrace="SyntaxError", timestamp=datetime.now(UTC)
                )
            )

    value = registry_for(DagCollector(engine)).get_sample_value

    assert value("airflow_dag_import_errors", {"file": "broken.py"}) == 2.0
    assert value("airflow_dag_import_errors", {"file": "other.py"}) == 1.0
    assert value("airflow_dag_import_error_files") == 2.0


def test_hostile_dag_ids_still_produce_valid_exposition(engine) -> None:
    seed_dag(engine, HOSTILE_DAG_ID, owners='o"wner\\', tags=("team:ml", "tag with, comma"))
    exposition = generate_latest(registry_for(DagCollector(engine)))

    check = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, check=False)

    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert registry_for(DagCollector(engine)).get_sample_value("airflow_dag_paused", {"dag_id": HOSTILE_DAG_ID}) == 0.0
