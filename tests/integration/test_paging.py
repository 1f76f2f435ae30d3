"""One alert path on the running embedded stack: every final failure pages once, through Alertmanager, and resolves.

The failures here are the ones no callback reports (Airflow's listeners do, in the api-server and the scheduler):
a task marked failed, task processes killed, a lost heartbeat, a run over its dagrun_timeout. A try killed with
retries left pages nobody; a failure cleared to success resolves once and nothing pages after; a silence holds.

One stack for the module, with compressed thresholds, second-long Alertmanager timings and a 20 s task heartbeat
timeout. The run that times out (4 minutes) is started first and checked last, so its wait overlaps the others.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

from local_stack.incidents import task_failures
from local_stack.incidents.arrivals import Arrival, alertmanager_arrivals
from local_stack.incidents.client import StackClient
from local_stack.incidents.runner import Report, run_scenario, wait_until_quiet
from local_stack.incidents.scenarios import COMPRESSED_THRESHOLDS, SCENARIOS
from local_stack.secrets import ensure_airflow_passwords
from tests.integration import browser, console_checks, link_checks
from tests.integration.conftest import LocalStack, http_json, running_stack, wait_for
from tests.integration.incident_checks import (
    FAST_ALERTMANAGER,
    assert_group_resolved_once_per_sink,
    assert_links_work,
    assert_once_per_sink,
)

pytestmark = pytest.mark.integration

SETTLE_SECONDS = 8.0  # after the expected messages: time for a duplicate to show up, if one were coming
PAGE_SINKS = {"slack", "email", "pager"}  # the on-call route of a critical page
HEARTBEAT_TIMEOUT = {"AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack({**COMPRESSED_THRESHOLDS, **FAST_ALERTMANAGER, **HEARTBEAT_TIMEOUT}) as started:
        yield started


@pytest.fixture(scope="module")
def timing_out(stack: LocalStack) -> dict[str, Any]:
    """A run that hangs past its 4-minute dagrun_timeout, started before the other tests so its wait overlaps."""
    return task_failures.start_a_run_that_will_time_out(StackClient(stack.settings))


def run(stack: LocalStack, name: str, **changes: Any) -> Report:
    scenario = dataclasses.replace(SCENARIOS[name], **changes)
    wait_until_quiet(stack.settings, scenario)
    time.sleep(SETTLE_SECONDS)
    return run_scenario(stack.settings, scenario, fire_timeout=300, resolve_timeout=300, settle_seconds=SETTLE_SECONDS)


def pager_alerts(arrival: Arrival) -> list[dict[str, Any]]:
    """The alerts of one pager notification (Alertmanager's JSON lists each, with labels and annotations)."""
    return [alert for alert in arrival.record["body"]["alerts"] if alert["status"] == arrival.status]


def the_pager_page(report: Report) -> Arrival:
    """The one pager notification that fired (its webhook record lists one arrival per alert it carries)."""
    pages = {id(arrival.record): arrival for arrival in report.firing if arrival.sink == "pager"}
    (page,) = pages.values()
    return page


def try_of(alert: dict[str, Any]) -> int:
    return int(parse_qs(urlsplit(alert["annotations"]["log_url"]).query)["try_number"][0])


def test_a_running_task_marked_failed_pages_once_with_that_trys_log_and_resolves_once(
    stack: LocalStack, timing_out: dict[str, Any]
) -> None:
    report = run(stack, "task_marked_failed")

    assert report.expected_sinks == {"AirflowTaskFailed": PAGE_SINKS}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)
    (alert,) = pager_alerts(the_pager_page(report))
    assert alert["annotations"]["run_id"] == report.context["run_id"]
    assert try_of(alert) == report.context["try_number"]
    assert "manually set" in alert["annotations"]["error"]
    assert_links_work(stack, the_pager_page(report))


def test_tasks_killed_in_three_dags_page_once_per_route_for_their_last_try_and_never_for_the_retried_one(
    stack: LocalStack,
) -> None:
    report = run(stack, "tasks_killed")

    assert_once_per_sink(report, report.firing)
    assert_group_resolved_once_per_sink(report)
    page = the_pager_page(report)
    alerts = pager_alerts(page)
    assert sorted(alert["labels"]["dag_id"] for alert in alerts) == sorted(task_failures.KILLED_TASKS)
    assert {try_of(alert) for alert in alerts} == {2}, "the first tries were retried: they paged nobody"
    assert len({alert["labels"]["error_fingerprint"] for alert in alerts}) == 1, "one cause, one fingerprint"
    assert page.received_at > datetime.fromisoformat(report.context["try_2_killed_at"])
    for alert in alerts:
        run_id = report.context["runs"][alert["labels"]["dag_id"]]
        assert f"/runs/{quote(run_id, safe='')}/tasks/" in alert["annotations"]["log_url"]


def test_a_task_whose_heartbeat_stops_pages_once_for_its_last_try_only(stack: LocalStack) -> None:
    report = run(stack, "task_heartbeat_lost")

    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)
    page = the_pager_page(report)
    (alert,) = pager_alerts(page)
    assert try_of(alert) == 2 and alert["annotations"]["run_id"] == report.context["run_id"]
    assert page.received_at > datetime.fromisoformat(report.context["try_2_lost_at"])


def test_a_failure_cleared_to_success_resolves_once_and_nothing_pages_after(stack: LocalStack) -> None:
    report = run(stack, "failure_cleared_to_success")

    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)
    # The exporter saw a failed run and then the success: its DAG alerts (failing "for an hour" is 45 s here) must
    # not page for an incident that is over.
    time.sleep(75)
    after = [
        arrival
        for arrival in alertmanager_arrivals(stack.settings)
        if arrival.received_at > report.recovered_at
        and arrival.status == "firing"
        and arrival.dag_id in ("", task_failures.FAILING_DAG)
        and arrival.alertname != "Watchdog"
    ]
    assert after == [], [arrival.describe() for arrival in after]


def silence(stack: LocalStack, dag_id: str) -> str:
    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": "dag_id", "value": dag_id, "isRegex": False}],
        "startsAt": now.isoformat(),
        "endsAt": now.replace(year=now.year + 1).isoformat(),
        "createdBy": "test_paging",
        "comment": "a flapping DAG",
    }
    status, reply = http_json(stack.url("alertmanager") + "/api/v2/silences", body)
    assert status == 200, reply
    return reply["silenceID"]


def test_a_silence_on_the_dag_mutes_its_page_and_once_expired_the_next_failure_pages(stack: LocalStack) -> None:
    scenario, client = SCENARIOS["task_fails_for_good"], StackClient(stack.settings)
    wait_until_quiet(stack.settings, scenario)
    started = datetime.now(UTC)
    silence_id = silence(stack, scenario.dag_id)

    scenario.inject(client)

    def silenced() -> list[dict[str, Any]]:
        url = stack.url("alertmanager") + f'/api/v2/alerts?filter=dag_id%3D"{scenario.dag_id}"&silenced=true'
        return [a for a in http_json(url)[1] if a["labels"]["alertname"] == "AirflowTaskFailed"]

    (held,) = wait_for(silenced, 60, "the failure's alert in Alertmanager", interval=1)
    assert held["status"]["silencedBy"] == [silence_id]
    time.sleep(SETTLE_SECONDS)
    scenario.recover(client, {})  # a healthy run: the alert resolves while still silenced
    wait_until_quiet(stack.settings, scenario)
    muted = [
        a for a in alertmanager_arrivals(stack.settings) if a.received_at >= started and a.dag_id == scenario.dag_id
    ]
    assert muted == [], [arrival.describe() for arrival in muted]

    status, _ = http_json(stack.url("alertmanager") + f"/api/v2/silence/{silence_id}", method="DELETE")
    assert status == 200
    report = run(stack, "task_fails_for_good")

    assert report.expected_sinks == {"AirflowTaskFailed": PAGE_SINKS}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)


def test_a_run_over_its_dagrun_timeout_pages_once_for_the_run(stack: LocalStack, timing_out: dict[str, Any]) -> None:
    client = StackClient(stack.settings)
    scenario = SCENARIOS["run_timed_out"]
    started = datetime.fromtimestamp(timing_out["started_at"], UTC)

    task_failures.wait_timed_out(client, timing_out)
    report = Report(scenario.name, started, expected_sinks={"AirflowDagRunFailed": PAGE_SINKS})

    def pages() -> list[Arrival] | None:
        found = [
            a
            for a in alertmanager_arrivals(stack.settings)
            if a.received_at >= started and a.alertname == "AirflowDagRunFailed" and a.status == "firing"
        ]
        return found if {a.sink for a in found} >= PAGE_SINKS else None

    wait_for(pages, 60, "the timed-out run's page on every sink", interval=1)
    time.sleep(SETTLE_SECONDS)
    assert_once_per_sink(report, pages())
    (alert,) = pager_alerts(next(a for a in pages() if a.sink == "pager"))
    assert alert["labels"]["dag_id"] == task_failures.TIMEOUT_DAG
    assert alert["annotations"]["run_id"] == timing_out["run_id"]
    assert "dagrun_timeout" in alert["annotations"]["description"]
    task_pages = [
        arrival
        for arrival in alertmanager_arrivals(stack.settings)
        if arrival.received_at >= started
        and arrival.alertname == "AirflowTaskFailed"
        and arrival.dag_id == task_failures.TIMEOUT_DAG
    ]
    assert task_pages == [], "no task failed: its hung task was skipped"


# --- the page's links, followed in a browser ---------------------------------------------------------------------
def test_an_oncall_engineer_follows_every_link_of_the_page_in_a_browser_and_each_opens_something_real(
    stack: LocalStack,
) -> None:
    """Signed out, from the pager's copy of a firing page: the runbook (through Airflow's login), the console's DAG
    page and its links out of the UI's frame (task log, silence form), the trace, and the On-call page."""
    scenario = SCENARIOS["task_fails_for_good"]
    wait_until_quiet(stack.settings, scenario)
    report = run_scenario(stack.settings, scenario, fire_timeout=300, recover=False)
    try:
        (alert,) = pager_alerts(the_pager_page(report))
        follow_the_pages_links(stack, alert, report.context["runs"][-1])
    finally:
        scenario.recover(StackClient(stack.settings), report.context)


def follow_the_pages_links(stack: LocalStack, alert: dict[str, Any], run_id: str) -> None:
    annotations, dag_id = alert["annotations"], alert["labels"]["dag_id"]
    airflow = stack.url("airflow")
    password = ensure_airflow_passwords(stack.settings)["oncall"]
    with browser.chromium() as chromium:
        page = browser.new_page(chromium)
        assert page.goto(annotations["runbook_url"]).status == 401
        page.wait_for_url(lambda url: urlsplit(url).path == "/auth/login")  # the 401 page sends the browser on
        browser.sign_in_on_the_login_page(page, "oncall", password)  # the read-only account
        assert page.url == annotations["runbook_url"] and page.inner_text("h1") == "AirflowTaskFailed"
        browser.screenshot(page, "runbook")

        # No Grafana here: the dashboard link is the console's page of the DAG, which agrees with its sources.
        assert annotations["dashboard_url"] == f"{airflow}/observability/dags/{dag_id}/monitoring"
        shown = console_checks.dag_console_agrees_with_its_sources(page, stack, dag_id, "failing-dag")
        assert "AirflowTaskFailed" in shown["alerts"] and run_id in shown["runs"]
        assert alert["labels"]["task_id"] in page.inner_text("#alerts") and run_id in page.inner_text("#trace")

        page.goto(annotations["trace_url"])
        assert page.locator(".waterfall .span").count() >= 2 and "ERROR" in page.inner_text(".waterfall")
        browser.screenshot(page, "trace")

        # Inside the UI: the DAG's Monitoring tab frames the same page; its task log opens in the whole window.
        page.goto(f"{airflow}/dags/{dag_id}/plugin/monitoring")
        browser.framed(page, dag_id).click(f"#alerts a[href='{annotations['log_url']}']")
        page.wait_for_url(lambda url: urlsplit(url).path == urlsplit(annotations["log_url"]).path)
        page.goto(f"{airflow}/dags/{dag_id}/plugin/monitoring")
        browser.framed(page, dag_id).click("#alerts a:has-text('Silence')")
        page.wait_for_url(lambda url: url.startswith(f"{stack.url('alertmanager')}/#/silences/new?filter="))
        assert f'dag_id="{dag_id}"' in unquote(page.url)

        page.goto(f"{airflow}/plugin/oncall")
        on_call = browser.framed(page, "On-call")
        assert dag_id in on_call.inner_text("#firing") and dag_id in on_call.inner_text("#failing")
        browser.screenshot(page, "on-call")

        dark = browser.new_page(chromium, dark=True)
        dark.context.add_cookies(page.context.cookies())
        dark.goto(annotations["dashboard_url"])
        background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(26, 32, 44)", background  # the dark palette of console.css
        browser.screenshot(dark, "failing-dag-dark")


def test_every_url_in_every_captured_message_opens_for_the_oncall_account(stack: LocalStack) -> None:
    """After the paging scenarios above (run alone, after what a fresh stack sends): no dead link."""
    urls = link_checks.captured_urls(stack.settings)

    assert link_checks.console_links(urls, stack.settings), link_checks.dump(urls)
    assert link_checks.failures(stack.settings, urls) == []
