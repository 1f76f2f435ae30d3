"""No dead panels: every panel query of every dashboard returns data from a real Prometheus scraping a real stack.
And where a Grafana is configured, alerts link to its dashboards and traces, not to the console.

Compose-only panels (their source runs only in compose) and event-only panels are skipped by name; an entry of
either list that names no panel fails the test. The stack's [observability] grafana_url is a stand-in for Grafana
(tests/integration/fake_grafana.py) that knows the generated dashboards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from airflow_obs.grafana_dashboards.compose_only import CELERY_STACK_ONLY, COMPOSE_ONLY, EVENT_ONLY
from airflow_obs.grafana_dashboards.queries import panel_queries, panels
from airflow_obs.grafana_dashboards.write import render
from dag_suite.faults import SLOW_SECONDS_VARIABLE

from local_stack.incidents.client import StackClient
from local_stack.incidents.stack_faults import BASELINE_DAG, BASELINE_TASK, FAILING_DAG, FAULT_FAIL
from tests.integration import link_checks
from tests.integration.conftest import LocalStack, running_stack, wait_for
from tests.integration.fake_grafana import FakeGrafana, fake_grafana
from tests.integration.panel_data import describe, queries_without_data

pytestmark = pytest.mark.integration

# Three successful runs teach the exporter a baseline (baseline_min_runs); the DAG is quick and fails nowhere.
SLOW_RUN_SECONDS = 40
RUNS = 3
DATA_DEADLINE_SECONDS = 120.0
SAMPLES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "30s", "$dag_id": BASELINE_DAG, "$task_id": ".*"}


@pytest.fixture(scope="module")
def grafana() -> Iterator[FakeGrafana]:
    with fake_grafana() as running:
        yield running


@pytest.fixture(scope="module")
def stack(grafana: FakeGrafana) -> Iterator[LocalStack]:
    with running_stack(
        {"AIRFLOW_OBS_SCRAPE_INTERVAL": "2s", "AIRFLOW__OBSERVABILITY__GRAFANA_URL": grafana.url}
    ) as started:
        yield started


def test_every_panel_query_returns_data_while_the_dag_suite_runs(stack: LocalStack) -> None:
    dashboards = [json.loads(text) for text in render().values()]
    titles = {(d["uid"], panel["title"]) for d in dashboards for panel in panels(d)}
    # The default `make up` (LocalExecutor, SQLite) has no Celery, Redis or PostgreSQL exporter.
    skipped = {**COMPOSE_ONLY, **CELERY_STACK_ONLY, **EVENT_ONLY}
    assert set(skipped) <= titles, f"skip entries naming no panel: {set(skipped) - titles}"
    queries = [q for d in dashboards for q in panel_queries(d) if (q.dashboard, q.panel) not in skipped]
    assert all(q.datasource == "prometheus" for q in queries)

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


def test_with_a_grafana_configured_every_link_opens_grafana_or_airflow_and_none_the_console(
    stack: LocalStack, grafana: FakeGrafana
) -> None:
    """A page (dashboard and trace links) and the always-firing Watchdog (a rule's dashboard link), every URL opened."""
    client = StackClient(stack.settings)
    run_id = client.trigger(FAILING_DAG, FAULT_FAIL)
    assert client.wait_for_run(FAILING_DAG, run_id) == "failed"

    def page_arrived() -> set[str] | None:
        urls = link_checks.captured_urls(stack.settings)
        return (
            urls if any("/explore?" in url for url in urls) and any("/d/airflow-dag?" in url for url in urls) else None
        )

    urls = wait_for(page_arrived, 120, "the page's Grafana links in the captures", interval=1)
    assert link_checks.console_links(urls, stack.settings) == []
    assert any(url.startswith(f"{grafana.url}/d/airflow-overview") for url in urls), link_checks.dump(urls)
    assert link_checks.failures(stack.settings, urls, grafana=grafana) == []
