"""What the console reads from Prometheus: a DAG's learned duration baseline (the exporter's family, the one the
AirflowDagRunOverBaseline alert compares against) and whether each scrape target is up.

Read with a short timeout and never raising: without a Prometheus ([observability] prometheus_url unset), or with one
that is down, the page shows what it has and says what it lacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlencode

from airflow_obs.observability import links
from airflow_obs.observability.console.http_read import Unreachable, bounded_get
from airflow_obs.observability.settings import PluginSettings

READ_TIMEOUT_SECONDS = 2.0
BASELINE_FAMILY = "airflow_dag_run_duration_baseline_p95_seconds"


class PrometheusUnavailable(Exception):
    """No Prometheus configured, or it could not answer: the message says which."""


@dataclass
class Targets:
    up: dict[str, bool] = field(default_factory=dict)  # job -> every target of it up
    error: str = ""


def _query(settings: PluginSettings, promql: str) -> list[dict]:
    if not settings.prometheus_url:
        raise PrometheusUnavailable("no Prometheus configured (AIRFLOW__OBSERVABILITY__PROMETHEUS_URL)")
    url = f"{settings.prometheus_url}/api/v1/query?{urlencode({'query': promql})}"
    try:
        status, body = bounded_get(url, READ_TIMEOUT_SECONDS)
        if status != 200:
            raise ValueError(f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
        return list(json.loads(body)["data"]["result"])
    except (Unreachable, ValueError, KeyError, TypeError) as error:  # the page says it, rather than fail
        raise PrometheusUnavailable(f"Prometheus at {settings.prometheus_url} could not answer: {error}") from None


def baseline_seconds(settings: PluginSettings, dag_id: str) -> float | None:
    """The p95 duration the exporter learned for the DAG's successful runs; None until it has one."""
    matcher = links.label_matcher("dag_id", dag_id)
    result = _query(settings, f"max({BASELINE_FAMILY}{{{matcher}}})")
    return float(result[0]["value"][1]) if result else None


def targets(settings: PluginSettings) -> Targets:
    """Each scrape job and whether all its targets answered the last scrape."""
    try:
        result = _query(settings, "min by (job) (up)")
    except PrometheusUnavailable as missing:
        return Targets(error=str(missing))
    return Targets({row["metric"].get("job", ""): row["value"][1] == "1" for row in result})
