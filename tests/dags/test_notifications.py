"""Direct pages (no Alertmanager configured) from real DAG runs (dag.test()) to the Slack, webhook and SMTP captures.

The probe DAG (tests/dags/notify_probe.py) carries no callback: the plugin's listeners page, as for any DAG.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from airflow_obs.observability.notify import router
from airflow_obs.observability.notify.outbox import OUTBOX
from airflow_obs.observability.settings import settings

from local_stack.captures.http_capture import make_http_capture
from local_stack.captures.recorder import read_records
from local_stack.captures.smtp_capture import make_smtp_capture
from tests.dags.conftest import task_states
from tests.dags.notify_probe import DAG_ID, run_probe

SLACK_TOKEN = "T0PROBE01/B0PROBE01/probeSlackTokenKq3"  # noqa: S105 - planted, to prove it never leaks
SMTP_PASSWORD = "probe-smtp-Pa55word"  # noqa: S105 - planted, to prove it never leaks
HMAC_KEY = "probe-hmac-key-Lm4"
TIMEOUT_SECONDS = 1.0


@dataclass
class Captures:
    files: dict[str, Path]
    slack_url: str

    def records(self, kind: str) -> list[dict[str, Any]]:
        return read_records(self.files[kind])

    def webhook_messages(self) -> list[dict[str, Any]]:
        return [record["body"] for record in self.records("webhook")]


def configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slack: str, webhook: str, smtp: int, **env: str):
    monkeypatch.setenv("AIRFLOW_CONN_OBS_SLACK", f"slackwebhook://:{quote(slack, safe='')}@")
    monkeypatch.setenv("AIRFLOW_CONN_OBS_WEBHOOK", f"http://:{HMAC_KEY}@{webhook}/hooks/airflow")
    monkeypatch.setenv(
        "AIRFLOW_CONN_OBS_SMTP", f"smtp://:{SMTP_PASSWORD}@127.0.0.1:{smtp}?disable_tls=true&disable_ssl=true"
    )
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__EMAIL_TO", "oncall@example.com")
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__NOTIFY_TIMEOUT_SECONDS", str(TIMEOUT_SECONDS))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()


@pytest.fixture
def captures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Start the three captures on free loopback ports and point the connections at them (call with env)."""
    started: list = []

    def start(**env: str) -> Captures:
        files = {kind: tmp_path / f"{kind}.jsonl" for kind in ("slack", "webhook", "smtp")}
        http = {kind: make_http_capture(kind, "127.0.0.1", 0, files[kind]) for kind in ("slack", "webhook")}
        for server in http.values():
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            started.append((server, thread))
        smtp = make_smtp_capture("127.0.0.1", 0, files["smtp"])
        smtp.start()
        started.append((smtp, None))
        slack_url = f"http://127.0.0.1:{http['slack'].server_address[1]}/services/{SLACK_TOKEN}"
        webhook = f"127.0.0.1:{http['webhook'].server_address[1]}"
        configure(monkeypatch, tmp_path, slack_url, webhook, smtp.port, **env)
        return Captures(files, slack_url)

    try:
        yield start
    finally:
        settings.cache_clear()
        for server, thread in started:
            if thread is None:
                server.stop(no_assert=True)
            else:
                server.shutdown()
                server.server_close()
                thread.join(timeout=5)


def test_a_final_failure_pages_once_per_task_with_the_log_of_that_try(probe_dag, captures) -> None:
    sent = captures()

    dag_run = run_probe(probe_dag)

    assert dag_run.state == "failed"
    pages = sent.webhook_messages()
    assert sorted((page["task_id"], page["map_index"], page["try_number"]) for page in pages) == [
        ("broken", -1, 2),
        ("mapped_work", 1, 2),
    ]
    assert all(page["kind"] == "task_failed" and page["severity"] == "critical" for page in pages)
    mapped = next(page for page in pages if page["task_id"] == "mapped_work")
    log = urlsplit(mapped["links"]["log"])
    assert log.path.endswith(f"/dags/{DAG_ID}/runs/{quote(dag_run.run_id, safe='')}/tasks/mapped_work/mapped/1")
    assert log.query == "try_number=2"
    assert set(mapped["links"]) == {"log", "dashboard", "trace", "runbook"}
    assert mapped["owner"] == "data-platform" and mapped["error"] == "RuntimeError: item 1 always fails"
    # The same two pages reach Slack (Block Kit, with buttons) and email.
    slack = sent.records("slack")
    assert len(slack) == 2 and all(record["response_status"] == 200 for record in slack)
    assert all(any(block["type"] == "actions" for block in record["body"]["blocks"]) for record in slack)
    subjects = sorted(record["subject"] for record in sent.records("smtp"))
    assert subjects == [
        f"[Airflow FAILED] Task {DAG_ID}.broken failed (try 2 of 2)",
        f"[Airflow FAILED] Task {DAG_ID}.mapped_work[1] failed (try 2 of 2)",
    ]


def test_a_retry_that_later_succeeds_pages_nobody(probe_dag, captures) -> None:
    sent = captures()

    dag_run = run_probe(probe_dag)

    assert task_states(dag_run)["flaky"] == "success"
    assert [page for page in sent.webhook_messages() if page["task_id"] == "flaky"] == []
    assert not any("flaky" in record["body"]["text"] for record in sent.records("slack"))


def test_a_failed_dag_that_succeeds_again_sends_one_recovery_message(probe_dag, captures) -> None:
    sent = captures()

    failed = run_probe(probe_dag)
    recovered = run_probe(probe_dag, healthy=True)
    again = run_probe(probe_dag, healthy=True)

    assert (failed.state, recovered.state, again.state) == ("failed", "success", "success")
    recoveries = [page for page in sent.webhook_messages() if page["kind"] == "dag_recovered"]
    assert len(recoveries) == 1
    (recovery,) = recoveries
    assert (recovery["run_id"], recovery["previous_run_id"]) == (recovered.run_id, failed.run_id)
    assert recovery["links"]["runbook"].endswith("/AirflowDagRecovered.md")
    assert len([record for record in sent.records("slack") if "recovered" in record["body"]["text"]]) == 1
    assert len([record for record in sent.records("smtp") if "RECOVERED" in record["subject"]]) == 1


def test_a_run_that_times_out_without_a_failed_task_pages_once_for_the_run(probe_dag, captures) -> None:
    sent = captures()
    dag_run = run_probe(probe_dag, healthy=True)

    # The scheduler's dagrun_timeout path fails the run and tells the listeners "timed_out", with no task failed
    # (its unfinished tasks are skipped); dag.test() does not enforce the timeout, so make that same call.
    dag_run.set_state("failed")
    dag_run.notify_dagrun_state_changed(msg="timed_out")
    assert OUTBOX.drain(timeout=30)

    (page,) = sent.webhook_messages()
    assert (page["kind"], page["severity"], page["run_id"], page["task_id"]) == (
        "dag_run_failed", "critical", dag_run.run_id, None)  # fmt: skip
    assert "dagrun_timeout" in page["error"]
    assert set(page["links"]) == {"run", "dashboard", "trace", "runbook"}
    assert urlsplit(page["links"]["run"]).path.endswith(f"/dags/{DAG_ID}/runs/{quote(dag_run.run_id, safe='')}")
    assert page["links"]["runbook"].endswith("/AirflowDagRunFailed.md")
    (slack,) = sent.records("slack")
    assert slack["body"]["text"] == f"DAG {DAG_ID} run failed"
    assert [record["subject"] for record in sent.records("smtp")] == [f"[Airflow FAILED] DAG {DAG_ID} run failed"]
    # The failure is remembered like any other: the next success recovers it.
    run_probe(probe_dag, healthy=True)
    assert [page["kind"] for page in sent.webhook_messages()] == ["dag_run_failed", "dag_recovered"]


def test_no_secret_reaches_any_captured_payload(probe_dag, captures, caplog: pytest.LogCaptureFixture) -> None:
    sent = captures()
    planted = f"cannot log in with {SMTP_PASSWORD}; hook {sent.slack_url}; key {HMAC_KEY}; token {SLACK_TOKEN}"

    run_probe(probe_dag, error_text=planted)

    broken = next(page for page in sent.webhook_messages() if page["task_id"] == "broken")
    assert broken["error"].startswith("RuntimeError: cannot log in with [redacted]")
    everything = json.dumps(
        [
            {key: record.get(key) for key in ("body", "headers", "subject", "text", "html")}
            for kind in ("slack", "webhook", "smtp")
            for record in sent.records(kind)
        ]  # fmt: skip
    )
    ours = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("airflow_obs"))
    for secret in (SMTP_PASSWORD, sent.slack_url, HMAC_KEY, SLACK_TOKEN):
        for form in (secret, quote(secret, safe="")):
            assert form not in everything
            assert form not in ours


class Tarpit:
    """Accepts connections and never answers: an HTTP endpoint or SMTP relay that hangs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        for conn in [*self.held, self.sock]:
            conn.close()


def test_with_every_sink_hanging_outcomes_are_unchanged_and_each_page_is_bounded(
    probe_dag, captures, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captures()  # a reference run with every sink up
    expected = task_states(run_probe(probe_dag))

    tarpit = Tarpit()
    durations: list[float] = []
    real_page = router.page

    def timed(*args: Any, **kwargs: Any) -> str:
        started = time.monotonic()
        try:
            return real_page(*args, **kwargs)
        finally:
            durations.append(time.monotonic() - started)

    monkeypatch.setattr(router, "page", timed)
    try:
        configure(monkeypatch, tmp_path / "down", f"http://127.0.0.1:{tarpit.port}/services/{SLACK_TOKEN}",
                  f"127.0.0.1:{tarpit.port}", tarpit.port)  # fmt: skip
        dag_run = run_probe(probe_dag)
    finally:
        tarpit.close()

    assert task_states(dag_run) == expected and dag_run.state == "failed"
    assert len(durations) == 2, "a page for each of the two final failures, none for retries or the run"
    assert max(durations) < TIMEOUT_SECONDS + 1.0, durations  # the budget, plus slack on a busy machine
    spooled = [json.loads(path.read_text()) for path in (tmp_path / "down" / "spool").glob("*.json")]
    assert sorted(entry["sink"] for entry in spooled) == ["email"] * 2 + ["slack"] * 2 + ["webhook"] * 2, (
        "two pages for each of the three sinks, none lost"
    )
