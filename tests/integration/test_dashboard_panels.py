"""No dead panels: every panel query of every dashboard returns data from a real Prometheus scraping a real stack.

Compose-only panels (their source runs only in compose) and event-only panels are skipped by name; an entry of
either list that names no panel fails the test.
"""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest
from dag_suite.faults import SLOW_SECONDS_VARIABLE
from grafana_dashboards.compose_only import COMPOSE_ONLY, EVENT_ONLY
from grafana_dashboards.queries import panel_queries, panels
from grafana_dashboards.write import render

from local_stack.incidents.client import StackClient
from local_stack.incidents.scenarios import BASELINE_DAG, BASELINE_TASK
from tests.integration.conftest import http_json, running_stack

pytestmark = pytest.mark.integration

# Three successful runs teach the exporter a baseline (baseline_min_runs); the DAG is quick and fails nowhere.
SLOW_RUN_SECONDS = 40
RUNS = 3
DATA_DEADLINE_SECONDS = 120.0
SAMPLES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "30s", "$dag_id": BASELINE_DAG, "$task_id": ".*"}


def prometheus_query(base: str, expr: str) -> list:
    status, body = http_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert status == 200 and body["status"] == "success", body
    return body["data"]["result"]


def test_every_panel_query_returns_data_while_the_dag_suite_runs() -> None:
    dashboards = [json.loads(text) for text in render().values()]
    titles = {(d["uid"], panel["title"]) for d in dashboards for panel in panels(d)}
    skipped = {**COMPOSE_ONLY, **EVENT_ONLY}
    assert set(skipped) <= titles, f"skip entries naming no panel: {set(skipped) - titles}"
    queries = [q for d in dashboards for q in panel_queries(d) if (q.dashboard, q.panel) not in skipped]
    assert all(q.datasource == "prometheus" for q in queries)

    with running_stack({"AIRFLOW_OBS_SCRAPE_INTERVAL": "2s"}) as stack:
        client = StackClient(stack.settings)
        for _ in range(RUNS):
            run_id = client.trigger(BASELINE_DAG)
            assert client.wait_for_run(BASELINE_DAG, run_id, timeout=90) == "success"
        # Then one slow run, not awaited: the panels about running runs (age against the baseline) have data only
        # while one runs, and a healthy run of this DAG lasts about as long as the exporter's snapshot cache.
        client.api("POST", "/variables", {"key": SLOW_SECONDS_VARIABLE, "value": str(SLOW_RUN_SECONDS)})
        client.trigger(BASELINE_DAG, {"demo_fault_task": BASELINE_TASK, "demo_fault_mode": "slow"})
        base = stack.url("prometheus")
        pending = {q: q.expr for q in queries}
        for variable, value in SAMPLES.items():
            pending = {q: expr.replace(variable, value) for q, expr in pending.items()}
        deadline = time.monotonic() + DATA_DEADLINE_SECONDS
        while pending and time.monotonic() < deadline:
            # A query counts once it has returned data: some series exist only in part of a run's life.
            pending = {q: expr for q, expr in pending.items() if not prometheus_query(base, expr)}
            if pending:
                time.sleep(2)
    assert not pending, "dead panels:\n" + "\n".join(
        f"{q.dashboard} / {q.panel} [{q.ref_id}]: {e}" for q, e in pending.items()
    )
