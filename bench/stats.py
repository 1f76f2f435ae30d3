"""The statistics every benchmark reports, computed one way."""

from __future__ import annotations

import math
import statistics


def nearest_rank(values: list[float], quantile: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `quantile` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


def latency_summary(samples: list[float]) -> dict[str, float]:
    """Count, median, nearest-rank p95 and maximum of a benchmark's samples."""
    return {
        "n": len(samples),
        "p50": statistics.median(samples),
        "p95": nearest_rank(samples, 0.95),
        "max": max(samples),
    }
