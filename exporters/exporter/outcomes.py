"""Each DAG's latest outcome and last success, kept up to date from finished-run events.

Seeded once at start from the runs whose run_after is in the outcome window (idx_dag_run_run_after,
one aggregated row per DAG and final state), then updated by every run the tracker sees finish, so a
steady-state scrape reads nothing for them, whatever the history size.

"Latest" means the run that ended last, not the one with the latest run_after: a failed run cleared and
re-run to success is the latest outcome from then on, even if a newer run is still failed. Whoever fixed
the failure sees airflow_dag_last_run_failed go to 0, and the next run that fails sets it back to 1. It
also matches the seed, which takes the latest end_date per DAG.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from airflow_obs.exporter.database import airflow_table, utc_timestamp
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

FINISHED_RUN_STATES = ("success", "failed")


class LatestOutcomes:
    """Per DAG: the end time and state of its latest finished run, and the end time of its last success."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[float, str]] = {}
        self._last_success: dict[str, float] = {}

    def record(self, dag_id: str, state: str, ended: float) -> None:
        """A run finished at `ended`; the same run finishing again later replaces its earlier outcome."""
        if state not in FINISHED_RUN_STATES:
            return
        if dag_id not in self._latest or ended >= self._latest[dag_id][0]:
            self._latest[dag_id] = (ended, state)
        if state == "success" and ended >= self._last_success.get(dag_id, 0.0):
            self._last_success[dag_id] = ended

    def keep_only(self, dag_ids: set[str]) -> None:
        for table in (self._latest, self._last_success):
            for dag_id in [dag_id for dag_id in table if dag_id not in dag_ids]:
                del table[dag_id]

    def seed(self, connection: Connection, since: datetime) -> None:
        run = airflow_table(connection.engine, "dag_run")
        rows = connection.execute(
            select(run.c.dag_id, run.c.state, func.max(run.c.end_date))
            .where(run.c.run_after >= since, run.c.state.in_(FINISHED_RUN_STATES), run.c.end_date.is_not(None))
            .group_by(run.c.dag_id, run.c.state)
        )
        for dag_id, state, ended in rows:
            self.record(dag_id, state, utc_timestamp(ended))

    def families(self) -> Iterator[GaugeMetricFamily]:
        failed = GaugeMetricFamily(
            "airflow_dag_last_run_failed",
            "1 if the DAG's latest finished run failed, 0 if it succeeded.",
            labels=["dag_id"],
        )
        ended = GaugeMetricFamily(
            "airflow_dag_last_run_end_timestamp_seconds",
            "End time of the DAG's latest finished run.",
            labels=["dag_id"],
        )
        success = GaugeMetricFamily(
            "airflow_dag_last_success_timestamp_seconds",
            "End time of the DAG's latest successful run.",
            labels=["dag_id"],
        )
        for dag_id, (end, state) in sorted(self._latest.items()):
            failed.add_metric([dag_id], 1.0 if state == "failed" else 0.0)
            ended.add_metric([dag_id], end)
        for dag_id, end in sorted(self._last_success.items()):
            success.add_metric([dag_id], end)
        yield failed
        yield ended
        yield success
