"""A missed Deadline Alert on the running stack: the DAG's callback (in the triggerer) warns once, through
Alertmanager, with links that open; the exporter's alert about the same miss stays muted; Prometheus counts it.

Its own stack (short Alertmanager timings), so the scenario's three healthy runs and the late one are the DAG's
only runs: the deadline the scheduler sets is the one the scenario sized its slow run from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from airflow_obs.grafana_dashboards.queries import panel_queries
from airflow_obs.observability.links import FRESHNESS_DASHBOARD_UID

from local_stack.incidents import deadlines
from local_stack.incidents.arrivals import alertmanager_arrivals
from local_stack.incidents.client import StackClient
from local_stack.incidents.runner import Report, run_scenario
from local_stack.incidents.scenarios import SCENARIOS
from tests.conftest import REPO_ROOT
from tests.integration import link_checks
from tests.integration.conftest import LocalStack, running_stack, wait_for
from tests.integration.incident_checks import FAST_ALERTMANAGER, assert_once_per_sink
from tests.integration.panel_data import prometheus_query

pytestmark = pytest.mark.integration

DAG = deadlines.DEADLINE_DAG
PLUGIN_ALERT, EXPORTER_ALERT = "AirflowDagRunDeadlineMissed", "AirflowDagDeadlineMissed"
SETTLE_SECONDS = 8.0  # after the expected message: time for a duplicate to show up, if one were coming
EXPORTER_TIMEOUT = 90.0  # the exporter's scrape and the rule's evaluation after the miss


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack({**FAST_ALERTMANAGER, "AIRFLOW_OBS_SCRAPE_INTERVAL": "2s"}) as started:
        yield started


@pytest.fixture(scope="module")
def report(stack: LocalStack) -> Iterator[Report]:
    client = StackClient(stack.settings)
    report = run_scenario(stack.settings, SCENARIOS["deadline_missed"], fire_timeout=180, recover=False,
                          settle_seconds=SETTLE_SECONDS)  # fmt: skip
    try:
        yield report
    finally:
        deadlines.let_the_late_run_finish(client, report.context)


def exporter_alert(stack: LocalStack) -> dict | None:
    status, held = StackClient(stack.settings)._request(  # noqa: SLF001 - the same loopback JSON call
        "GET", f"{stack.url('alertmanager')}/api/v2/alerts?filter=alertname%3D{EXPORTER_ALERT}"
    )
    if status != 200:
        return None
    return next((alert for alert in held or [] if alert["labels"].get("dag_id") == DAG), None)


def test_the_missed_deadline_reaches_the_teams_slack_once_and_the_exporters_alert_stays_muted(
    stack: LocalStack, report: Report
) -> None:
    assert report.expected_sinks == {PLUGIN_ALERT: {"slack"}}
    assert_once_per_sink(report, report.firing)
    (slack,) = report.firing
    assert slack.dag_id == DAG
    # The exporter counted the same miss: Alertmanager holds its alert, muted by the plugin's.
    held = wait_for(lambda: exporter_alert(stack), EXPORTER_TIMEOUT, f"{EXPORTER_ALERT} in Alertmanager", 1)
    assert held["status"]["state"] == "suppressed" and held["status"]["inhibitedBy"], held
    time.sleep(SETTLE_SECONDS)
    about_deadlines = [
        arrival.describe()
        for arrival in alertmanager_arrivals(stack.settings)
        if arrival.received_at >= report.started_at and arrival.alertname in (PLUGIN_ALERT, EXPORTER_ALERT)
    ]
    assert about_deadlines == [slack.describe()], "one message about the miss, on any sink"


def test_every_link_of_the_message_opens_on_the_stack(stack: LocalStack, report: Report) -> None:
    (slack,) = report.firing
    links = slack.links
    airflow = stack.url("airflow")
    assert links["Runbook"] == f"{airflow}/observability/runbooks/{PLUGIN_ALERT}.md"
    assert (REPO_ROOT / "runbooks" / f"{PLUGIN_ALERT}.md").is_file()
    assert links["Airflow"].startswith(f"{airflow}/dags/{DAG}/runs/"), links
    assert links["Dashboard"].startswith(f"{airflow}/observability/"), links
    status, page = StackClient(stack.settings, user="oncall").signed_in_get(links["Runbook"])
    assert status == 200 and f"<h1>{PLUGIN_ALERT}</h1>" in page
    assert link_checks.failures(stack.settings, set(links.values())) == []


def test_prometheus_counts_the_miss_for_the_dag(stack: LocalStack, report: Report) -> None:
    query = f'airflow_dag_deadline_misses_total{{dag_id="{DAG}"}} > 0'
    found = wait_for(lambda: prometheus_query(stack.url("prometheus"), query), EXPORTER_TIMEOUT, query, 2)
    assert float(found[0]["value"][1]) >= 1


def deadline_misses_panel() -> str:
    dashboard = json.loads((REPO_ROOT / "dashboards" / f"{FRESHNESS_DASHBOARD_UID}.json").read_text())
    (query,) = [q for q in panel_queries(dashboard) if q.panel == "Deadline misses"]
    return query.expr


def test_the_deadline_misses_panel_shows_the_dag(stack: LocalStack, report: Report) -> None:
    wait_for(lambda: prometheus_query(stack.url("prometheus"), f'airflow_dag_deadline_misses_total{{dag_id="{DAG}"}}'),
             EXPORTER_TIMEOUT, "the counter", 2)  # fmt: skip
    expr = deadline_misses_panel().replace("$__range", "15m")
    deadline = time.monotonic() + 12  # a few scrapes: a second sample of the counter
    while not (found := prometheus_query(stack.url("prometheus"), expr)) and time.monotonic() < deadline:
        time.sleep(2)
    assert [series["metric"].get("dag_id") for series in found] == [DAG], expr
