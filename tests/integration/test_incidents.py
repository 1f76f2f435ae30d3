"""Fault injection on the running embedded stack: each failure mode pages where its route says, once, with links
that work, and resolves after recovery.

One stack for the module, with time compressed (local_stack.incidents.scenarios.COMPRESSED_THRESHOLDS and short
Alertmanager timings), so "failing for an hour" fires in a minute. Scenarios run in order on the same stack;
each looks only at what arrived after it started.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest

from local_stack.incidents import upstream_failure
from local_stack.incidents.arrivals import alertmanager_arrivals
from local_stack.incidents.client import StackClient
from local_stack.incidents.runner import Report, run_scenario, wait_until_quiet
from local_stack.incidents.scenarios import COMPRESSED_THRESHOLDS, SCENARIOS, cleanup_paths
from local_stack.incidents.stack_faults import BASELINE_DAG, MANY_DAGS, STALE_DAG
from tests.integration import browser, console_checks, link_checks
from tests.integration.conftest import LocalStack, running_stack
from tests.integration.incident_checks import FAST_ALERTMANAGER, assert_links_work, assert_once_per_sink

pytestmark = pytest.mark.integration

SETTLE_SECONDS = 8.0  # after the expected messages: time for a duplicate to show up, if one were coming
HEALTHY_DAG = BASELINE_DAG  # quick, fails nowhere


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    try:
        with running_stack({**COMPRESSED_THRESHOLDS, **FAST_ALERTMANAGER}) as started:
            yield started
    finally:
        for path in cleanup_paths():
            path.unlink(missing_ok=True)


def run(stack: LocalStack, name: str, fire_timeout: float = 240, while_firing=lambda report: None, **changes) -> Report:
    scenario = dataclasses.replace(SCENARIOS[name], **changes)
    wait_until_quiet(stack.settings, scenario)
    time.sleep(SETTLE_SECONDS)  # their resolved messages, if any were in flight, land before the scenario starts
    return run_scenario(
        stack.settings,
        scenario,
        fire_timeout=fire_timeout,
        resolve_timeout=300,
        settle_seconds=SETTLE_SECONDS,
        while_firing=while_firing,
    )


def test_a_killed_scheduler_pages_once_while_the_dag_failures_it_causes_stay_muted(stack: LocalStack) -> None:
    report = run(stack, "scheduler_killed_while_dags_fail")

    assert report.expected_sinks == {"AirflowSchedulerDown": {"slack", "email", "pager"}}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)
    pager = next(arrival for arrival in report.firing if arrival.sink == "pager")
    assert_links_work(stack, pager)
    # While the scheduler was down, the runs failed by hand raised DAG alerts that Alertmanager inhibited:
    # it held one per DAG, each suppressed by the scheduler alert, and none reached anyone before the recovery.
    for status in report.context["dag_alerts"].values():
        assert status["state"] == "suppressed" and status["inhibitedBy"], status
    during = [
        a for a in alertmanager_arrivals(stack.settings) if report.injected_at <= a.received_at < report.recovered_at
    ]
    assert [a for a in during if a.dag_id in MANY_DAGS and a.status == "firing"] == []


def test_the_etl_failing_for_good_pages_once_naming_whom_it_affects_while_the_dags_downstream_stay_quiet(
    stack: LocalStack,
) -> None:
    report = run(stack, "upstream_dag_fails")

    assert report.expected_sinks == {"AirflowTaskFailed": {"slack", "email", "pager"}}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)
    assert {arrival.dag_id for arrival in report.firing} == {upstream_failure.PRODUCER}
    pager = next(arrival for arrival in report.firing if arrival.sink == "pager")
    (page,) = [alert for alert in pager.record["body"]["alerts"] if alert["status"] == "firing"]
    asset = report.context["asset_uri"]
    assert asset.startswith("warehouse://orders"), asset
    assert page["annotations"]["affects"] == "; ".join(
        f"{asset} -> {dag_id} (team ml, owner ml-eng)" for dag_id in upstream_failure.DOWNSTREAM
    )
    slack = next(arrival for arrival in report.firing if arrival.sink == "slack")
    assert f"*Affects:* {asset} -&gt; ml_monitor_drift (team ml" in str(slack.record)
    assert_links_work(stack, pager)
    # The drift monitor failed while the ETL was failing: Alertmanager held its page back, and the page itself
    # named the ETL as the failing DAG upstream; nothing about either downstream DAG reached anyone.
    held = report.context["held"]
    assert held["status"]["state"] == "suppressed", held
    assert held["annotations"]["upstream_failing"] == f"etl_orders, whose latest run failed (via {asset})"
    during = [
        a for a in alertmanager_arrivals(stack.settings) if report.injected_at <= a.received_at < report.recovered_at
    ]
    assert [a.describe() for a in during if a.dag_id in upstream_failure.DOWNSTREAM] == []


def test_a_saturated_pool_warns_once_and_resolves_when_slots_come_back(stack: LocalStack) -> None:
    report = run(stack, "pool_saturated")

    assert report.expected_sinks == {"AirflowPoolSaturated": {"slack"}}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)


def test_a_dag_file_that_stops_importing_warns_once_and_resolves_when_it_is_gone(stack: LocalStack) -> None:
    report = run(stack, "import_error")

    assert report.expected_sinks == {"AirflowDagImportErrors": {"slack"}}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)
    assert "zz_incident_broken_dag.py" in str(report.firing[0].record)


def test_tasks_stuck_in_the_queue_warn_once_and_resolve_when_workers_pick_them_up(stack: LocalStack) -> None:
    report = run(stack, "tasks_stuck_queued")

    assert report.expected_sinks == {"AirflowTasksQueuedTooLong": {"slack"}}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)


def test_a_task_failing_for_good_run_after_run_pages_once_and_the_exporters_dag_alerts_stay_muted(
    stack: LocalStack,
) -> None:
    report = run(stack, "repeated_task_failures")

    assert report.expected_sinks == {"AirflowTaskFailed": {"slack", "email", "pager"}}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)
    pager = next(arrival for arrival in report.firing if arrival.sink == "pager")
    assert_links_work(stack, pager)
    # The exporter saw the same incident: Alertmanager held its DAG-level alerts, muted by the plugin's.
    for alertname, status in report.context["exporter_alerts"].items():
        assert status["state"] == "suppressed" and status["inhibitedBy"], (alertname, status)
    exporter = ("AirflowDagLastRunFailed", "AirflowTaskFailingRepeatedly", "AirflowDagFailingForAnHour")
    sent = [a for a in alertmanager_arrivals(stack.settings) if a.received_at >= report.injected_at]
    assert [a.describe() for a in sent if a.alertname in exporter and a.dag_id == "maintenance_audit"] == []


def test_a_run_far_over_its_learned_baseline_warns_once_while_running_and_resolves_when_it_ends(
    stack: LocalStack,
) -> None:
    report = run(stack, "run_far_over_baseline", fire_timeout=420)

    assert report.expected_sinks == {"AirflowDagRunOverBaseline": {"slack"}}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)
    assert report.firing[0].dag_id == "maintenance_log_cleanup"
    # It fired while the slow run was still running, not once it had finished and taught the baseline a new p95.
    assert report.firing[0].received_at < report.recovered_at


def test_a_dag_kept_from_its_schedule_warns_once_and_resolves_when_its_runs_resume(stack: LocalStack) -> None:
    shown: dict = {}
    report = run(
        stack, "missed_schedule", fire_timeout=420, while_firing=lambda _: shown.update(late_in_console(stack))
    )

    assert report.expected_sinks == {"AirflowDagMissedSchedule": {"slack"}}
    assert_once_per_sink(report, report.firing)
    assert_once_per_sink(report, report.resolved)
    assert report.firing[0].dag_id == "monitoring_stack_health"
    # Not before the run it keeps from being created was due.
    assert report.firing[0].received_at.timestamp() > report.context["due_at"]
    # While it fired, the console showed the DAG late, as Alertmanager and the DB had it.
    assert "AirflowDagMissedSchedule" in shown["alerts"] and shown["overdue"] != "not overdue"
    assert STALE_DAG in shown["late"] and shown["late_alert"] == "AirflowDagMissedSchedule firing"


def late_in_console(stack: LocalStack) -> dict:
    """The late DAG's console page and the On-call page, in a browser, while its alert fires."""
    with browser.chromium() as chromium:
        page = console_checks.signed_in_page(chromium, stack)
        assert console_checks.next_run_is_overdue(stack, STALE_DAG)
        shown = console_checks.dag_console_agrees_with_its_sources(page, stack, STALE_DAG, "late-dag")
        page.goto(f"{stack.url('airflow')}/plugin/oncall")
        on_call = browser.framed(page, "On-call")
        shown["late"] = console_checks.rows(on_call, "#late tr[data-dag-id]", "dagId")
        shown["late_alert"] = on_call.inner_text(f"#late tr[data-dag-id='{STALE_DAG}'] td:last-child")
        browser.screenshot(page, "on-call-late")
    return shown


def test_a_healthy_dags_console_shows_its_runs_and_nothing_firing(stack: LocalStack) -> None:
    client = StackClient(stack.settings)
    run_id = client.trigger(HEALTHY_DAG)
    assert client.wait_for_run(HEALTHY_DAG, run_id) == "success"

    with browser.chromium() as chromium:
        page = console_checks.signed_in_page(chromium, stack)
        shown = console_checks.dag_console_agrees_with_its_sources(page, stack, HEALTHY_DAG, "healthy-dag")

    assert shown["alerts"] == set() and shown["overdue"] == "not overdue"
    assert shown["runs"][0] == run_id


def test_every_url_in_every_captured_message_opens_for_the_oncall_account(stack: LocalStack) -> None:
    """After the scenarios above (run alone, after what a fresh stack sends): no dead link, no Grafana link."""
    urls = link_checks.captured_urls(stack.settings)

    assert any("/observability/runbooks/" in url for url in urls), link_checks.dump(urls)
    assert link_checks.failures(stack.settings, urls) == []
    assert not any("/d/airflow-" in url or "/explore?" in url for url in urls), "no Grafana on this stack"
