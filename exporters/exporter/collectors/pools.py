"""Pools: each pool's slots by state, computed the way Airflow's Pool.slots_stats does."""

from __future__ import annotations

import math
from collections.abc import Iterator

from airflow_obs.exporter.database import airflow_table
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

# Slot-holding states. A deferred task holds a slot only in pools with include_deferred.
SLOT_STATES = ("running", "queued", "scheduled", "deferred")


class PoolCollector:
    """Yields airflow_pool_slots{pool, state}: total, open, running, queued, scheduled, deferred.

    slot_pool has one row per pool; the usage query reads live task instances through ti_pool
    (pool, state, priority_weight). An unlimited pool (slots = -1) reports total and open as +Inf.
    """

    name = "pools"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        pool, ti = airflow_table(self._engine, "slot_pool"), airflow_table(self._engine, "task_instance")
        with self._engine.connect() as connection:
            pools = connection.execute(select(pool.c.pool, pool.c.slots, pool.c.include_deferred)).all()
            usage = connection.execute(
                select(ti.c.pool, ti.c.state, func.sum(ti.c.pool_slots))
                .where(ti.c.state.in_(SLOT_STATES))
                .group_by(ti.c.pool, ti.c.state)
            ).all()
        used = {(name, state): float(slots or 0) for name, state, slots in usage}
        family = GaugeMetricFamily(
            "airflow_pool_slots",
            "Slots of each pool by state (open = total minus slots held).",
            labels=["pool", "state"],
        )
        for name, slots, include_deferred in sorted(pools):
            total = math.inf if slots == -1 else float(slots)
            held = used.get((name, "running"), 0.0) + used.get((name, "queued"), 0.0)
            if include_deferred:
                held += used.get((name, "deferred"), 0.0)
            family.add_metric([name, "total"], total)
            family.add_metric([name, "open"], max(0.0, total - held))
            for state in SLOT_STATES:
                family.add_metric([name, state], used.get((name, state), 0.0))
        yield family
