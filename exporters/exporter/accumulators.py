"""In-memory counters and histograms fed by finished-work events, exposed as fresh metric families."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

# Bucket bounds in seconds. A run or task takes seconds to hours; a scheduled run starts within minutes.
# Few buckets on purpose: every bound is one more series per DAG (1,000 DAGs x 10 buckets = 10,000 series).
RUN_DURATION_BUCKETS = (30, 60, 300, 900, 1800, 3600, 7200, 21600)
TASK_DURATION_BUCKETS = (1, 10, 30, 60, 300, 900, 1800, 3600)
SCHEDULE_DELAY_BUCKETS = (5, 30, 60, 300, 900, 3600)

Labels = tuple[str, ...]


class Counters:
    """Monotonic counts per label set; starts empty (a counter reset) when the exporter starts."""

    def __init__(self) -> None:
        self._values: dict[Labels, float] = defaultdict(float)

    def add(self, labels: Labels, amount: float = 1.0) -> None:
        self._values[labels] += amount

    def keep_only(self, dag_ids: set[str]) -> None:
        """Forget label sets whose first label (the dag_id) is not in `dag_ids`: deleted DAGs disappear."""
        for labels in [labels for labels in self._values if labels[0] not in dag_ids]:
            del self._values[labels]

    def family(self, name: str, documentation: str, label_names: Sequence[str]) -> CounterMetricFamily:
        family = CounterMetricFamily(name, documentation, labels=list(label_names))
        for labels, value in sorted(self._values.items()):
            family.add_metric(list(labels), value)
        return family


class Histograms:
    """Cumulative histograms per label set, with fixed bucket bounds."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(float(bound) for bound in bounds)
        # Per label set: count per bucket (the last one is +Inf) and the sum.
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = defaultdict(float)

    def keep_only(self, dag_ids: set[str]) -> None:
        """Forget label sets whose first label (the dag_id) is not in `dag_ids`: deleted DAGs disappear."""
        for labels in [labels for labels in self._counts if labels[0] not in dag_ids]:
            del self._counts[labels]
            del self._sums[labels]

    def observe(self, labels: Labels, value: float) -> None:
        counts = self._counts.setdefault(labels, [0] * (len(self._bounds) + 1))
        counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sums[labels] += value

    def family(self, name: str, documentation: str, label_names: Sequence[str]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, documentation, labels=list(label_names))
        upper_bounds = [*(_format_bound(bound) for bound in self._bounds), "+Inf"]
        for labels, counts in sorted(self._counts.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(upper_bounds, counts, strict=True):
                cumulative += count
                buckets.append((bound, float(cumulative)))
            family.add_metric(list(labels), buckets, sum_value=self._sums[labels])
        return family


def _format_bound(bound: float) -> str:
    return str(int(bound)) if math.isfinite(bound) and bound == int(bound) else str(bound)
