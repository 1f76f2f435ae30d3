"""Finished-work counters, histograms and baselines: incremental, exactly once, with a restart as a reset."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from airflow_obs.exporter.collectors.finished_work import FinishedWorkCollector

from tests.exporter.conftest import registry_for, seed_dag, seed_run, seed_ti, set_run, set_ti, writable

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def finished_work(engine, **options) -> FinishedWorkCollector:
    return FinishedWorkCollector(engine, clock=NOW.timestamp, **options)


class Scrapes:
    """Scrapes a collector on demand and reads samples by name and labels."""

    def __init__(self, collector: FinishedWorkCollector) -> None:
        self.registry = registry_for(collector)

    def __call__(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def scrape(self) -> None:
        list(self.registry.collect())


def test_history_from_before_the_first_scrape_is_the_baseline_and_counts_nothing(engine) -> None:
    seed_dag(engine, "etl")
    seed_run(
        engine, "etl", "old", "success", run_after=NOW - 60 * MINUTE, start=NOW - 59 * MINUTE, end=NOW - 50 * MINUTE
    )
    seed_ti(engine, "etl", "old", "load", "success", duration=30.0)
    active = seed_run(engine, "etl", "now", "running", run_after=NOW - 5 * MINUTE, start=NOW - 4 * MINUTE)
    seed_ti(engine, "etl", "now", "extract", "success", duration=10.0)

    metric = Scrapes(finished_work(engine))

    assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="success") is None
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="extract", state="success") is None

    seed_ti(engine, "etl", "now", "load", "success", duration=20.0)
    set_run(engine, active, state="success", end_date=NOW)

    # Only what finished after the first scrape: the run and its second task, not its first one.
    assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="success") == 1.0
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="load", state="success") == 1.0
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="extract", state="success") is None
    assert metric("airflow_dag_run_duration_seconds_count", dag_id="etl", state="success") == 1.0
    assert metric("airflow_dag_run_duration_seconds_sum", dag_id="etl", state="success") == 240.0


def test_a_run_that_starts_and_finishes_between_two_scrapes_is_counted_exactly_once(engine) -> None:
    seed_dag(engine, "etl")
    metric = Scrapes(finished_work(engine))
    metric.scrape()  # the baseline: an empty DB

    seed_run(engine, "etl", "fast", "failed", run_after=NOW - 10 * MINUTE, start=NOW - 8 * MINUTE, end=NOW - 7 * MINUTE)
    seed_ti(engine, "etl", "fast", "extract", "success", duration=12.0)
    seed_ti(engine, "etl", "fast", "load", "failed", duration=3.0)
    seed_ti(engine, "etl", "fast", "report", "upstream_failed")

    for _ in range(3):  # later scrapes see nothing new
        assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="failed") == 1.0
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="load", state="failed") == 1.0
    assert (
        metric("airflow_task_instances_finished_total", dag_id="etl", task_id="report", state="upstream_failed") == 1.0
    )
    # Successful tries only: the failed one's 3 s are not a duration sample.
    assert metric("airflow_task_instance_duration_seconds_count", dag_id="etl") == 1.0
    assert metric("airflow_task_instance_duration_seconds_bucket", dag_id="etl", le="10") == 0.0
    assert metric("airflow_task_instance_duration_seconds_bucket", dag_id="etl", le="30") == 1.0
    # Scheduled 10 minutes ago, started 8 minutes ago.
    assert metric("airflow_dag_run_schedule_delay_seconds_sum", dag_id="etl") == 120.0


def test_retries_and_a_retried_task_finishing_are_counted_once_each(engine) -> None:
    seed_dag(engine, "etl")
    metric = Scrapes(finished_work(engine))
    metric.scrape()
    seed_run(engine, "etl", "r", "running", run_after=NOW - 5 * MINUTE, start=NOW - 5 * MINUTE)
    first_try = seed_ti(engine, "etl", "r", "load", "running", try_number=1)
    metric.scrape()

    # The first try fails and is retried: Airflow gives the second try a new id and try_number 2.
    set_ti(engine, first_try, state="up_for_retry")
    metric.scrape()
    second_try = uuid.uuid4()
    set_ti(engine, first_try, id=second_try, state="running", try_number=2)
    assert metric("airflow_task_instance_retries_total", dag_id="etl", task_id="load") == 1.0

    set_ti(engine, second_try, state="success", duration=5.0)
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="load", state="success") == 1.0
    assert metric("airflow_task_instance_retries_total", dag_id="etl", task_id="load") == 1.0
    # The failed try was a retry, not a finished task instance.
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="load", state="up_for_retry") is None


def test_a_cleared_run_counts_again_only_for_the_work_it_redoes(engine) -> None:
    seed_dag(engine, "etl")
    metric = Scrapes(finished_work(engine))
    metric.scrape()
    run = seed_run(
        engine, "etl", "r", "success", run_after=NOW - 30 * MINUTE, start=NOW - 29 * MINUTE, end=NOW - MINUTE
    )
    kept = seed_ti(engine, "etl", "r", "extract", "success", duration=1.0)
    redone = seed_ti(engine, "etl", "r", "load", "failed", duration=1.0)
    metric.scrape()

    # The user clears `load`: the run is queued again and the task gets a new try (and id).
    set_run(engine, run, state="queued", end_date=None)
    new_try = uuid.uuid4()
    set_ti(engine, redone, id=new_try, state=None, try_number=2)
    metric.scrape()
    set_ti(engine, new_try, state="success", duration=2.0)
    set_run(engine, run, state="success", end_date=NOW)

    assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="success") == 2.0
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="extract", state="success") == 1.0
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="load", state="success") == 1.0
    assert kept  # untouched by the clear, so not counted twice


def test_a_restarted_exporter_starts_its_counters_from_zero_without_recounting(engine) -> None:
    seed_dag(engine, "etl")
    metric = Scrapes(finished_work(engine))
    metric.scrape()
    seed_run(engine, "etl", "a", "success", run_after=NOW - 9 * MINUTE, start=NOW - 9 * MINUTE, end=NOW - 8 * MINUTE)
    assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="success") == 1.0

    restarted = Scrapes(finished_work(engine))

    assert restarted("airflow_dag_runs_completed_total", dag_id="etl", state="success") is None
    seed_run(engine, "etl", "b", "success", run_after=NOW - 3 * MINUTE, start=NOW - 3 * MINUTE, end=NOW - 2 * MINUTE)
    assert restarted("airflow_dag_runs_completed_total", dag_id="etl", state="success") == 1.0


def test_a_run_deleted_while_active_is_forgotten_not_counted(engine) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance

    seed_dag(engine, "etl")
    metric = Scrapes(finished_work(engine))
    metric.scrape()
    seed_run(engine, "etl", "doomed", "running", run_after=NOW - 3 * MINUTE, start=NOW - 3 * MINUTE)
    seed_ti(engine, "etl", "doomed", "extract", "success", duration=1.0)
    metric.scrape()
    with writable(engine).begin() as connection:
        connection.execute(TaskInstance.__table__.delete())
        connection.execute(DagRun.__table__.delete())

    assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="success") is None
    assert metric("airflow_task_instances_finished_total", dag_id="etl", task_id="extract", state="success") == 1.0


def test_baselines_are_learned_from_recent_successful_runs_then_from_new_ones(engine) -> None:
    seed_dag(engine, "etl")
    durations = [60, 70, 80, 90, 600]  # minutes apart; one slow outlier
    for index, minutes in enumerate(durations):
        start = NOW - timedelta(days=index + 1)
        end = start + timedelta(seconds=minutes)
        seed_run(engine, "etl", f"ok{index}", "success", run_after=start, start=start, end=end)
    seed_run(engine, "etl", "failed", "failed", run_after=NOW - MINUTE, start=NOW - MINUTE, end=NOW)  # ignored
    too_old = NOW - timedelta(days=30)
    seed_run(engine, "etl", "ancient", "success", run_after=too_old, start=too_old, end=too_old + timedelta(hours=9))
    seed_dag(engine, "rare")
    seed_run(engine, "rare", "once", "success", run_after=NOW - MINUTE, start=NOW - MINUTE, end=NOW)

    metric = Scrapes(finished_work(engine, baseline_window=timedelta(days=14), baseline_min_runs=3))

    assert metric("airflow_dag_run_duration_baseline_p50_seconds", dag_id="etl") == 80.0
    assert metric("airflow_dag_run_duration_baseline_p95_seconds", dag_id="etl") == 600.0
    assert metric("airflow_dag_run_duration_baseline_samples", dag_id="etl") == 5.0
    assert metric("airflow_dag_run_duration_baseline_samples", dag_id="rare") is None  # too few runs to judge

    seed_run(engine, "etl", "new", "success", run_after=NOW, start=NOW, end=NOW + timedelta(seconds=75))
    assert metric("airflow_dag_run_duration_baseline_samples", dag_id="etl") == 6.0
    assert metric("airflow_dag_run_duration_baseline_p50_seconds", dag_id="etl") == 75.0


def test_per_task_mode_labels_task_durations_with_task_id_and_learns_task_baselines(engine) -> None:
    seed_dag(engine, "etl")
    for index in range(3):
        start = NOW - timedelta(hours=index + 1)
        seed_run(engine, "etl", f"r{index}", "success", run_after=start, start=start, end=start + MINUTE)
        seed_ti(engine, "etl", f"r{index}", "load", "success", duration=10.0 * (index + 1), end_date=start + MINUTE)
    metric = Scrapes(finished_work(engine, per_task=True, baseline_min_runs=3))

    assert metric("airflow_task_duration_baseline_p50_seconds", dag_id="etl", task_id="load") == 20.0
    seed_run(engine, "etl", "r9", "success", run_after=NOW, start=NOW, end=NOW + MINUTE)
    seed_ti(engine, "etl", "r9", "load", "success", duration=4.0)
    assert metric("airflow_task_instance_duration_seconds_count", dag_id="etl", task_id="load") == 1.0


def test_a_deleted_dag_disappears_from_the_counters_histograms_and_baselines(engine) -> None:
    from airflow.models.dag import DagModel

    seed_dag(engine, "etl")
    seed_dag(engine, "going_away")
    metric = Scrapes(finished_work(engine, baseline_min_runs=1))
    metric.scrape()
    for dag_id in ("etl", "going_away"):
        seed_run(engine, dag_id, "r", "success", run_after=NOW - 3 * MINUTE, start=NOW - 3 * MINUTE, end=NOW)
    assert metric("airflow_dag_runs_completed_total", dag_id="going_away", state="success") == 1.0

    with writable(engine).begin() as connection:  # the file is gone: Airflow marks the DAG stale
        connection.execute(
            DagModel.__table__.update().where(DagModel.__table__.c.dag_id == "going_away").values(is_stale=True)
        )

    assert metric("airflow_dag_runs_completed_total", dag_id="going_away", state="success") is None
    assert metric("airflow_dag_run_duration_seconds_count", dag_id="going_away", state="success") is None
    assert metric("airflow_dag_run_duration_baseline_p50_seconds", dag_id="going_away") is None
    assert metric("airflow_dag_last_run_failed", dag_id="going_away") is None
    assert metric("airflow_dag_runs_completed_total", dag_id="etl", state="success") == 1.0


def test_the_latest_outcome_is_seeded_from_the_window_then_follows_each_finished_run(engine) -> None:
    day = timedelta(days=1)
    seed_dag(engine, "etl")
    seed_dag(engine, "only_old")
    seed_run(engine, "etl", "old", "success", run_after=NOW - 30 * day, end=NOW - 30 * day)  # outside the window
    seed_run(engine, "etl", "ok", "success", run_after=NOW - 2 * day, end=NOW - 2 * day + 5 * MINUTE)
    seed_run(engine, "etl", "bad", "failed", run_after=NOW - day, end=NOW - day + 9 * MINUTE)
    seed_run(engine, "only_old", "x", "success", run_after=NOW - 30 * day, end=NOW - 30 * day)
    metric = Scrapes(finished_work(engine, outcome_window=timedelta(days=7)))

    assert metric("airflow_dag_last_run_failed", dag_id="etl") == 1.0
    assert metric("airflow_dag_last_run_end_timestamp_seconds", dag_id="etl") == (NOW - day + 9 * MINUTE).timestamp()
    assert (
        metric("airflow_dag_last_success_timestamp_seconds", dag_id="etl") == (NOW - 2 * day + 5 * MINUTE).timestamp()
    )
    assert metric("airflow_dag_last_run_failed", dag_id="only_old") is None

    seed_run(engine, "etl", "fixed", "success", run_after=NOW - MINUTE, start=NOW - MINUTE, end=NOW)

    assert metric("airflow_dag_last_run_failed", dag_id="etl") == 0.0
    assert metric("airflow_dag_last_success_timestamp_seconds", dag_id="etl") == NOW.timestamp()
