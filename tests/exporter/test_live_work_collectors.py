"""Live work against a real metadata DB: task instances by state/pool/queue, lost heartbeats, pools, deadlines."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

from airflow_obs.exporter.collectors.deadlines import DeadlineCollector
from airflow_obs.exporter.collectors.pools import PoolCollector
from airflow_obs.exporter.collectors.task_instances import TaskInstanceCollector
from sqlalchemy import insert

from tests.exporter.conftest import registry_for, seed_dag, seed_run, seed_ti, writable

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def task_collector(engine) -> TaskInstanceCollector:
    return TaskInstanceCollector(engine, heartbeat_timeout_seconds=300, clock=NOW.timestamp)


def seed_active_run(engine, dag_id: str = "etl", run_id: str = "r1") -> None:
    seed_dag(engine, dag_id)
    seed_run(engine, dag_id, run_id, "running", run_after=NOW - 10 * MINUTE, start=NOW - 9 * MINUTE)


def test_live_task_instances_are_counted_by_state_pool_and_queue_and_finished_ones_are_not(engine) -> None:
    seed_active_run(engine)
    seed_ti(engine, "etl", "r1", "a", "queued", queued_dttm=NOW - 7 * MINUTE)
    seed_ti(engine, "etl", "r1", "b", "queued", queued_dttm=NOW - 2 * MINUTE)
    seed_ti(engine, "etl", "r1", "c", "queued", pool="warehouse", queue="heavy", queued_dttm=NOW - MINUTE)
    seed_ti(engine, "etl", "r1", "d", "scheduled")
    seed_ti(engine, "etl", "r1", "e", "deferred")
    seed_ti(engine, "etl", "r1", "f", "success", end_date=NOW - MINUTE)
    seed_ti(engine, "etl", "r1", "g", "failed", end_date=NOW - MINUTE)

    value = registry_for(task_collector(engine)).get_sample_value

    default = {"pool": "default_pool", "queue": "default"}
    assert value("airflow_task_instances", {"state": "queued", **default}) == 2.0
    assert value("airflow_task_instances", {"state": "queued", "pool": "warehouse", "queue": "heavy"}) == 1.0
    assert value("airflow_task_instances", {"state": "scheduled", **default}) == 1.0
    assert value("airflow_task_instances", {"state": "deferred", **default}) == 1.0
    assert value("airflow_task_instances", {"state": "success", **default}) is None
    assert value("airflow_task_instance_oldest_queued_age_seconds", default) == 420.0
    assert value("airflow_task_instance_oldest_queued_age_seconds", {"pool": "warehouse", "queue": "heavy"}) == 60.0


def test_running_tasks_report_their_age_and_those_without_a_recent_heartbeat_are_lost(engine) -> None:
    seed_active_run(engine)
    seed_ti(engine, "etl", "r1", "load", "running", start_date=NOW - 20 * MINUTE, last_heartbeat_at=NOW - MINUTE)
    # Heartbeat older than the 300 s timeout: the worker is gone.
    seed_ti(
        engine, "etl", "r1", "transform", "running", start_date=NOW - 30 * MINUTE, last_heartbeat_at=NOW - 6 * MINUTE
    )
    # Never heartbeated: judged from its start, 10 minutes ago.
    seed_ti(engine, "etl", "r1", "extract", "running", start_date=NOW - 10 * MINUTE)
    # Finished long ago with an old heartbeat: not running, so never "lost".
    seed_ti(engine, "etl", "r1", "report", "success", start_date=NOW - 60 * MINUTE, last_heartbeat_at=NOW - 59 * MINUTE)

    value = registry_for(task_collector(engine)).get_sample_value

    assert value("airflow_task_instance_oldest_running_age_seconds", {"dag_id": "etl", "task_id": "load"}) == 1200.0
    assert value("airflow_task_instances_heartbeat_lost", {"dag_id": "etl"}) == 2.0
    assert value("airflow_task_instance_oldest_running_age_seconds", {"dag_id": "etl", "task_id": "report"}) is None


def test_pool_slots_follow_airflow_slot_accounting(engine) -> None:
    from airflow.models.pool import Pool

    with writable(engine).begin() as connection:
        connection.execute(
            insert(Pool.__table__),
            [
                {"pool": "default_pool", "slots": 8, "include_deferred": False},
                {"pool": "warehouse", "slots": 4, "include_deferred": True},
                {"pool": "unlimited", "slots": -1, "include_deferred": False},
            ],
        )
    seed_active_run(engine)
    seed_ti(engine, "etl", "r1", "a", "running")
    seed_ti(engine, "etl", "r1", "b", "queued", pool_slots=2)
    seed_ti(engine, "etl", "r1", "c", "deferred")
    seed_ti(engine, "etl", "r1", "d", "running", pool="warehouse")
    seed_ti(engine, "etl", "r1", "e", "deferred", pool="warehouse")
    seed_ti(engine, "etl", "r1", "f", "scheduled", pool="warehouse")

    value = registry_for(PoolCollector(engine)).get_sample_value

    def slots(pool: str, state: str) -> float | None:
        return value("airflow_pool_slots", {"pool": pool, "state": state})

    assert (slots("default_pool", "total"), slots("default_pool", "running"), slots("default_pool", "queued")) == (
        8.0,
        1.0,
        2.0,
    )
    # A deferred task holds a default_pool slot only if the pool says so: it does not.
    assert slots("default_pool", "deferred") == 1.0 and slots("default_pool", "open") == 5.0
    # warehouse counts deferred tasks: 4 - running 1 - deferred 1; scheduled tasks hold nothing yet.
    assert slots("warehouse", "open") == 2.0 and slots("warehouse", "scheduled") == 1.0
    assert math.isinf(slots("unlimited", "total")) and math.isinf(slots("unlimited", "open"))


def seed_deadline(engine, run_id: int, deadline_time: datetime, *, missed: bool) -> uuid.UUID:
    from airflow.models.callback import Callback
    from airflow.models.deadline import Deadline

    deadline_id = uuid.uuid4()
    with writable(engine).begin() as connection:
        callback_id = connection.execute(
            insert(Callback.__table__)
            .values(type="triggerer", fetch_method="import_path", data={}, priority_weight=1)
            .returning(Callback.__table__.c.id)
        ).scalar_one()
        connection.execute(
            insert(Deadline.__table__).values(
                id=deadline_id,
                dagrun_id=run_id,
                deadline_time=deadline_time,
                missed=missed,
                created_at=NOW,
                callback_id=callback_id,
            )
        )
    return deadline_id


def test_missed_deadlines_are_counted_once_each_and_older_ones_are_the_baseline(engine) -> None:
    from airflow.models.deadline import Deadline

    seed_dag(engine, "etl")
    run = seed_run(engine, "etl", "r1", "running", run_after=NOW - 30 * MINUTE, start=NOW - 29 * MINUTE)
    seed_deadline(engine, run, NOW - 10 * MINUTE, missed=True)  # missed before the exporter started
    pending = seed_deadline(engine, run, NOW - MINUTE, missed=False)
    clock = {"now": NOW.timestamp()}
    registry = registry_for(DeadlineCollector(engine, clock=lambda: clock["now"]))

    def misses() -> float | None:
        return registry.get_sample_value("airflow_dag_deadline_misses_total", {"dag_id": "etl"})

    assert misses() is None  # baseline: nothing counted yet
    deadline = Deadline.__table__
    with writable(engine).begin() as connection:  # the scheduler marks the pending one missed
        connection.execute(deadline.update().where(deadline.c.id == pending).values(missed=True))
    assert misses() == 1.0
    clock["now"] += 30
    assert misses() == 1.0  # the same deadline is not counted twice
