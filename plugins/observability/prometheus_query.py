"""An instant query against the deployment's Prometheus ([observability] prometheus_url), bounded and never hanging.

The console reads baselines and scrape health through it, and a page reads what a failing DAG affects (impact.py).
Callers decide what a missing answer means: the error says whether no Prometheus is configured or it could not
answer, so the page or the alert can say which.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from airflow_obs.observability.http_read import Unreachable, bounded_get
from airflow_obs.observability.settings import PluginSettings


class PrometheusUnavailable(Exception):
    """No Prometheus configured, or it could not answer: the message says which."""


def instant_query(settings: PluginSettings, promql: str, timeout: float) -> list[dict]:
    """The result vector of `promql` (each item {"metric": labels, "value": [time, "text"]})."""
    if not settings.prometheus_url:
        raise PrometheusUnavailable("no Prometheus configured (AIRFLOW__OBSERVABILITY__PROMETHEUS_URL)")
    url = f"{settings.prometheus_url}/api/v1/query?{urlencode({'query': promql})}"
    try:
        status, body = bounded_get(url, timeout)
        if status != 200:
            raise ValueError(f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
        return list(json.loads(body)["data"]["result"])
    except (Unreachable, ValueError, KeyError, TypeError) as error:  # the caller says it, rather than fail
        raise PrometheusUnavailable(f"Prometheus at {settings.prometheus_url} could not answer: {error}") from None
