"""What a notification says and links to, in its three shapes: Slack Block Kit, email and the JSON webhook."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from airflow_obs.observability import links
from airflow_obs.observability.events import DagRunEvent, TaskEvent
from airflow_obs.observability.notify import messages
from airflow_obs.observability.settings import read_settings

SETTINGS = read_settings(
    {
        "AIRFLOW__OBSERVABILITY__AIRFLOW_URL": "https://airflow.example.com",
        "AIRFLOW__OBSERVABILITY__GRAFANA_URL": "https://grafana.example.com",
        "AIRFLOW__OBSERVABILITY__RUNBOOK_BASE_URL": "https://runbooks.example.com/runbooks",
    }
)
RUN_ID = "manual__2026-11-25T12:00:00+00:00"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def task_event(map_index: int = -1, error: str = "ValueError: 3 rows failed the check") -> TaskEvent:
    return TaskEvent(
        dag_id="etl_orders", run_id=RUN_ID, task_id="load", map_index=map_index, try_number=3, max_tries=2,
        state="failed", owner="data-platform", team="data-platform", pool="default_pool", queue="default",
        hostname="worker-1", start_date=datetime(2026, 11, 25, 12, tzinfo=UTC), end_date=None, queued_dttm=None,
        error=error,
    )  # fmt: skip


def failure(map_index: int = -1, error: str = "ValueError: 3 rows failed the check", trace_id: str = TRACE_ID):
    return messages.task_notification(SETTINGS, task_event(map_index, error), messages.TASK_FAILED, trace_id)


def recovery(trace_id: str = TRACE_ID) -> messages.Notification:
    event = DagRunEvent(
        dag_id="etl_orders", run_id="scheduled__2026-11-26T00:00:00+00:00", state="success", run_type="scheduled",
        owner="data-platform", team="data-platform", start_date=None, end_date=None, error="",
    )  # fmt: skip
    return messages.recovery_notification(SETTINGS, event, RUN_ID, trace_id)


def test_a_final_failure_links_the_tries_log_the_dashboard_the_trace_and_the_runbook() -> None:
    note = failure(map_index=4)

    assert list(note.links) == ["log", "dashboard", "trace", "runbook"]
    log = urlsplit(note.links["log"])
    assert log.path == "/dags/etl_orders/runs/manual__2026-11-25T12%3A00%3A00%2B00%3A00/tasks/load/mapped/4"
    assert parse_qs(log.query) == {"try_number": ["3"]}
    assert note.links["log"] == links.task_log_url(SETTINGS, "etl_orders", RUN_ID, "load", 3, 4)
    assert note.links["dashboard"] == links.dag_dashboard_url(SETTINGS, "etl_orders")
    assert note.links["trace"] == links.trace_url(SETTINGS, TRACE_ID)
    assert note.links["runbook"] == "https://runbooks.example.com/runbooks/AirflowTaskFailed.md"
    assert (note.severity, note.subject) == ("critical", "Task etl_orders.load[4] failed (try 3 of 3)")


def test_without_a_trace_id_the_trace_link_is_left_out_rather_than_broken() -> None:
    assert "trace" not in failure(trace_id="").links
    assert "trace" not in recovery(trace_id="").links


def test_the_trace_id_comes_from_tracing_when_it_can_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_obs.observability.tracing as tracing

    monkeypatch.setattr(tracing, "trace_id_for_run", lambda dag_id, run_id: f"{dag_id}-{run_id}", raising=False)
    assert messages.trace_id_for("d", "r") == "d-r"

    def broken(dag_id: str, run_id: str) -> str:
        raise RuntimeError("no tracer")

    monkeypatch.setattr(tracing, "trace_id_for_run", broken, raising=False)
    assert messages.trace_id_for("d", "r") == ""


def test_slack_gets_block_kit_with_the_facts_the_error_and_one_button_per_link() -> None:
    note = failure(map_index=4)

    payload = messages.slack_payload(note)

    assert payload["text"] == note.subject
    header, facts, error, actions, context = payload["blocks"]
    assert header["type"] == "header" and note.subject in header["text"]["text"]
    shown = "\n".join(field["text"] for field in facts["fields"])
    for label, value in (("DAG", "etl_orders"), ("Task", "load"), ("Map index", "4"), ("Try", "3 of 3"),
                         ("Owner", "data-platform")):  # fmt: skip
        assert f"*{label}*\n{value}" in shown
    assert "3 rows failed the check" in error["text"]["text"]
    assert actions["type"] == "actions"
    assert {button["url"] for button in actions["elements"]} == set(note.links.values())
    assert len({button["action_id"] for button in actions["elements"]}) == len(actions["elements"])
    assert context["type"] == "context"


def test_slack_shows_an_error_literally_without_mentions_or_links() -> None:
    payload = messages.slack_payload(failure(error="<!channel> see <http://evil|here> & ```"))

    text = payload["blocks"][2]["text"]["text"]
    assert "<!channel>" not in text and "<http://evil" not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text


def test_slack_texts_stay_within_block_kit_limits() -> None:
    payload = messages.slack_payload(failure(error="x" * 5000))

    header, facts, error, *_ = payload["blocks"]
    assert len(header["text"]["text"]) <= 150
    assert len(facts["fields"]) <= 10 and all(len(field["text"]) <= 2000 for field in facts["fields"])
    assert len(error["text"]["text"]) <= 3000


def test_email_escapes_every_value_and_links_each_url() -> None:
    note = failure(error="<script>alert(1)</script>")

    content = messages.email_content(note)

    assert content["subject"] == "[Airflow FAILED] Task etl_orders.load failed (try 3 of 3)"
    assert "<script>" not in content["html"] and "&lt;script&gt;" in content["html"]
    for url in note.links.values():
        assert f'href="{url.replace("&", "&amp;").replace(chr(34), "&quot;")}"' in content["html"]


def test_the_webhook_gets_a_flat_versioned_document() -> None:
    note = failure(map_index=4)

    payload = messages.webhook_payload(note)

    assert payload["schema"] == "airflow-obs.notification/v1"
    assert payload["kind"] == "task_failed" and payload["severity"] == "critical"
    assert (payload["dag_id"], payload["task_id"], payload["run_id"]) == ("etl_orders", "load", RUN_ID)
    assert (payload["map_index"], payload["try_number"], payload["max_tries"]) == (4, 3, 2)
    assert payload["owner"] == "data-platform" and payload["error"].startswith("ValueError")
    assert payload["links"] == note.links
    json.dumps(payload)  # serialisable as it is


def test_the_same_try_always_has_the_same_id_and_another_try_another() -> None:
    assert failure().id == failure().id
    earlier_try = messages.task_notification(SETTINGS, replace(task_event(), try_number=2), messages.TASK_FAILED, "")
    assert earlier_try.id != failure().id


def test_a_recovery_links_the_good_run_the_failed_run_the_dashboard_and_its_runbook() -> None:
    note = recovery()

    assert note.severity == "resolved" and note.subject == "DAG etl_orders recovered"
    assert note.links["run"] == links.dag_run_url(SETTINGS, "etl_orders", "scheduled__2026-11-26T00:00:00+00:00")
    assert note.links["failed_run"] == links.dag_run_url(SETTINGS, "etl_orders", RUN_ID)
    assert note.links["runbook"].endswith("/AirflowDagRecovered.md")
    assert ("Failed run", RUN_ID) in note.facts()
    assert messages.webhook_payload(note)["previous_run_id"] == RUN_ID


@pytest.mark.parametrize(
    ("reason", "timeout", "says"),
    [
        ("timed_out", "2:00:00", "exceeded its dagrun_timeout (2:00:00)"),
        ("timed_out", None, "exceeded its dagrun_timeout:"),
        ("all_tasks_deadlocked", None, "deadlocked"),
        ("something_new", None, "The run failed (something_new)"),
        (None, None, "no reason given"),
    ],
)
def test_a_run_failing_with_no_task_failure_says_why(reason, timeout, says) -> None:
    assert says in messages.run_failure_reason(reason, timeout)


def test_a_run_failure_page_links_the_run_the_dashboard_the_trace_and_its_runbook() -> None:
    event = DagRunEvent(
        dag_id="etl_orders", run_id=RUN_ID, state="failed", run_type="scheduled", owner="data-platform",
        team="data-platform", start_date=None, end_date=None, error="",
    )  # fmt: skip
    note = messages.run_failure_notification(SETTINGS, event, "timed out", TRACE_ID)

    assert note.severity == "critical" and note.subject == "DAG etl_orders run failed"
    assert list(note.links) == ["run", "dashboard", "trace", "runbook"]
    assert note.links["run"] == links.dag_run_url(SETTINGS, "etl_orders", RUN_ID)
    assert note.links["runbook"].endswith("/AirflowDagRunFailed.md")
    assert messages.email_content(note)["subject"] == "[Airflow FAILED] DAG etl_orders run failed"
    payload = messages.webhook_payload(note)
    assert (payload["kind"], payload["task_id"], payload["error"]) == ("dag_run_failed", None, "timed out")
