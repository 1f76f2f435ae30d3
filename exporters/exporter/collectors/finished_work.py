"""Finished work: each DAG's latest outcome, counters and histograms, and the learned duration baselines.

Everything here is fed by FinishedWorkTracker events (see tracking.py for why no query rescans history).
The counters start at zero when the exporter starts, as any Prometheus counter does after a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

from airflow_obs.exporter.accumulators import (
    RUN_DURATION_BUCKETS,
    SCHEDULE_DELAY_BUCKETS,
    TASK_DURATION_BUCKETS,
    Counters,
    Histograms,
)
from airflow_obs.exporter.baselines import DurationBaselines, seed_dag_baselines, seed_task_baselines
from airflow_obs.exporter.database import airflow_table, utc_timestamp
from airflow_obs.exporter.outcomes import LatestOutcomes
from airflow_obs.exporter.tracking import FinishedWorkTracker, PollResult
from prometheus_client.core import Metric
from sqlalchemy import select
from sqlalchemy.engine import Engine


class FinishedWorkCollector:
    """Yields completed-run and finished-task counters, duration and delay histograms, and baselines.

    With `per_task=True` the task-duration histogram carries task_id and per-task baselines are learned;
    by default they are per DAG, to keep the series count proportional to DAGs rather than tasks.
    """

    name = "finished_work"

    def __init__(
        self,
        engine: Engine,
        *,
        per_task: bool = False,
        outcome_window: timedelta = timedelta(days=7),
        baseline_window: timedelta = timedelta(days=14),
        baseline_max_runs: int = 50,
        baseline_min_runs: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._per_task = per_task
        self._outcome_window = outcome_window
        self._baseline_window = baseline_window
        self._clock = clock
        self._tracker = FinishedWorkTracker(clock)
        self._seeded = False
        self._outcomes = LatestOutcomes()
        self._runs_completed = Counters()
        self._tasks_finished = Counters()
        self._retries = Counters()
        self._run_durations = Histograms(RUN_DURATION_BUCKETS)
        self._schedule_delays = Histograms(SCHEDULE_DELAY_BUCKETS)
        self._task_durations = Histograms(TASK_DURATION_BUCKETS)
        self._dag_baselines = DurationBaselines(baseline_max_runs, baseline_min_runs)
        self._task_baselines = DurationBaselines(baseline_max_runs, baseline_min_runs)
        # The families of the last scrape, reused while nothing finished and no DAG left: most scrapes.
        self._families_cache: list[Metric] | None = None
        self._live: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        with self._engine.connect() as connection:
            if not self._seeded:
                now = datetime.fromtimestamp(self._clock(), timezone.utc)
                self._outcomes.seed(connection, now - self._outcome_window)
                seed_dag_baselines(connection, self._dag_baselines, now - self._baseline_window)
                if self._per_task:
                    seed_task_baselines(connection, self._task_baselines, now - self._baseline_window)
                self._seeded = True
            events = self._tracker.poll(connection)
            # One row per DAG: series of DAGs deleted (or gone stale) since disappear.
            dag = airflow_table(self._engine, "dag")
            live = set(connection.execute(select(dag.c.dag_id).where(dag.c.is_stale.is_(False))).scalars())
        changed = events.finished_runs or events.finished_tasks or events.retries or live != self._live
        if changed or self._families_cache is None:
            self._record(events)
            for accumulator in self._accumulators():
                accumulator.keep_only(live)
            self._live = live
            self._families_cache = list(self._families())
        yield from self._families_cache

    def _accumulators(self):
        yield self._outcomes
        yield from (self._runs_completed, self._tasks_finished, self._retries)
        yield from (self._run_durations, self._schedule_delays, self._task_durations)
        yield from (self._dag_baselines, self._task_baselines)

    def _record(self, events: PollResult) -> None:
        for run in events.finished_runs:
            if run.end_date is not None:
                self._outcomes.record(run.dag_id, run.state, utc_timestamp(run.end_date))
            self._runs_completed.add((run.dag_id, run.state))
            if (duration := run.duration_seconds) is not None:
                self._run_durations.observe((run.dag_id, run.state), duration)
                if run.state == "success":
                    self._dag_baselines.observe(run.dag_id, duration)
            if (delay := run.schedule_delay_seconds) is not None:
                self._schedule_delays.observe((run.dag_id,), delay)
        for task in events.finished_tasks:
            self._tasks_finished.add((task.dag_id, task.task_id, task.state))
            # Durations of successful tries only: a failure's duration says little, and it would double the series.
            if task.duration_seconds is not None and task.state == "success":
                labels = (task.dag_id, task.task_id) if self._per_task else (task.dag_id,)
                self._task_durations.observe(labels, task.duration_seconds)
                if self._per_task:
                    self._task_baselines.observe((task.dag_id, task.task_id), task.duration_seconds)
        for retry in events.retries:
            self._retries.add((retry.dag_id, retry.task_id), retry.tries)

    def _families(self) -> Iterator[Metric]:
        yield from self._outcomes.families()
        yield self._runs_completed.family(
            "airflow_dag_runs_completed", "DAG runs that finished, by final state.", ["dag_id", "state"]
        )
        yield self._run_durations.family(
            "airflow_dag_run_duration_seconds", "Duration of finished DAG runs.", ["dag_id", "state"]
        )
        yield self._schedule_delays.family(
            "airflow_dag_run_schedule_delay_seconds",
            "How long after its scheduled time (run_after) a scheduled DAG run started.",
            ["dag_id"],
        )
        yield self._tasks_finished.family(
            "airflow_task_instances_finished",
            "Task instances that finished, by final state (each try counts once).",
            ["dag_id", "task_id", "state"],
        )
        yield self._retries.family(
            "airflow_task_instance_retries",
            "Tries beyond the first (automatic retries and manual clears), counted when they are scheduled.",
            ["dag_id", "task_id"],
        )
        yield self._task_durations.family(
            "airflow_task_instance_duration_seconds",
            "Duration of successful task instances.",
            ["dag_id", "task_id"] if self._per_task else ["dag_id"],
        )
        yield from self._dag_baselines.families("airflow_dag_run", "DAG", ["dag_id"])
        if self._per_task:
            yield from self._task_baselines.families("airflow_task", "task", ["dag_id", "task_id"])
