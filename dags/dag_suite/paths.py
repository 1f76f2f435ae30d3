"""Where the suite keeps files: landing data, the model registry, reports, backups."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "AIRFLOW_OBS_DATA_DIR"


def data_dir() -> Path:
    """AIRFLOW_OBS_DATA_DIR if set (make up sets it), else `<AIRFLOW_HOME>/data`."""
    if configured := os.environ.get(DATA_DIR_ENV):
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "data"


def folder(*parts: str) -> Path:
    """A folder under the data dir, created on first use."""
    path = data_dir().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
