"""What the console shows in a browser, checked against its sources: Alertmanager's API for the alerts, the REST API
(the metadata DB) for the runs and the schedule. Each check leaves a screenshot (tests/integration/browser.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_obs.observability.console.alerts import NOT_PROBLEMS

from local_stack.incidents.client import StackClient
from local_stack.secrets import ensure_airflow_passwords
from tests.integration import browser
from tests.integration.conftest import LocalStack, http_json

RUNS_SHOWN = 10  # the DAG page's run table


def signed_in_page(chromium: Any, stack: LocalStack, dark: bool = False) -> Any:
    """A page signed in as `oncall` through Airflow's login, as a person arriving without a session would be."""
    page = browser.new_page(chromium, dark=dark)
    console = f"{stack.url('airflow')}/observability/console"
    assert page.goto(console).status == 401
    page.wait_for_url(lambda url: urlsplit(url).path == "/auth/login")
    browser.sign_in_on_the_login_page(page, "oncall", ensure_airflow_passwords(stack.settings)["oncall"])
    assert page.url == console
    return page


def firing_in_alertmanager(stack: LocalStack, dag_id: str) -> set[str]:
    matcher = quote(f'dag_id="{dag_id}"', safe="")
    url = f"{stack.url('alertmanager')}/api/v2/alerts?active=true&silenced=false&inhibited=false&filter={matcher}"
    status, alerts = http_json(url)
    assert status == 200, alerts
    return {alert["labels"]["alertname"] for alert in alerts} - NOT_PROBLEMS  # the console leaves those out


def latest_runs(stack: LocalStack, dag_id: str) -> list[str]:
    client = StackClient(stack.settings, user="oncall")
    answer = client.api("GET", f"/dags/{dag_id}/dagRuns?order_by=-run_after&limit={RUNS_SHOWN}")
    return [run["dag_run_id"] for run in answer["dag_runs"]]


def rows(page: Any, selector: str, attribute: str) -> list[str]:
    return page.locator(selector).evaluate_all(f"rows => rows.map(row => row.dataset.{attribute})")


def dag_console_agrees_with_its_sources(page: Any, stack: LocalStack, dag_id: str, screenshot: str) -> dict:
    """Open the DAG's console page; its firing alerts are Alertmanager's and its runs the DB's. What it showed."""
    page.goto(f"{stack.url('airflow')}/observability/dags/{quote(dag_id, safe='')}/monitoring")
    assert page.inner_text("h1") == dag_id
    shown = {
        "alerts": set(rows(page, "#alerts tr.alert.firing", "alertname")),
        "runs": rows(page, "#runs tr[data-run-id]", "runId"),
        "overdue": page.inner_text("#overdue"),
    }
    assert shown["alerts"] == firing_in_alertmanager(stack, dag_id), shown["alerts"]
    assert shown["runs"] == latest_runs(stack, dag_id), shown["runs"]
    if shown["runs"]:
        assert page.evaluate("Chart.getChart(document.getElementById('durations')) !== undefined"), "no chart drawn"
    browser.screenshot(page, screenshot)
    return shown


def next_run_is_overdue(stack: LocalStack, dag_id: str) -> bool:
    """The DB's view, through the REST API: the DAG's next run should have been created by now."""
    dag = StackClient(stack.settings, user="oncall").api("GET", f"/dags/{dag_id}")
    due = dag.get("next_dagrun_run_after") or dag.get("next_dagrun_create_after")
    return bool(due) and datetime.fromisoformat(due.replace("Z", "+00:00")) < datetime.now(UTC)
