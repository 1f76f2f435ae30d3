"""Learned duration baselines: p50/p95 of each DAG's (or task's) recent successful runs.

An alert compares a run still in progress with its own history, e.g.
`airflow_dag_run_oldest_running_age_seconds > 2 * airflow_dag_run_duration_baseline_p95_seconds`,
with no per-DAG thresholds to maintain. Baselines are seeded once at start from a bounded window of
history, then fed by finished-work events, so steady-state scrapes read nothing for them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterator
from datetime import datetime

from airflow_obs.exporter.database import airflow_table
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import select
from sqlalchemy.engine import Connection

# One gauge per quantile (a `quantile` label is reserved for summaries).
QUANTILES = {"p50": 0.5, "p95": 0.95}


class DurationBaselines:
    """The last `max_runs` successful durations per key; quantiles once at least `min_runs` are known."""

    def __init__(self, max_runs: int, min_runs: int) -> None:
        self._max_runs = max_runs
        self._min_runs = min_runs
        self._samples: dict[Hashable, deque[float]] = {}

    def keep_only(self, dag_ids: set[str]) -> None:
        """Forget baselines of DAGs not in `dag_ids` (keys are a dag_id or a (dag_id, task_id) pair)."""
        for key in [key for key in self._samples if (key[0] if isinstance(key, tuple) else key) not in dag_ids]:
            del self._samples[key]

    def observe(self, key: Hashable, seconds: float) -> None:
        self._samples.setdefault(key, deque(maxlen=self._max_runs)).append(seconds)

    def quantiles(self) -> Iterator[tuple[Hashable, int, dict[str, float]]]:
        for key, samples in sorted(self._samples.items()):
            if len(samples) >= self._min_runs:
                ordered = sorted(samples)
                yield key, len(ordered), {name: _nearest_rank(ordered, q) for name, q in QUANTILES.items()}

    def families(self, prefix: str, what: str, label_names: list[str]) -> Iterator[GaugeMetricFamily]:
        baselines = {
            name: GaugeMetricFamily(
                f"{prefix}_duration_baseline_{name}_seconds",
                f"{name} of the duration of the {what}'s recent successful runs (learned by the exporter).",
                labels=label_names,
            )
            for name in QUANTILES
        }
        samples = GaugeMetricFamily(
            f"{prefix}_duration_baseline_samples",
            f"How many recent successful {what} runs the baseline is computed from.",
            labels=label_names,
        )
        for key, count, values in self.quantiles():
            labels = list(key) if isinstance(key, tuple) else [key]
            for name, value in values.items():
                baselines[name].add_metric(labels, value)
            samples.add_metric(labels, float(count))
        yield from baselines.values()
        yield samples


def _nearest_rank(ordered: list[float], quantile: float) -> float:
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


def seed_dag_baselines(connection: Connection, baselines: DurationBaselines, since: datetime) -> None:
    """Successful runs whose run_after is in the window (idx_dag_run_run_after), oldest first."""
    run = airflow_table(connection.engine, "dag_run")
    rows = connection.execute(
        select(run.c.dag_id, run.c.start_date, run.c.end_date)
        .where(run.c.run_after >= since, run.c.state == "success", run.c.start_date.is_not(None))
        .where(run.c.end_date.is_not(None))
        .order_by(run.c.end_date)
    )
    for dag_id, start, end in rows:
        baselines.observe(dag_id, max(0.0, (end - start).total_seconds()))


def seed_task_baselines(connection: Connection, baselines: DurationBaselines, since: datetime) -> None:
    """Successful task instances of runs in the window: idx_dag_run_run_after, then ti_dag_run per run."""
    run, ti = airflow_table(connection.engine, "dag_run"), airflow_table(connection.engine, "task_instance")
    rows = connection.execute(
        select(ti.c.dag_id, ti.c.task_id, ti.c.duration)
        .join(run, (run.c.dag_id == ti.c.dag_id) & (run.c.run_id == ti.c.run_id))
        .where(run.c.run_after >= since, ti.c.state == "success", ti.c.duration.is_not(None))
        .order_by(ti.c.end_date)
    )
    for dag_id, task_id, duration in rows:
        baselines.observe((dag_id, task_id), float(duration))
