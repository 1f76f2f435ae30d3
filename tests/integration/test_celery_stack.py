"""`AIRFLOW_OBS_EXECUTOR=celery make up`: CeleryExecutor on Redis and PostgreSQL with two workers, observed by the
same exporter, rules and dashboards; a worker killed in the middle of a task, and the PostgreSQL warehouse refusing
connections while three DAGs use it.

One stack for the module, its alert thresholds compressed as in test_incidents.py, and Airflow's task heartbeat
timeout at 20 s instead of 300 s, so a killed worker's task is retried within a minute.
"""

from __future__ import annotations

from collections import Counter
from contextlib import closing

import psycopg2
import pytest
from airflow_obs.grafana_dashboards.compose_only import CELERY_STACK_ONLY
from dag_suite.etl.generator import generate_day

from local_stack.airflow_env import warehouse_url
from local_stack.incidents import warehouse_outage, worker_loss
from local_stack.incidents.client import StackClient
from local_stack.incidents.runner import run_scenario, wait_until_quiet
from local_stack.incidents.scenarios import COMPRESSED_THRESHOLDS, SCENARIOS
from local_stack.programs import celery_workers
from tests.conftest import REPO_ROOT
from tests.integration.conftest import running_stack, wait_for
from tests.integration.incident_checks import (
    FAST_ALERTMANAGER,
    assert_group_resolved_once_per_sink,
    assert_once_per_sink,
)
from tests.integration.panel_data import all_panel_queries, describe, queries_without_data

pytestmark = pytest.mark.integration

CELERY_STACK = {
    "AIRFLOW_OBS_EXECUTOR": "celery",
    **COMPRESSED_THRESHOLDS,
    **FAST_ALERTMANAGER,
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
}
TASKS_PER_WORKER = 3  # finished tasks each worker must show before the work counts as spread


@pytest.fixture(scope="module")
def stack():
    with running_stack(CELERY_STACK) as started:
        yield started


def finished_tasks_by_host(client: StackClient) -> Counter:
    answer = client.api("GET", "/dags/~/dagRuns/~/taskInstances?state=success&limit=500")
    return Counter(ti["hostname"] for ti in answer["task_instances"])


def test_the_suite_spreads_over_both_workers_and_every_celery_panel_has_data(stack):
    client = StackClient(stack.settings)
    workers = celery_workers(stack.settings)
    assert [w.hostname for w in workers] == ["celery-worker-1", "celery-worker-2"]
    # The suite's DAGs start unpaused: their first scheduled runs are the work.

    def spread() -> Counter | None:
        by_host = finished_tasks_by_host(client)
        return by_host if all(by_host[w.hostname] >= TASKS_PER_WORKER for w in workers) else None

    by_host = wait_for(
        spread,
        timeout=300,
        what=f"{TASKS_PER_WORKER} successful tasks on each Celery worker",
        interval=3,
    )
    assert set(by_host) <= {w.hostname for w in workers}, f"tasks ran outside the Celery workers: {by_host}"
    # Flower saw the same: task-succeeded events from each worker, by its Celery name, in Prometheus.
    for worker in workers:
        query = f'sum(flower_events_total{{type="task-succeeded", worker="{worker.celery_name}"}})'
        assert client.wait_for_value(query, timeout=60) >= 1
    assert client.wait_for_value('redis_up{job="redis"}') == 1
    assert client.wait_for_value('pg_up{job="postgres"}') == 1

    queries = [q for q in all_panel_queries() if (q.dashboard, q.panel) in CELERY_STACK_ONLY]
    assert {(q.dashboard, q.panel) for q in queries} == set(CELERY_STACK_ONLY)
    samples = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "30s"}
    pending = queries_without_data(stack.url("prometheus"), queries, samples, timeout=120)
    assert not pending, describe(pending)


def warehouse_orders(stack, ds: str) -> list[tuple[str, str, str]]:
    with closing(psycopg2.connect(warehouse_url(stack.settings), connect_timeout=5)) as db, db.cursor() as cursor:
        cursor.execute("SELECT order_id, customer_id, status FROM orders WHERE order_date = %s", (ds,))
        return cursor.fetchall()


def test_a_worker_killed_mid_task_is_retried_on_the_other_worker_alerts_once_and_resolves_with_exact_rows(stack):
    scenario = SCENARIOS["celery_worker_killed"]
    report = run_scenario(stack.settings, scenario, fire_timeout=240, resolve_timeout=240, settle_seconds=5)
    context = report.context

    # The right alert, once per sink its route names, about the killed worker, with working links.
    assert_once_per_sink(report, report.firing)
    assert all(context["killed_worker"] in str(arrival.record) for arrival in report.firing)
    links = [url for arrival in report.firing for url in arrival.links.values()]
    assert any(url.endswith("/runbooks/AirflowCeleryWorkerLost.md") for url in links), links
    assert (REPO_ROOT / "runbooks" / "AirflowCeleryWorkerLost.md").is_file()
    assert any(url.endswith("/observability/console") for url in links), links  # no Grafana here: the console
    assert report.resolved, "no resolved message once the worker was back"
    assert_once_per_sink(report, report.resolved)

    # The killed try was on the killed worker; the retry ran on the other one, and the run succeeded.
    assert context["run_state"] == "success"
    tries = worker_loss.task_tries(StackClient(stack.settings), context["run_id"])
    assert [t["try_number"] for t in tries] == [1, 2], tries
    assert tries[0]["hostname"] == context["killed_hostname"] and tries[0]["state"] != "success"
    assert tries[1]["hostname"] != context["killed_hostname"] and tries[1]["state"] == "success"

    # The warehouse holds that date's valid orders exactly: none lost, none twice.
    day = generate_day(context["ds"])
    bad = {row.row_number for row in day.bad("orders")}
    expected = {(o["order_id"], o["customer_id"], o["status"]) for n, o in enumerate(day.orders, 1) if n not in bad}
    rows = warehouse_orders(stack, context["ds"])
    assert len(rows) == len(set(rows)) == len(expected)
    assert set(rows) == expected


def test_a_warehouse_outage_failing_three_dags_pages_one_group_per_route_with_their_common_fingerprint(stack):
    scenario = SCENARIOS["warehouse_unavailable"]
    wait_until_quiet(stack.settings, scenario)
    report = run_scenario(stack.settings, scenario, fire_timeout=300, resolve_timeout=300, settle_seconds=8)

    # The pager's notifications are of one Alertmanager group: the first page, then updates as the other DAGs'
    # last tries fail (their retries end seconds apart), never a page per DAG.
    pages = {id(arrival.record): arrival.record["body"] for arrival in report.firing if arrival.sink == "pager"}
    assert len({page["groupKey"] for page in pages.values()}) == 1, [page["groupKey"] for page in pages.values()]
    latest = max(pages.values(), key=lambda page: len(page["alerts"]))
    failed = {alert["labels"]["dag_id"]: alert for alert in latest["alerts"] if alert["status"] == "firing"}
    assert set(failed) == set(warehouse_outage.WAREHOUSE_TASKS), sorted(failed)
    (fingerprint,) = {alert["labels"]["error_fingerprint"] for alert in failed.values()}  # one cause, one fingerprint
    for dag_id, alert in failed.items():
        assert alert["labels"]["task_id"] == warehouse_outage.WAREHOUSE_TASKS[dag_id]
        assert "not currently accepting connections" in alert["annotations"]["error"]
        assert "/tasks/" in alert["annotations"]["log_url"]
    # Slack and email follow the same group: as many messages as the pager, each naming no single DAG once
    # several are in it.
    by_sink = Counter(sink for sink, _ in {(a.sink, id(a.record)) for a in report.firing})
    assert by_sink["slack"] == by_sink["email"] == len(pages), by_sink
    # Once the group holds them all, its message leads with the cause they share.
    texts = [a.record["body"]["attachments"][0]["text"] for a in report.firing if a.sink == "slack"]
    assert any(
        text.startswith(f"*One cause*, error fingerprint `{fingerprint}`: {len(failed)} failures") for text in texts
    )
    assert_group_resolved_once_per_sink(report)
