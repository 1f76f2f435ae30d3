"""Airflow 3 Deadline Alerts: missed deadlines as a counter per DAG.

The scheduler sets `deadline.missed` shortly after a deadline passes (and deletes the deadlines of runs
that finished in time). The counter reads missed deadlines whose deadline_time is recent, through
deadline_missed_deadline_time_idx (missed, deadline_time), and counts each deadline id once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

from airflow_obs.exporter.accumulators import Counters
from airflow_obs.exporter.database import airflow_table, utc_timestamp
from prometheus_client.core import Metric
from sqlalchemy import Table, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.expression import ColumnElement

# How late after its deadline_time the scheduler may mark a deadline missed and still be counted.
MARKING_LAG = timedelta(hours=1)


class DeadlineCollector:
    """Yields airflow_dag_deadline_misses_total{dag_id}; misses from before the exporter started are the baseline."""

    name = "deadlines"

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._misses = Counters()
        # Missed deadline ids within the marking lag, so each is counted once; older ids are dropped.
        self._seen: dict[str, datetime] | None = None

    def collect(self) -> Iterator[Metric]:
        deadline, run = airflow_table(self._engine, "deadline"), airflow_table(self._engine, "dag_run")
        since = datetime.fromtimestamp(self._clock(), timezone.utc) - MARKING_LAG
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(deadline.c.id, deadline.c.deadline_time, run.c.dag_id)
                .join(run, run.c.id == deadline.c.dagrun_id)
                .where(_missed(deadline), deadline.c.deadline_time >= since)
            ).all()
        baseline = self._seen is None
        seen = self._seen or {}
        for deadline_id, deadline_time, dag_id in rows:
            key = str(deadline_id)
            if key not in seen:
                seen[key] = deadline_time
                if not baseline:
                    self._misses.add((dag_id,))
        self._seen = {key: when for key, when in seen.items() if utc_timestamp(when) >= since.timestamp()}
        yield self._misses.family(
            "airflow_dag_deadline_misses", "Deadline Alerts the DAG's runs missed (Airflow 3 deadlines).", ["dag_id"]
        )


def _missed(deadline: Table) -> ColumnElement[bool]:
    """A missed deadline, as the deployed schema records it: Airflow 3.2+ has a `missed` flag; 3.1 marks a miss
    only by queueing its callback (callback_state set)."""
    if "missed" in deadline.c:
        return deadline.c.missed.is_(True)
    return deadline.c.callback_state.is_not(None)
