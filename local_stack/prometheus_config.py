"""Prometheus's config for the local stack: scrape every component, load the toolkit's rules rendered for it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from alerting.render import write_rule_files
from alerting.thresholds import ThresholdError

from local_stack.settings import LOOPBACK, SettingsError, StackSettings

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


def rules_environ(settings: StackSettings) -> dict[str, str]:
    """What the stack's rules are rendered with: links to this stack's Airflow, thresholds from AIRFLOW_OBS_ALERT_*."""
    environ = {key: value for key, value in os.environ.items() if key.startswith("AIRFLOW_OBS_")}
    environ["AIRFLOW_OBS_AIRFLOW_URL"] = settings.url("airflow")
    return environ


def rules_dir(settings: StackSettings) -> Path:
    return settings.generated_dir / "rules"


def render_prometheus_config(settings: StackSettings) -> dict[str, Any]:
    interval = scrape_interval()
    return {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "external_labels": {"environment": "local"},
        },
        "rule_files": [str(rules_dir(settings) / "*.rules.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"{LOOPBACK}:{settings.ports['alertmanager']}"]}]}]
        },
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"{LOOPBACK}:{settings.ports[component]}"]}]}
            for job, component in SCRAPE_JOBS.items()
        ],
    }


def write_prometheus_config(settings: StackSettings) -> Path:
    try:
        write_rule_files(rules_dir(settings), rules_environ(settings))
    except ThresholdError as error:  # reported like every other bad setting of `make up`
        raise SettingsError(str(error)) from error
    path = settings.generated_dir / "prometheus.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(render_prometheus_config(settings), sort_keys=False))
    return path
