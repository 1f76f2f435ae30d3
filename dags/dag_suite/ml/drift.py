"""Drift of the model's inputs: recent orders' features against the training distribution in the model's metadata.

Per feature the PSI (see `psi`) is stored in the warehouse table `model_drift`, one row per (model_name, ds,
feature), replaced on reruns. When the largest PSI reaches PSI_THRESHOLD the drift DAG emits an event on the
model's drift asset, which schedules the training DAG.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from airflow.sdk import Asset

from dag_suite.ml.features import FEATURES, OrderFeatures
from dag_suite.ml.psi import feature_psi, summarize
from dag_suite.warehouse import run_script, upsert_rows

PSI_THRESHOLD = 0.2
RECENT_DAYS = 7
MIN_RECENT_ROWS = 50  # below this the PSI is mostly noise: nothing is measured

DRIFT_TABLE = "model_drift"
DRIFT_COLUMNS = (
    "model_name",
    "ds",
    "feature",
    "psi",
    "threshold",
    "drifted",
    "model_version",
    "window_start",
    "window_end",
    "recent_rows",
    "computed_at",
)
DRIFT_KEY = ("model_name", "ds", "feature")
DRIFT_DDL = f"""CREATE TABLE IF NOT EXISTS {DRIFT_TABLE} (
    model_name TEXT NOT NULL,
    ds DATE NOT NULL,
    feature TEXT NOT NULL,
    psi DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    drifted BOOLEAN NOT NULL,
    model_version INTEGER NOT NULL,
    window_start DATE NOT NULL,
    window_end DATE NOT NULL,
    recent_rows INTEGER NOT NULL,
    computed_at TEXT NOT NULL,
    PRIMARY KEY (model_name, ds, feature)
)"""


def drift_asset(model_name: str) -> Asset:
    """The asset whose events mean "this model's inputs drifted"; the training DAG is scheduled on it."""
    return Asset(f"model://{model_name}/drift")


def training_distributions(rows: list[OrderFeatures]) -> dict[str, dict[str, Any]]:
    """Every feature's reference distribution, for the model's metadata."""
    return {feature.name: summarize([getattr(row, feature.name) for row in rows], feature.kind) for feature in FEATURES}


def measure(distributions: dict[str, dict[str, Any]], rows: list[OrderFeatures]) -> dict[str, float]:
    """PSI per feature of `rows` against the training distributions (features the model knows about only)."""
    return {
        name: round(feature_psi(reference, [getattr(row, name) for row in rows]), 6)
        for name, reference in sorted(distributions.items())
    }


def summary(
    model_name: str, version: int, ds: date, window: tuple[date, date], rows: int, psi_by_feature: dict[str, float]
) -> dict[str, Any]:
    """The JSON-able result of one drift check, passed between the drift DAG's tasks."""
    max_psi = max(psi_by_feature.values(), default=None)
    return {
        "model_name": model_name,
        "model_version": version,
        "ds": ds.isoformat(),
        "window_start": window[0].isoformat(),
        "window_end": window[1].isoformat(),
        "recent_rows": rows,
        "psi": psi_by_feature,
        "max_psi": max_psi,
        "threshold": PSI_THRESHOLD,
        "drifted": max_psi is not None and max_psi >= PSI_THRESHOLD,
        "drifted_features": sorted(name for name, value in psi_by_feature.items() if value >= PSI_THRESHOLD),
    }


def record(hook: Any, result: dict[str, Any]) -> int:
    """Write one row per feature to DRIFT_TABLE (created if missing); a rerun for the same ds replaces its rows."""
    run_script(hook, [DRIFT_DDL])
    computed_at = datetime.now(UTC).isoformat()
    rows = [
        (
            result["model_name"],
            result["ds"],
            feature,
            value,
            result["threshold"],
            value >= result["threshold"],
            result["model_version"],
            result["window_start"],
            result["window_end"],
            result["recent_rows"],
            computed_at,
        )
        for feature, value in result["psi"].items()
    ]
    return upsert_rows(hook, DRIFT_TABLE, DRIFT_COLUMNS, DRIFT_KEY, rows)
