"""Feature distributions and the population stability index (PSI).

A model's metadata keeps each feature's training distribution: numeric features as the share of rows in each of
(up to) ten quantile bins, categorical ones as the share of each category. Recent data is counted into the same
bins (unseen categories into one "other" bucket) and compared:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

Rule of thumb: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant shift.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

NUMERIC_BINS = 10
EPSILON = 1e-4  # stands in for empty bins, so ln() stays finite


def summarize(values: Sequence[Any], kind: str) -> dict[str, Any]:
    """A JSON-able reference distribution of one feature's training values."""
    if not len(values):
        raise ValueError("cannot summarize a feature with no values")
    if kind == "numeric":
        numbers = np.asarray(values, dtype=float)
        quantiles = np.quantile(numbers, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1])
        edges = [float(edge) for edge in np.unique(quantiles)]
        return {"kind": kind, "edges": edges, "proportions": _numeric_shares(edges, numbers)}
    counts = Counter(str(value) for value in values)
    categories = sorted(counts)
    return {
        "kind": kind,
        "categories": categories,
        "proportions": [counts[category] / len(values) for category in categories] + [0.0],  # last: unseen ones
    }


def _numeric_shares(edges: list[float], numbers: np.ndarray) -> list[float]:
    bins = np.searchsorted(np.asarray(edges), numbers, side="right")  # bin i: edges[i-1] <= x < edges[i]
    return [float(share) for share in np.bincount(bins, minlength=len(edges) + 1) / len(numbers)]


def shares(reference: dict[str, Any], values: Sequence[Any]) -> list[float]:
    """The share of `values` in each bin of `reference`."""
    if reference["kind"] == "numeric":
        return _numeric_shares(reference["edges"], np.asarray(values, dtype=float))
    known = {category: index for index, category in enumerate(reference["categories"])}
    counts = np.zeros(len(known) + 1)
    for value in values:
        counts[known.get(str(value), len(known))] += 1
    return [float(share) for share in counts / len(values)]


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two distributions over the same bins."""
    if len(expected) != len(actual):
        raise ValueError(f"distributions have {len(expected)} and {len(actual)} bins")
    e = np.clip(np.asarray(expected, dtype=float), EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=float), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_psi(reference: dict[str, Any], values: Sequence[Any]) -> float:
    return psi(reference["proportions"], shares(reference, values))
