"""Prometheus's config, one builder for both stacks: `make up` (loopback ports) and compose (service names).

`prometheus_config()` is the single source: it takes the scrape targets and where rules and Alertmanager
are, so the two deployments differ only in those inputs. `local_stack.compose_config` writes compose's copy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from airflow_obs.alerting.catalogue import CELERY_FLOWER_JOB
from airflow_obs.alerting.render import write_rule_files
from airflow_obs.alerting.thresholds import ThresholdError
from airflow_obs.observability.settings import ENV_PREFIX as PLUGIN_SETTINGS

from local_stack.settings import LOOPBACK, STACK_ENVIRONMENT, SettingsError, StackSettings

# Scrape jobs of the local stack: job name -> component whose port it scrapes. The job names are shared
# with compose: alerts select on them (airflow_obs.alerting.catalogue.EXPORTER_JOB is "airflow-exporter").
SCRAPE_JOBS = {
    "airflow-exporter": "exporter",
    "node": "node_exporter",
    "prometheus": "prometheus",
    "alertmanager": "alertmanager",
}
# Jobs only some stacks have, scraped when the stack runs them (compose has them all, same names).
POSTGRES_SCRAPE_JOBS = {"postgres": "postgres_exporter"}
CELERY_SCRAPE_JOBS = {CELERY_FLOWER_JOB: "flower", "redis": "redis_exporter"}


def local_scrape_jobs(settings: StackSettings) -> dict[str, str]:
    """Job name -> component, for what this stack runs."""
    jobs = dict(SCRAPE_JOBS)
    if settings.db == "postgres":
        jobs.update(POSTGRES_SCRAPE_JOBS)
    if settings.executor == "celery":
        jobs.update(CELERY_SCRAPE_JOBS)
    return jobs


def scrape_interval() -> str:
    """Scrape and rule-evaluation interval; tests shorten it with AIRFLOW_OBS_SCRAPE_INTERVAL."""
    return os.environ.get("AIRFLOW_OBS_SCRAPE_INTERVAL", "15s")


def prometheus_config(
    *,
    targets: Mapping[str, str],
    alertmanager: str,
    rule_files: Sequence[str],
    interval: str,
    environment: str,
) -> dict[str, Any]:
    """Prometheus's config: one static job per `targets` entry (job name -> host:port)."""
    for job, target in targets.items():
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"scrape target {target!r} of job {job!r}: expected host:port")
    return {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            # Keeps one deployment's alerts apart from another's in a shared Alertmanager (inhibit_rules' equal).
            "external_labels": {"environment": environment},
        },
        "rule_files": list(rule_files),
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
        ],
    }


def dump_prometheus_config(config: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(config), sort_keys=False)


def rules_environ(settings: StackSettings) -> dict[str, str]:
    """What the stack's rules are rendered with: links as the plugin's [observability] settings make them (to this
    stack's Airflow), thresholds from AIRFLOW_OBS_ALERT_*."""
    environ = {key: value for key, value in os.environ.items() if key.startswith(("AIRFLOW_OBS_", PLUGIN_SETTINGS))}
    environ["AIRFLOW__OBSERVABILITY__AIRFLOW_URL"] = settings.url("airflow")
    return environ


def rules_dir(settings: StackSettings) -> Path:
    return settings.generated_dir / "rules"


def render_prometheus_config(settings: StackSettings) -> dict[str, Any]:
    return prometheus_config(
        targets={job: f"{LOOPBACK}:{settings.ports[c]}" for job, c in local_scrape_jobs(settings).items()},
        alertmanager=f"{LOOPBACK}:{settings.ports['alertmanager']}",
        rule_files=[str(rules_dir(settings) / "*.rules.yml")],
        interval=scrape_interval(),
        environment=STACK_ENVIRONMENT,
    )


def write_prometheus_config(settings: StackSettings) -> Path:
    try:
        write_rule_files(rules_dir(settings), rules_environ(settings))
    except ThresholdError as error:  # reported like every other bad setting of `make up`
        raise SettingsError(str(error)) from error
    path = settings.generated_dir / "prometheus.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_prometheus_config(render_prometheus_config(settings)))
    return path
