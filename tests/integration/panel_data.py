"""Whether dashboard panels have data on a running stack: their Prometheus queries, run until each returns some."""

from __future__ import annotations

import json
import time
import urllib.parse

from airflow_obs.grafana_dashboards.queries import PanelQuery, panel_queries
from airflow_obs.grafana_dashboards.write import render

from tests.integration.conftest import http_json


def prometheus_query(base: str, expr: str) -> list:
    status, body = http_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert status == 200 and body["status"] == "success", body
    return body["data"]["result"]


def all_panel_queries() -> list[PanelQuery]:
    return [query for text in render().values() for query in panel_queries(json.loads(text))]


def queries_without_data(
    base: str, queries: list[PanelQuery], samples: dict[str, str], timeout: float
) -> dict[PanelQuery, str]:
    """The queries (with dashboard variables replaced by `samples`) still without data after `timeout` seconds.

    A query counts once it has returned data: some series exist only in part of a run's life.
    """
    pending = {}
    for query in queries:
        expr = query.expr
        for variable, value in samples.items():
            expr = expr.replace(variable, value)
        pending[query] = expr
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {q: expr for q, expr in pending.items() if not prometheus_query(base, expr)}
        if pending:
            time.sleep(2)
    return pending


def describe(pending: dict[PanelQuery, str]) -> str:
    return "dead panels:\n" + "\n".join(f"{q.dashboard} / {q.panel} [{q.ref_id}]: {e}" for q, e in pending.items())
