"""Secrets never leave: planted in a task's error, none reaches a payload, a header, the spool or a log line."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from airflow_obs.observability.events import TaskEvent
from airflow_obs.observability.notify.redaction import REDACTED, redact, short_error
from airflow_obs.observability.notify.sinks import SIGNATURE_HEADER, webhook_body
from airflow_obs.observability.paging import page_task_failure
from airflow_obs.observability.settings import settings

from local_stack.captures.http_capture import make_http_capture
from local_stack.captures.recorder import read_records
from local_stack.captures.smtp_capture import make_smtp_capture

SLACK_TOKEN = "T0PLANTED/B0PLANTED/slackPlantedTokenQ7w"  # noqa: S105 - planted, to prove it never leaks
SMTP_PASSWORD = "smtp-planted-Pa55word"  # noqa: S105 - planted, to prove it never leaks
HMAC_KEY = "hmac-planted-key-Zx81"
BOT_TOKEN = "xoxb-112233445566-778899001122-PlantedBotToken"  # noqa: S105 - planted, to prove it never leaks


@pytest.fixture
def captures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Slack, webhook and SMTP captures on free ports, and the three connections (with planted secrets)."""
    files = {kind: tmp_path / f"{kind}.jsonl" for kind in ("slack", "webhook", "smtp")}
    http = {kind: make_http_capture(kind, "127.0.0.1", 0, files[kind]) for kind in ("slack", "webhook")}
    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for server in http.values()]  # fmt: skip
    smtp = make_smtp_capture("127.0.0.1", 0, files["smtp"])
    for thread in threads:
        thread.start()
    smtp.start()
    try:
        slack_url = f"http://127.0.0.1:{http['slack'].server_address[1]}/services/{SLACK_TOKEN}"
        webhook_port = http["webhook"].server_address[1]
        monkeypatch.setenv("AIRFLOW_CONN_OBS_SLACK", f"slackwebhook://:{quote(slack_url, safe='')}@")
        monkeypatch.setenv("AIRFLOW_CONN_OBS_WEBHOOK", f"http://:{HMAC_KEY}@127.0.0.1:{webhook_port}/hooks/airflow")
        monkeypatch.setenv(
            "AIRFLOW_CONN_OBS_SMTP",
            f"smtp://:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}?disable_tls=true&disable_ssl=true",
        )
        monkeypatch.setenv("AIRFLOW__OBSERVABILITY__EMAIL_TO", "oncall@example.com")
        monkeypatch.setenv("AIRFLOW__OBSERVABILITY__SPOOL_DIR", str(tmp_path / "spool"))
        settings.cache_clear()
        yield {**files, "slack_url": slack_url}
    finally:
        settings.cache_clear()
        smtp.stop(no_assert=True)
        for server in http.values():
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)


def failing_event(error: str) -> TaskEvent:
    """A try failing for good, as a listener hands it to the paging sink (a run of its own: pages are once per try)."""
    dag = SimpleNamespace(dag_id="etl_orders", tags=["team:data-platform"])
    task = SimpleNamespace(owner="data-platform", dag=dag)
    ti = SimpleNamespace(dag_id="etl_orders", run_id=f"manual__{uuid.uuid4().hex}", task_id="load", map_index=-1,
                         try_number=3, max_tries=2, state="failed", task=task)  # fmt: skip
    return TaskEvent.from_task_instance(ti, state="failed", error=RuntimeError(error))


def test_planted_secrets_reach_no_payload_header_spool_or_log(captures, caplog: pytest.LogCaptureFixture) -> None:
    planted = {
        "SMTP password": SMTP_PASSWORD,
        "Slack webhook URL": str(captures["slack_url"]),
        "Slack webhook token": SLACK_TOKEN,
        "HMAC secret": HMAC_KEY,
        "Slack bot token": BOT_TOKEN,
    }
    error = (
        f"login failed with {SMTP_PASSWORD}; posted to {captures['slack_url']} (token {SLACK_TOKEN}); "
        f"signed with {HMAC_KEY}; bot {BOT_TOKEN}; percent-encoded {quote(captures['slack_url'], safe='')}"
    )

    with caplog.at_level(logging.DEBUG):
        page_task_failure(failing_event(error))

    records = {kind: read_records(captures[kind]) for kind in ("slack", "webhook", "smtp")}
    assert {kind: len(found) for kind, found in records.items()} == {"slack": 1, "webhook": 1, "smtp": 1}
    sent = json.dumps([{key: record.get(key) for key in ("body", "headers", "subject", "text", "html")}
                       for found in records.values() for record in found])  # fmt: skip
    spooled = "".join(path.read_text() for path in Path(settings().spool_path).rglob("*") if path.is_file())
    for name, secret in planted.items():
        for form in (secret, quote(secret, safe="")):
            assert form not in sent, f"{name} in a payload"
            assert form not in caplog.text, f"{name} in a log line"
            assert form not in spooled, f"{name} in the spool"
    assert REDACTED in records["webhook"][0]["body"]["error"]
    assert "login failed with" in records["webhook"][0]["body"]["error"], "the rest of the error is kept"


def test_the_webhook_signature_verifies_with_the_connection_password(captures) -> None:
    page_task_failure(failing_event("boom"))

    (record,) = read_records(captures["webhook"])
    body = webhook_body(record["body"])  # the capture parsed the JSON; it re-serialises to the signed bytes
    assert len(body) == record["body_size"]
    expected = "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(record["headers"][SIGNATURE_HEADER], expected)
    assert record["path"] == "/hooks/airflow"


def test_a_failing_sink_logs_its_reason_once_without_the_url(tmp_path, monkeypatch, caplog) -> None:
    url = "http://127.0.0.1:9/services/T0PLANTED/B0PLANTED/refusedTokenAbc123"  # port 9: refused
    monkeypatch.setenv("AIRFLOW_CONN_OBS_SLACK", f"slackwebhook://:{quote(url, safe='')}@")
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__WEBHOOK_CONN_ID", "")
    settings.cache_clear()
    try:
        with caplog.at_level(logging.DEBUG):
            page_task_failure(failing_event("boom"))
    finally:
        settings.cache_clear()

    spooled = [record for record in caplog.records if "spooled for redelivery" in record.getMessage()]
    assert len(spooled) == 1 and "ConnectionRefusedError" in spooled[0].getMessage()
    assert "refusedTokenAbc123" not in caplog.text and "127.0.0.1:9" not in caplog.text


@pytest.mark.parametrize(
    ("text", "secret_part"),
    [
        ("connect to postgresql://airflow:pg-Secret-1@db:5432/airflow failed", "pg-Secret-1"),
        ("posting to https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX failed", "XXXXXXXXXXXX"),
        ("slack said invalid_auth for xoxp-1234567890-abcdefghij", "abcdefghij"),
        ("request had Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ('config {"password": "hunter2hunter2", "user": "bob"}', "hunter2hunter2"),
        ("url ?api_key=AKIA1234567890&x=1", "AKIA1234567890"),
    ],
)
def test_secret_shapes_are_redacted_without_being_registered(text: str, secret_part: str) -> None:
    redacted = redact(text)

    assert secret_part not in redacted and REDACTED in redacted


def test_known_secrets_are_redacted_also_percent_encoded_and_before_the_cut() -> None:
    secret = "my/known secret"  # noqa: S105 - planted
    text = f"a {secret} b {quote(secret, safe='')} c"

    assert redact(text, [secret]) == f"a {REDACTED} b {REDACTED} c"
    cut = short_error("x" * 495 + secret, [secret], limit=500)
    assert "my/kn" not in cut, "the cut never leaves a piece of a secret"
