"""Prometheus's config for the local stack: scrape every component, load the project's rules."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from local_stack.settings import LOOPBACK, REPO_ROOT, StackSettings

RULES_GLOB = str(REPO_ROOT / "alert_rules" / "*.rules.yml")

# Scrape jobs of the local stack: job name -> component whose port it scrapes.
SCRAPE_JOBS = {
    "airflow-exporter": "exporter",
    "node": "node_exporter",
    "prometheus": "prometheus",
    "alertmanager": "alertmanager",
}


def scrape_interval() -> str:
    """Scrape and rule-evaluation interval; tests shorten it with AIRFLOW_OBS_SCRAPE_INTERVAL."""
    return os.environ.get("AIRFLOW_OBS_SCRAPE_INTERVAL", "15s")


def render_prometheus_config(settings: StackSettings) -> dict[str, Any]:
    interval = scrape_interval()
    return {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "external_labels": {"environment": "local"},
        },
        "rule_files": [RULES_GLOB],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"{LOOPBACK}:{settings.ports['alertmanager']}"]}]}]
        },
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"{LOOPBACK}:{settings.ports[component]}"]}]}
            for job, component in SCRAPE_JOBS.items()
        ],
    }


def write_prometheus_config(settings: StackSettings) -> Path:
    path = settings.generated_dir / "prometheus.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(render_prometheus_config(settings), sort_keys=False))
    return path
