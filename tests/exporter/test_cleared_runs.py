"""A finished run cleared and run again: each finish counts once however the polls fall, at a bounded cost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from airflow_obs.exporter.collectors.finished_work import FinishedWorkCollector
from airflow_obs.exporter.tracking import FinishedWorkTracker
from sqlalchemy import event

from tests.exporter.conftest import seed_dag, seed_run, seed_ti, set_run, set_ti, writable
from tests.exporter.test_finished_work import Scrapes

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)


class Clock:
    """The exporter's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()


def clear(engine, run: int, ti: uuid.UUID, *, at: datetime, next_try: int) -> uuid.UUID:
    """What clearing one task does in Airflow 3, up to the scheduler queuing it: the run is queued again,
    the task instance gets a new id and, once scheduled, its next try number. Returns the new id."""
    set_run(engine, run, state="queued", start_date=at, end_date=None)
    new_id = uuid.uuid4()
    set_ti(engine, ti, id=new_id, state="scheduled", try_number=next_try, start_date=None, end_date=None)
    return new_id


def run_try(engine, ti: uuid.UUID, state: str, *, started: datetime, ended: datetime) -> None:
    """A try that runs to `state`; the execution API sets last_heartbeat_at when the try starts."""
    duration = (ended - started).total_seconds()
    set_ti(engine, ti, state=state, start_date=started, last_heartbeat_at=started, end_date=ended, duration=duration)


def failed_then_cleared_to_success(engine, clock: Clock) -> Scrapes:
    """A run fails and is counted; between the next two scrapes its failed task is cleared and succeeds."""
    seed_dag(engine, "etl")
    metric = Scrapes(FinishedWorkCollector(engine, clock=clock))
    metric.scrape()  # the baseline: an empty DB
    run = seed_run(engine, "etl", "r", "failed", run_after=NOW, start=NOW + 5 * SECOND, end=NOW + 30 * SECOND)
    seed_ti(engine, "etl", "r", "extract", "success", last_heartbeat_at=NOW + 5 * SECOND, duration=5.0)
    load = seed_ti(engine, "etl", "r", "load", "failed", last_heartbeat_at=NOW + 15 * SECOND, duration=5.0)
    clock.now = NOW + MINUTE
    assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="failed") == 1.0
    assert metric("airflow_dag_last_run_failed", dag_id="etl") == 1.0

    rerun = clear(engine, run, load, at=NOW + 70 * SECOND, next_try=2)
    run_try(engine, rerun, "success", started=NOW + 75 * SECOND, ended=NOW + 85 * SECOND)
    set_run(engine, run, state="success", end_date=NOW + 90 * SECOND)
    clock.now = NOW + 2 * MINUTE
    return metric


def assert_counted_once_each_way(metric: Scrapes) -> None:
    assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="failed") == 1.0
    assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="success") == 1.0
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="load", state="failed") == 1.0
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="load", state="success") == 1.0
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="extract", state="success") == 1.0
    assert metric("airflow_task_instance_retries_total", dag_id="etl", task_id="load") == 1.0
    assert metric("airflow_dag_last_run_failed", dag_id="etl") == 0.0
    assert metric("airflow_dag_last_success_timestamp_seconds", dag_id="etl") == (NOW + 90 * SECOND).timestamp()


def test_a_run_that_fails_then_is_cleared_and_succeeds_between_two_scrapes_counts_once_each_way(engine) -> None:
    metric = failed_then_cleared_to_success(engine, Clock(NOW))

    assert_counted_once_each_way(metric)


def test_the_same_run_seen_again_through_the_heartbeat_window_counts_nothing_more(engine) -> None:
    clock = Clock(NOW)
    metric = failed_then_cleared_to_success(engine, clock)
    metric.scrape()

    for later in (2 * MINUTE + 10 * SECOND, 2 * MINUTE + 50 * SECOND, 10 * MINUTE):  # within the window, then past it
        clock.now = NOW + later
        assert_counted_once_each_way(metric)


def test_a_run_that_failed_before_the_exporter_started_and_is_cleared_to_success_stops_failing(engine) -> None:
    clock = Clock(NOW)
    seed_dag(engine, "etl")
    failed_at = NOW - 50 * MINUTE
    run = seed_run(engine, "etl", "r", "failed", run_after=NOW - 60 * MINUTE, start=NOW - 59 * MINUTE, end=failed_at)
    seed_ti(engine, "etl", "r", "extract", "success", last_heartbeat_at=NOW - 59 * MINUTE, duration=5.0)
    load = seed_ti(engine, "etl", "r", "load", "failed", last_heartbeat_at=NOW - 55 * MINUTE, duration=5.0)
    metric = Scrapes(FinishedWorkCollector(engine, clock=clock))
    assert metric("airflow_dag_last_run_failed", dag_id="etl") == 1.0  # from the seed; the run is the baseline

    rerun = clear(engine, run, load, at=NOW + 10 * SECOND, next_try=2)
    run_try(engine, rerun, "success", started=NOW + 12 * SECOND, ended=NOW + 15 * SECOND)
    set_run(engine, run, state="success", end_date=NOW + 16 * SECOND)

    for later in (30 * SECOND, 45 * SECOND, 10 * MINUTE):  # the first scrape since, again in the window, past it
        clock.now = NOW + later
        assert metric("airflow_dag_last_run_failed", dag_id="etl") == 0.0
        assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="success") == 1.0
        assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="failed") is None
        assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="load", state="success") == 1.0
        assert metric("airflow_task_instance_retries_total", dag_id="etl", task_id="load") == 1.0
        # Not run again: its success is from before the exporter started.
        assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="extract", state="success") is None


def test_a_run_cleared_while_the_exporter_polls_active_at_one_scrape_and_finished_at_the_next_counts_once(
    engine,
) -> None:
    clock = Clock(NOW)
    seed_dag(engine, "etl")
    run = seed_run(
        engine, "etl", "r", "failed", run_after=NOW - 60 * MINUTE, start=NOW - 59 * MINUTE, end=NOW - 50 * MINUTE
    )
    load = seed_ti(engine, "etl", "r", "load", "failed", last_heartbeat_at=NOW - 55 * MINUTE, duration=5.0)
    report = seed_ti(engine, "etl", "r", "report", "upstream_failed", try_number=0)
    metric = Scrapes(FinishedWorkCollector(engine, clock=clock))
    metric.scrape()

    # Cleared: `load` runs again and succeeds before the exporter first sees the run, `report` waits.
    new_load = clear(engine, run, load, at=NOW + 10 * SECOND, next_try=2)
    run_try(engine, new_load, "success", started=NOW + 20 * SECOND, ended=NOW + 30 * SECOND)
    new_report = uuid.uuid4()
    set_ti(engine, report, id=new_report, state="scheduled", try_number=1)
    clock.now = NOW + MINUTE
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="load", state="success") == 1.0
    assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="success") is None

    run_try(engine, new_report, "success", started=NOW + 70 * SECOND, ended=NOW + 80 * SECOND)
    set_run(engine, run, state="success", end_date=NOW + 90 * SECOND)
    for later in (2 * MINUTE, 2 * MINUTE + 30 * SECOND, 10 * MINUTE):
        clock.now = NOW + later
        assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="success") == 1.0
        assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="load", state="success") == 1.0
        assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="report", state="success") == 1.0
        assert metric("airflow_task_instance_retries_total", dag_id="etl", task_id="load") == 1.0
        assert metric("airflow_task_instance_retries_total", dag_id="etl", task_id="report") is None  # its first try
        assert metric("airflow_dag_last_run_failed", dag_id="etl") == 0.0


def test_an_old_run_cleared_to_success_becomes_the_latest_outcome_because_it_ended_last(engine) -> None:
    clock = Clock(NOW)
    day = timedelta(days=1)
    seed_dag(engine, "etl")
    old = seed_run(engine, "etl", "old", "failed", run_after=NOW - 2 * day, end=NOW - 2 * day + MINUTE)
    load = seed_ti(engine, "etl", "old", "load", "failed", last_heartbeat_at=NOW - 2 * day)
    seed_run(engine, "etl", "latest", "failed", run_after=NOW - day, end=NOW - day + MINUTE)
    metric = Scrapes(FinishedWorkCollector(engine, clock=clock))
    assert metric("airflow_dag_last_run_failed", dag_id="etl") == 1.0

    rerun = clear(engine, old, load, at=NOW + 10 * SECOND, next_try=2)
    run_try(engine, rerun, "success", started=NOW + 12 * SECOND, ended=NOW + 15 * SECOND)
    set_run(engine, old, state="success", end_date=NOW + 16 * SECOND)
    clock.now = NOW + MINUTE

    # The latest outcome is the run that ended last, whichever interval it was for (the newer one still failed).
    assert metric("airflow_dag_last_run_failed", dag_id="etl") == 0.0
    assert metric("airflow_dag_last_run_end_timestamp_seconds", dag_id="etl") == (NOW + 16 * SECOND).timestamp()
    assert metric("airflow_dag_last_success_timestamp_seconds", dag_id="etl") == (NOW + 16 * SECOND).timestamp()


def test_the_heartbeat_query_reads_only_runs_whose_task_instances_ran_since_the_previous_poll(engine) -> None:
    clock = Clock(NOW)
    seed_dag(engine, "etl")
    for index in range(20):  # history: finished long before, never touched again
        ended = NOW - timedelta(hours=index + 1)
        seed_run(engine, "etl", f"old{index}", "success", run_after=ended - MINUTE, end=ended)
        seed_ti(engine, "etl", f"old{index}", "load", "success", last_heartbeat_at=ended - MINUTE, end_date=ended)
    run = seed_run(engine, "etl", "cleared", "failed", run_after=NOW - 30 * MINUTE, end=NOW - 29 * MINUTE)
    load = seed_ti(engine, "etl", "cleared", "load", "failed", last_heartbeat_at=NOW - 30 * MINUTE)
    tracker = FinishedWorkTracker(clock)
    with engine.connect() as connection:
        tracker.poll(connection)
    rerun = clear(engine, run, load, at=NOW + 10 * SECOND, next_try=2)
    run_try(engine, rerun, "success", started=NOW + 12 * SECOND, ended=NOW + 15 * SECOND)
    set_run(engine, run, state="success", end_date=NOW + 16 * SECOND)
    clock.now = NOW + MINUTE

    statements: list[tuple[str, object]] = []

    def record(_connection, _cursor, statement, parameters, _context, _executemany) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as connection:
            finished = tracker.poll(connection).finished_runs
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert [(run.dag_id, run.state) for run in finished] == [("etl", "success")]
    # Every row any of the poll's statements returns is about the cleared run, none about the history.
    runs_read = set()
    with writable(engine).connect() as connection:
        for statement, parameters in statements:
            rows = connection.exec_driver_sql(statement, parameters).mappings()
            runs_read |= {row["run_id"] for row in rows if "run_id" in row}
    assert runs_read == {"cleared"}
    (heartbeat_query,) = [(sql, params) for sql, params in statements if "last_heartbeat_at >=" in sql]
    assert "ti_heartbeat" in _plan(writable(engine), *heartbeat_query)  # a range on the index, not a scan


def _plan(engine, statement: str, parameters) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(row[-1]) for row in rows)
        # On a table this small PostgreSQL would rather scan it; forbidding that shows the index can serve it.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
