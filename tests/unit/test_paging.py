"""The plugin's pages through a real Alertmanager 0.25, and straight to the sinks when Alertmanager cannot take them.

Each test gets its own Alertmanager (the local stack's routing, second-long group timers) whose Slack, webhook and
SMTP captures also receive the plugin's direct messages, as on the stack. What Alertmanager sent and what the
plugin sent directly are told apart by shape: Alertmanager's Slack body has `attachments` and its webhook body
`alerts`; the plugin's direct Slack body has `blocks` and its webhook body a `schema`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from airflow_obs.observability import reconciler
from airflow_obs.observability.events import TaskEvent
from airflow_obs.observability.notify import router
from airflow_obs.observability.notify.fingerprint import fingerprint
from airflow_obs.observability.notify.redaction import REDACTED
from airflow_obs.observability.notify.spool import Spool
from airflow_obs.observability.paging import page_task_failure, page_task_failures
from airflow_obs.observability.settings import settings

from tests.conftest import free_port
from tests.integration.conftest import wait_for
from tests.running_alertmanager import RunningAlertmanager, running_alertmanager
from tests.scripted_server import Reply, ScriptedServer

BUDGET_SECONDS = 2.0
PLANTED = "pg-Planted-Secret-91"  # noqa: S105 - planted, to prove it never reaches Alertmanager


@pytest.fixture
def am(tmp_path: Path) -> Iterator[RunningAlertmanager]:
    with running_alertmanager(tmp_path / "alertmanager") as running:
        yield running


def point_plugin(monkeypatch: pytest.MonkeyPatch, am: RunningAlertmanager, api_url: str, *, direct: bool = True):
    """The plugin's settings: alerts to `api_url`, direct sinks (if any) at the Alertmanager fixture's captures."""
    ports = am.captures
    slack = f"http://127.0.0.1:{ports['slack']}/services/T0PAGING/B0PAGING/pagingToken123"
    monkeypatch.setenv("AIRFLOW_CONN_OBS_SLACK", f"slackwebhook://:{quote(slack, safe='')}@")
    monkeypatch.setenv("AIRFLOW_CONN_OBS_WEBHOOK", f"http://:paging-key@127.0.0.1:{ports['webhook']}/airflow-obs")
    monkeypatch.setenv("AIRFLOW_CONN_OBS_SMTP", f"smtp://127.0.0.1:{ports['smtp']}?disable_tls=true&disable_ssl=true")
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__EMAIL_TO", "oncall@example.com")
    for variable in (
        "AIRFLOW__OBSERVABILITY__SLACK_CONN_ID",
        "AIRFLOW__OBSERVABILITY__SMTP_CONN_ID",
        "AIRFLOW__OBSERVABILITY__WEBHOOK_CONN_ID",
    ):
        if direct:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, "")
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__ALERTMANAGER_API_URL", api_url)
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__ENVIRONMENT", "local")
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__AIRFLOW_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__NOTIFY_TIMEOUT_SECONDS", str(BUDGET_SECONDS))
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__SPOOL_DIR", str(am.settings.home / "spool"))
    settings.cache_clear()


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    settings.cache_clear()
    yield
    settings.cache_clear()


def failure(dag_id: str, error: Any = "RuntimeError: boom", owner: str = "data-eng", task_id: str = "load"):
    """A try failing for good, as a listener hands it to the paging sink."""
    dag = SimpleNamespace(dag_id=dag_id, tags=["team:data-platform", "etl"])
    task = SimpleNamespace(owner=owner, dag=dag)
    ti = SimpleNamespace(dag_id=dag_id, run_id=f"manual__{uuid.uuid4().hex[:8]}", task_id=task_id, map_index=-1,
                         try_number=2, max_tries=1, state="failed", task=task)  # fmt: skip
    return TaskEvent.from_task_instance(ti, state="failed", error=error)


def unique_dag() -> str:
    return f"paging_{uuid.uuid4().hex[:8]}"


def alertmanager_pages(am: RunningAlertmanager, dag_id: str) -> list[dict[str, Any]]:
    """Alertmanager's Slack notifications that list this DAG's task alert."""
    return [r for r in am.records("slack", dag_id) if "attachments" in r["body"]]


def direct_messages(am: RunningAlertmanager, dag_id: str) -> dict[str, list[dict[str, Any]]]:
    """The plugin's own messages about this DAG, per sink."""
    return {
        "slack": [r for r in am.records("slack", dag_id) if "blocks" in r["body"]],
        "webhook": [r for r in am.records("webhook", dag_id) if "schema" in r["body"]],
        "email": [r for r in am.records("smtp", dag_id) if "[Airflow FAILED]" in (r.get("subject") or "")],
    }


def test_a_final_failure_becomes_one_alert_with_its_labels_try_log_link_and_redacted_error(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, am.url)
    dag_id = unique_dag()
    event = failure(dag_id, RuntimeError(f"connect to postgresql://etl:{PLANTED}@db/warehouse failed"))

    assert page_task_failure(event) == router.ALERTMANAGER

    (alert,) = am.alerts(f'dag_id="{dag_id}"')
    assert alert["labels"] == {"alertname": "AirflowTaskFailed", "dag_id": dag_id, "task_id": "load",
                               "severity": "critical", "owner": "data-eng", "team": "data-platform",
                               "environment": "local",
                               "error_fingerprint": fingerprint(event.error, dag_id=dag_id, task_id="load",
                                                                run_id=event.run_id)}  # fmt: skip
    annotations = alert["annotations"]
    log_url = f"http://127.0.0.1:8080/dags/{dag_id}/runs/{event.run_id}/tasks/load?try_number=2"
    assert annotations["log_url"] == annotations["airflow_url"] == alert["generatorURL"] == log_url
    assert annotations["run_id"] == event.run_id and annotations["try_number"] == "2"
    assert annotations["runbook_url"].endswith("/AirflowTaskFailed.md")
    assert REDACTED in annotations["error"] and PLANTED not in str(alert)
    (page,) = wait_for(lambda: alertmanager_pages(am, dag_id), 15, "Alertmanager's Slack page", 0.2)
    assert page["body"]["channel"] == "#airflow-oncall"
    assert f"<{log_url}|Task log>" in page["body"]["attachments"][0]["text"]
    assert not any(direct_messages(am, dag_id).values()), "nothing bypassed Alertmanager"


def test_the_same_failure_reported_by_two_processes_pages_once(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, am.url)
    dag_id = unique_dag()
    event = failure(dag_id)
    page_task_failure(event)
    router._recent.clear()  # noqa: SLF001 - a second process (the scheduler) knows nothing of the first's pages

    assert page_task_failure(event) == router.ALERTMANAGER

    wait_for(lambda: alertmanager_pages(am, dag_id), 15, "the page", 0.2)
    time.sleep(3)  # three group flushes: a second notification would have gone out by now
    assert len(alertmanager_pages(am, dag_id)) == 1
    assert len(am.records("webhook", dag_id)) == 1, "the pager too"


def test_the_same_failure_reported_twice_in_one_process_is_posted_once(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, am.url)
    event = failure(unique_dag())

    assert [page_task_failure(event), page_task_failure(event)] == [router.ALERTMANAGER, router.DUPLICATE]


def test_a_silence_on_the_dag_mutes_its_page_and_once_expired_the_next_failure_pages(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, am.url)
    dag_id = unique_dag()
    silence = am.silence(("dag_id", dag_id))

    page_task_failure(failure(dag_id))

    (alert,) = am.alerts(f'dag_id="{dag_id}"')
    assert alert["status"]["silencedBy"] == [silence]
    time.sleep(3)
    assert am.records("slack", dag_id) == [] and am.records("webhook", dag_id) == []

    am.expire(silence)
    page_task_failure(failure(dag_id))
    wait_for(lambda: alertmanager_pages(am, dag_id), 15, "the page after the silence", 0.2)


def test_alertmanager_down_pages_the_sinks_directly_and_says_so(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    point_plugin(monkeypatch, am, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    dag_id = unique_dag()

    with caplog.at_level(logging.WARNING, logger="airflow_obs.notify"):
        assert page_task_failure(failure(dag_id)) == router.DIRECT

    assert {sink: len(found) for sink, found in direct_messages(am, dag_id).items()} == {
        "slack": 1,
        "webhook": 1,
        "email": 1,
    }
    assert "Alertmanager did not take alerts AirflowTaskFailed" in caplog.text
    assert "ConnectionRefusedError" in caplog.text
    assert Spool(settings().spool_path).waiting() == [], "not queued for Alertmanager too: it would page twice"


@pytest.mark.parametrize(
    ("replies", "attempts", "reason"),
    [
        ([Reply(status=503)], 3, "HTTP 503"),
        ([Reply(status=400)], 1, "HTTP 400"),
        ([Reply(hang=True)], 1, "timed out"),
    ],
    ids=["5xx-retried", "4xx-not-retried", "hanging"],
)
def test_alertmanager_failing_gets_half_the_budget_then_the_sinks_get_the_page(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch, caplog, replies, attempts, reason
) -> None:
    port = free_port()
    scripted = ScriptedServer(port, replies)
    thread = threading.Thread(target=scripted.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        point_plugin(monkeypatch, am, f"http://127.0.0.1:{port}")
        dag_id = unique_dag()
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="airflow_obs.notify"):
            where = page_task_failure(failure(dag_id))
        elapsed = time.monotonic() - started
    finally:
        scripted.release.set()
        scripted.shutdown()
        scripted.server_close()
        thread.join(timeout=5)

    assert where == router.DIRECT
    assert len(scripted.requests) == attempts
    assert reason in caplog.text
    assert elapsed < BUDGET_SECONDS + 1.0, "the whole page, Alertmanager's share and the sinks, within the budget"
    assert len(direct_messages(am, dag_id)["slack"]) == 1


def test_with_no_direct_sink_an_undelivered_alert_is_spooled_and_the_scheduler_pass_delivers_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    dag_id = unique_dag()
    with running_alertmanager(tmp_path / "captures-only") as captures:
        point_plugin(monkeypatch, captures, f"http://127.0.0.1:{port}", direct=False)
        assert page_task_failure(failure(dag_id)) == router.SPOOLED
    spool = Spool(settings().spool_path)
    assert [path.name.endswith("-alertmanager.json") for path in spool.waiting()] == [True]

    with running_alertmanager(tmp_path / "back", port=port) as am:
        reconciler.run_once(settings())

        assert [a["labels"]["dag_id"] for a in am.alerts(f'dag_id="{dag_id}"')] == [dag_id]
        assert spool.waiting() == []
        reconciler.run_once(settings())
        wait_for(lambda: alertmanager_pages(am, dag_id), 15, "the page, once Alertmanager is back", 0.2)
        time.sleep(2)
        assert len(alertmanager_pages(am, dag_id)) == 1


def test_a_label_value_with_quotes_newlines_and_unicode_reaches_alertmanager_as_it_is(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, am.url)
    dag_id = unique_dag()
    owner = 'Zoë "ops"\nand team, <b>'

    assert page_task_failure(failure(dag_id, owner=owner)) == router.ALERTMANAGER

    (alert,) = am.alerts(f'dag_id="{dag_id}"')
    assert alert["labels"]["owner"] == owner
    wait_for(lambda: alertmanager_pages(am, dag_id), 15, "the page", 0.2)


def test_a_100_kb_exception_becomes_a_short_error_and_the_page_still_goes_out(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, am.url)
    dag_id = unique_dag()
    huge = ValueError("row 17 is bad: " + "x" * 100_000 + f" password={PLANTED}")

    assert page_task_failure(failure(dag_id, huge)) == router.ALERTMANAGER

    (alert,) = am.alerts(f'dag_id="{dag_id}"')
    error = alert["annotations"]["error"]
    assert error.startswith("ValueError: row 17 is bad: xxx") and len(error) <= 500
    assert PLANTED not in str(alert)


def test_a_resolution_while_alertmanager_is_down_is_spooled_and_delivered_when_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    dag_id = unique_dag()
    with running_alertmanager(tmp_path / "first", port=port) as am:
        point_plugin(monkeypatch, am, am.url)
        page_task_failure(failure(dag_id))
        (posted,) = am.alerts(f'dag_id="{dag_id}"')
    from airflow_obs.observability.notify.alerts import from_alertmanager

    ended = from_alertmanager(posted).ended()
    router.update(settings(), [ended])  # Alertmanager is down now
    assert len(Spool(settings().spool_path).waiting()) == 1

    with running_alertmanager(tmp_path / "first", port=port) as am:  # the same storage: it remembers the alert
        reconciler.run_once(settings())
        assert am.alerts(f'dag_id="{dag_id}"') == [], "resolved"
    assert Spool(settings().spool_path).waiting() == []


def test_the_direct_sinks_messages_carry_the_same_try_log_link(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, f"http://127.0.0.1:{free_port()}")
    dag_id = unique_dag()
    event = failure(dag_id)

    page_task_failure(event)

    (webhook,) = direct_messages(am, dag_id)["webhook"]
    (slack,) = direct_messages(am, dag_id)["slack"]
    log_url = f"http://127.0.0.1:8080/dags/{dag_id}/runs/{event.run_id}/tasks/load?try_number={event.try_number}"
    assert webhook["body"]["links"]["log"] == log_url
    buttons = {
        e["text"]["text"]: e["url"] for b in slack["body"]["blocks"] if b["type"] == "actions" for e in b["elements"]
    }
    assert buttons["Task log"] == log_url


def test_tries_paged_together_reach_alertmanager_in_one_request_and_arrive_as_one_notification(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, am.url)
    dags = [unique_dag() for _ in range(3)]
    events = [failure(dag, "OSError: worker out of memory") for dag in dags]

    assert page_task_failures(events) == [router.ALERTMANAGER] * 3

    wait_for(lambda: alertmanager_pages(am, dags[0]), 15, "the page", 0.2)
    time.sleep(3)
    (page,) = alertmanager_pages(am, dags[0])
    assert page["body"]["attachments"][0]["title"] == "[FIRING:3] AirflowTaskFailed"
    assert all(dag in page["body"]["attachments"][0]["text"] for dag in dags)
