"""Task instances now: where work is waiting or running, the oldest queued task, and lost heartbeats."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from airflow_obs.exporter.database import airflow_table, utc_timestamp
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

# Unfinished states worth watching. The ti_state index serves `state IN (...)`: only live work is read.
LIVE_STATES = ("scheduled", "queued", "running", "up_for_retry", "deferred")


class TaskInstanceCollector:
    """Yields live task-instance counts by state/pool/queue, queue age, running age and lost heartbeats."""

    name = "task_instances"

    def __init__(
        self,
        engine: Engine,
        heartbeat_timeout_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._heartbeat_timeout = heartbeat_timeout_seconds
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        ti = airflow_table(self._engine, "task_instance")
        now = self._clock()
        with self._engine.connect() as connection:
            # ti_state: bounded by the amount of live work, not by history.
            by_queue = connection.execute(
                select(ti.c.state, ti.c.pool, ti.c.queue, func.count(), func.min(ti.c.queued_dttm))
                .where(ti.c.state.in_(LIVE_STATES))
                .group_by(ti.c.state, ti.c.pool, ti.c.queue)
            ).all()
            # ti_state again, running only; the heartbeat is filtered on those rows (ti_heartbeat would
            # match every finished task instance too, since they keep their last heartbeat).
            running = connection.execute(
                select(ti.c.dag_id, ti.c.task_id, ti.c.start_date, ti.c.last_heartbeat_at).where(
                    ti.c.state == "running"
                )
            ).all()
        yield from self._queue_families(by_queue, now)
        yield from self._running_families(running, now)

    @staticmethod
    def _queue_families(rows, now: float) -> Iterator[Metric]:
        counts = GaugeMetricFamily(
            "airflow_task_instances",
            "Task instances now in each live state, by pool and executor queue.",
            labels=["state", "pool", "queue"],
        )
        oldest = GaugeMetricFamily(
            "airflow_task_instance_oldest_queued_age_seconds",
            "How long the oldest queued task instance of the pool and queue has waited for a worker.",
            labels=["pool", "queue"],
        )
        for state, pool, queue, count, queued_since in rows:
            counts.add_metric([state, pool, queue or ""], float(count))
            if state == "queued" and queued_since is not None:
                oldest.add_metric([pool, queue or ""], max(0.0, now - utc_timestamp(queued_since)))
        yield counts
        yield oldest

    def _running_families(self, rows, now: float) -> Iterator[Metric]:
        oldest: dict[tuple[str, str], float] = {}
        lost: dict[str, int] = {}
        for dag_id, task_id, started, heartbeat in rows:
            if started is not None:
                age = max(0.0, now - utc_timestamp(started))
                oldest[(dag_id, task_id)] = max(age, oldest.get((dag_id, task_id), 0.0))
            # A task that has not heartbeaten yet is judged from its start time.
            last_sign_of_life = heartbeat or started
            if last_sign_of_life is not None and now - utc_timestamp(last_sign_of_life) > self._heartbeat_timeout:
                lost[dag_id] = lost.get(dag_id, 0) + 1
        running_age = GaugeMetricFamily(
            "airflow_task_instance_oldest_running_age_seconds",
            "How long the task's oldest running instance has been running.",
            labels=["dag_id", "task_id"],
        )
        for (dag_id, task_id), age in sorted(oldest.items()):
            running_age.add_metric([dag_id, task_id], age)
        heartbeat_lost = GaugeMetricFamily(
            "airflow_task_instances_heartbeat_lost",
            f"Running task instances with no heartbeat for over {self._heartbeat_timeout:.0f}s "
            "(Airflow's task_instance_heartbeat_timeout).",
            labels=["dag_id"],
        )
        for dag_id, count in sorted(lost.items()):
            heartbeat_lost.add_metric([dag_id], float(count))
        yield running_age
        yield heartbeat_lost
