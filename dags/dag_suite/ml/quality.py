"""The quality gate: a model is deployed only if its holdout ROC AUC reaches the threshold.

A model that ranks returns no better than chance has a ROC AUC near 0.5; the default bar, 0.65, is well above
chance yet reachable with the warehouse's features. A run can raise or lower it with the DAG param `min_roc_auc`.
"""

from __future__ import annotations

import math
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

GATE_METRIC = "roc_auc"
MIN_ROC_AUC = 0.65


class QualityGateFailed(AirflowFailException):
    """The candidate model is below the bar: the run fails without retries and the model is not deployed."""


def check_quality_gate(metrics: dict[str, Any], threshold: float = MIN_ROC_AUC, metric: str = GATE_METRIC) -> str:
    """Raise QualityGateFailed, naming the metric, its value and the threshold, unless value >= threshold."""
    value = metrics.get(metric)
    if value is None or not math.isfinite(float(value)):
        raise QualityGateFailed(f"quality gate failed: metric {metric} is missing or not a number ({value!r})")
    if float(value) < threshold:
        raise QualityGateFailed(
            f"quality gate failed: {metric}={float(value):.4f} is below the threshold {threshold:.4f}; "
            "the candidate is not deployed and CURRENT is unchanged"
        )
    return f"quality gate passed: {metric}={float(value):.4f} >= threshold {threshold:.4f}"
