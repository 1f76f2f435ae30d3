"""DAG runs now: active runs, the oldest running one, and freshness against the schedule.

The latest outcome and last success are kept by the finished-work collector (outcomes.py), from
finished-run events, so that no scrape rescans finished runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from airflow_obs.exporter.database import airflow_table, utc_timestamp
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

ACTIVE_STATES = ("running", "queued")


class DagRunCollector:
    """Yields active runs and schedule freshness; every query is bounded by a partial index or the DAG count."""

    name = "dag_runs"

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        run, dag = airflow_table(self._engine, "dag_run"), airflow_table(self._engine, "dag")
        now = self._clock()
        with self._engine.connect() as connection:
            # Partial indexes idx_dag_run_running_dags / idx_dag_run_queued_dags: only active runs are read.
            active = connection.execute(
                select(run.c.dag_id, run.c.state, func.count(), func.min(run.c.start_date))
                .where(run.c.state.in_(ACTIVE_STATES))
                .group_by(run.c.dag_id, run.c.state)
            ).all()
            # The dag table has one row per DAG.
            schedules = connection.execute(
                select(dag.c.dag_id, dag.c.next_dagrun_create_after).where(
                    dag.c.is_stale.is_(False), dag.c.is_paused.is_(False), dag.c.next_dagrun_create_after.is_not(None)
                )
            ).all()

        yield from self._active_families(active, now)
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
