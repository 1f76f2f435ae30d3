"""No dead panels: every panel query of every dashboard returns data from a real Prometheus scraping a real stack.

Compose-only panels (their source runs only in compose) and event-only panels are skipped by name; an entry of
either list that names no panel fails the test.
"""

from __future__ import annotations

import json

import pytest
from dag_suite.faults import SLOW_SECONDS_VARIABLE
from grafana_dashboards.compose_only import CELERY_STACK_ONLY, COMPOSE_ONLY, EVENT_ONLY
from grafana_dashboards.queries import panel_queries, panels
from grafana_dashboards.write import render

from local_stack.incidents.client import StackClient
from local_stack.incidents.scenarios import BASELINE_DAG, BASELINE_TASK
from tests.integration.conftest import running_stack
from tests.integration.panel_data import describe, queries_without_data

pytestmark = pytest.mark.integration

# Three successful runs teach the exporter a baseline (baseline_min_runs); the DAG is quick and fails nowhere.
SLOW_RUN_SECONDS = 40
RUNS = 3
DATA_DEADLINE_SECONDS = 120.0
SAMPLES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "30s", "$dag_id": BASELINE_DAG, "$task_id": ".*"}


def test_every_panel_query_returns_data_while_the_dag_suite_runs() -> None:
    dashboards = [json.loads(text) for text in render().values()]
    titles = {(d["uid"], panel["title"]) for d in dashboards for panel in panels(d)}
    # The default `make up` (LocalExecutor, SQLite) has no Celery, Redis or PostgreSQL exporter.
    skipped = {**COMPOSE_ONLY, **CELERY_STACK_ONLY, **EVENT_ONLY}
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
        pending = queries_without_data(stack.url("prometheus"), queries, SAMPLES, DATA_DEADLINE_SECONDS)
    assert not pending, describe(pending)
