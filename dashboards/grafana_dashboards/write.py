"""Renders the dashboards to stable JSON (sorted keys, 2-space indent, trailing newline) and compares it."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_obs.grafana_dashboards import BUILDERS
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from airflow_obs.package_data import DASHBOARDS_DIR

DASHBOARD_DIR = DASHBOARDS_DIR


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    rendered = {}
    for build in BUILDERS:
        dashboard = build()
        text = json.dumps(dashboard, cls=JSONEncoder, sort_keys=True, indent=2) + "\n"
        rendered[f"{dashboard.uid}.json"] = text
    return rendered


def write(directory: Path = DASHBOARD_DIR) -> list[Path]:
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def differing(directory: Path = DASHBOARD_DIR) -> list[str]:
    """Names of the committed files that are missing or differ from what the code renders."""
    return [
        name
        for name, text in render().items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]
