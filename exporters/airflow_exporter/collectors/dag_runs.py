"""DAG runs now: active runs, the oldest running one, the latest outcome, and freshness against the schedule."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Engine, func, select

from airflow_exporter.database import airflow_table, utc_timestamp

ACTIVE_STATES = ("running", "queued")
FINISHED_STATES = ("success", "failed")
# How far back the latest outcome is looked for: bounds the query by idx_dag_run_run_after, whatever the history.
DEFAULT_OUTCOME_WINDOW = timedelta(days=7)


class DagRunCollector:
    """Yields the current state of DAG runs; every query is bounded by a partial index or a time window."""

    name = "dag_runs"

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], float] = time.time,
        outcome_window: timedelta = DEFAULT_OUTCOME_WINDOW,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._window = outcome_window

    def collect(self) -> Iterator[Metric]:
        run, dag = airflow_table(self._engine, "dag_run"), airflow_table(self._engine, "dag")
        now = self._clock()
        since = datetime.fromtimestamp(now, UTC) - self._window
        with self._engine.connect() as connection:
            # Partial indexes idx_dag_run_running_dags / idx_dag_run_queued_dags: only active runs are read.
            active = connection.execute(
                select(run.c.dag_id, run.c.state, func.count(), func.min(run.c.start_date))
                .where(run.c.state.in_(ACTIVE_STATES))
                .group_by(run.c.dag_id, run.c.state)
            ).all()
            # idx_dag_run_run_after bounds this to the outcome window; the DB returns at most two rows per DAG.
            finished = connection.execute(
                select(run.c.dag_id, run.c.state, func.max(run.c.end_date))
                .where(run.c.run_after >= since, run.c.state.in_(FINISHED_STATES), run.c.end_date.is_not(None))
                .group_by(run.c.dag_id, run.c.state)
            ).all()
            # The dag table has one row per DAG.
            schedules = connection.execute(
                select(dag.c.dag_id, dag.c.next_dagrun_create_after).where(
                    dag.c.is_stale.is_(False), dag.c.is_paused.is_(False), dag.c.next_dagrun_create_after.is_not(None)
                )
            ).all()

        yield from self._active_families(active, now)
        yield from self._outcome_families(finished)
        yield from self._freshness_families(schedules, now)

    def _active_families(self, rows, now: float) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "airflow_dag_runs_active", "DAG runs now running or queued.", labels=["dag_id", "state"]
        )
        oldest = GaugeMetricFamily(
            "airflow_dag_run_oldest_running_age_seconds", "Age of the DAG's oldest running run.", labels=["dag_id"]
        )
        for dag_id, state, count, started in rows:
            runs.add_metric([dag_id, state], float(count))
            if state == "running" and started is not None:
                oldest.add_metric([dag_id], max(0.0, now - utc_timestamp(started)))
        yield runs
        yield oldest

    def _outcome_families(self, rows) -> Iterator[Metric]:
        # One row per (DAG, final state) with that state's latest end: the later of the two is the outcome.
        latest: dict[str, tuple[float, str]] = {}
        last_success: dict[str, float] = {}
        for dag_id, state, ended in rows:
            end = utc_timestamp(ended)
            if dag_id not in latest or end > latest[dag_id][0]:
                latest[dag_id] = (end, state)
            if state == "success":
                last_success[dag_id] = end
        failed = GaugeMetricFamily(
            "airflow_dag_last_run_failed",
            "1 if the DAG's latest finished run (within the outcome window) failed, 0 if it succeeded.",
            labels=["dag_id"],
        )
        ended = GaugeMetricFamily(
            "airflow_dag_last_run_end_timestamp_seconds",
            "End time of the DAG's latest finished run.",
            labels=["dag_id"],
        )
        success = GaugeMetricFamily(
            "airflow_dag_last_success_timestamp_seconds",
            "End time of the DAG's latest successful run within the outcome window.",
            labels=["dag_id"],
        )
        for dag_id, (end, state) in sorted(latest.items()):
            failed.add_metric([dag_id], 1.0 if state == "failed" else 0.0)
            ended.add_metric([dag_id], end)
        for dag_id, end in sorted(last_success.items()):
            success.add_metric([dag_id], end)
        yield failed
        yield ended
        yield success

    def _freshness_families(self, rows, now: float) -> Iterator[Metric]:
        expected = GaugeMetricFamily(
            "airflow_dag_next_run_expected_timestamp_seconds",
            "When the scheduler should create the DAG's next run, from its timetable (unpaused DAGs).",
            labels=["dag_id"],
        )
        late = GaugeMetricFamily(
            "airflow_dag_schedule_lateness_seconds",
            "How long past its expected time the DAG's next run has not been created; 0 when on time.",
            labels=["dag_id"],
        )
        for dag_id, create_after in rows:
            expected.add_metric([dag_id], utc_timestamp(create_after))
            late.add_metric([dag_id], max(0.0, now - utc_timestamp(create_after)))
        yield expected
        yield late
