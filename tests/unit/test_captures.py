"""Tests of the local alert captures (Slack, generic webhook, SMTP) on 127.0.0.1."""

from __future__ import annotations

import json
import select
import signal
import smtplib
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from local_stack.captures.http_capture import make_http_capture
from local_stack.captures.recorder import read_records
from local_stack.captures.smtp_capture import make_smtp_capture

REPO_ROOT = Path(__file__).resolve().parents[2]
# A proxy from the environment must never see requests meant for 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

ALERTMANAGER_PAYLOAD: dict[str, Any] = {
    "version": "4",
    "receiver": "pager",
    "status": "firing",
    "groupKey": '{}:{alertname="AirflowDagRunFailed"}',
    "commonLabels": {"alertname": "AirflowDagRunFailed", "severity": "critical"},
    "alerts": [
        {"status": "firing", "labels": {"alertname": "AirflowDagRunFailed", "dag_id": "etl"}},
        {"status": "firing", "labels": {"alertname": "AirflowDagRunFailed", "dag_id": "report"}},
    ],
}


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    text: str


@dataclass(frozen=True)
class RunningCapture:
    url: str
    out: Path

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.out)


def request(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None, method: str | None = None
) -> Response:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)  # noqa: S310
    try:
        with _OPENER.open(req, timeout=5) as resp:
            return Response(resp.status, resp.headers.get_content_type(), resp.read().decode())
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, error.headers.get_content_type(), error.read().decode())


def post_json(url: str, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return request(url, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


@pytest.fixture
def start_capture(tmp_path: Path) -> Iterator[Callable[[str], RunningCapture]]:
    """Starts HTTP captures on free ports; every one started is shut down after the test."""
    started: list[tuple[Any, threading.Thread]] = []

    def start(kind: str) -> RunningCapture:
        out = tmp_path / f"{kind}.jsonl"
        server = make_http_capture(kind, "127.0.0.1", 0, out)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        host, port = server.server_address[:2]
        return RunningCapture(f"http://{host}:{port}", out)

    try:
        yield start
    finally:
        for server, thread in started:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@pytest.fixture
def slack(start_capture: Callable[[str], RunningCapture]) -> RunningCapture:
    return start_capture("slack")


@pytest.fixture
def webhook(start_capture: Callable[[str], RunningCapture]) -> RunningCapture:
    return start_capture("webhook")


@pytest.fixture
def smtp_capture(tmp_path: Path) -> Iterator[tuple[Controller, Path]]:
    out = tmp_path / "smtp.jsonl"
    controller = make_smtp_capture("127.0.0.1", 0, out)
    try:
        controller.start()
        yield controller, out
    finally:
        controller.stop(no_assert=True)


def test_slack_capture_records_a_payload_and_answers_ok_like_slack(
    slack: RunningCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = {"text": "[FIRING:1] Watchdog", "username": "alertmanager"}

    response = post_json(f"{slack.url}/services/T0/B0/XXX?thread=1", payload)

    assert response == Response(200, "text/plain", "ok")
    (record,) = slack.records()
    assert record["kind"] == "slack"
    assert record["method"] == "POST"
    assert record["path"] == "/services/T0/B0/XXX"
    assert record["query"] == {"thread": ["1"]}
    assert record["body"] == payload
    assert record["response_status"] == 200
    assert record["headers"]["Content-Type"] == "application/json"
    assert record["received_at"].endswith("+00:00")
    size = len(json.dumps(payload))
    assert f'[slack] POST /services/T0/B0/XXX {size} B: "[FIRING:1] Watchdog"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"payload=not-json", Response(400, "text/plain", "invalid_payload")),
        (b'{"username": "alertmanager"}', Response(400, "text/plain", "no_text")),
        (
            b'{"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}',
            Response(200, "text/plain", "ok"),
        ),
        (b'{"attachments": [{"title": "t"}]}', Response(200, "text/plain", "ok")),
    ],
    ids=["not-json", "json-without-text", "blocks-only", "attachments-only"],
)
def test_slack_capture_answers_each_payload_as_slack_would(
    slack: RunningCapture, body: bytes, expected: Response
) -> None:
    assert request(f"{slack.url}/services/T0/B0/XXX", body) == expected


def test_slack_capture_records_every_request_whatever_its_response(slack: RunningCapture) -> None:
    url = f"{slack.url}/services/T0/B0/XXX"
    request(url, b'{"text": "hello"}')
    request(url, b"not json at all")
    request(url, b'{"channel": "#alerts"}')

    records = slack.records()

    assert [r["response_status"] for r in records] == [200, 400, 400]
    assert [r["body"] for r in records] == [{"text": "hello"}, "not json at all", {"channel": "#alerts"}]


@pytest.mark.parametrize(
    ("payload", "summary"),
    [
        ({"attachments": [{"fallback": "fb", "title": "Attachment title"}]}, '"Attachment title"'),
        (
            {"blocks": [{"type": "divider"}, {"type": "header", "text": {"text": "Block text"}}]},
            '"Block text"',
        ),
        ({"text": "x" * 300}, '"' + "x" * 99 + "…" + '"'),
    ],
    ids=["attachment", "block", "truncated"],
)
def test_slack_summary_falls_back_to_attachments_then_blocks_and_is_truncated(
    slack: RunningCapture, capsys: pytest.CaptureFixture[str], payload: dict[str, Any], summary: str
) -> None:
    post_json(f"{slack.url}/services/T0/B0/XXX", payload)

    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith(f"B: {summary}")


def test_webhook_capture_records_an_alertmanager_payload_and_summarises_its_alertname(
    webhook: RunningCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    response = post_json(f"{webhook.url}/alertmanager", ALERTMANAGER_PAYLOAD)

    assert (response.status, response.content_type, json.loads(response.text)) == (
        200,
        "application/json",
        {"status": "ok"},
    )
    (record,) = webhook.records()
    assert record["kind"] == "webhook"
    assert record["path"] == "/alertmanager"
    assert record["body"] == ALERTMANAGER_PAYLOAD
    assert record["response_status"] == 200
    line = capsys.readouterr().out.strip()
    assert line.startswith("[webhook] POST /alertmanager ")
    assert "firing, 2 alert(s), alertname=AirflowDagRunFailed" in line


def test_webhook_capture_keeps_a_body_that_is_not_json_as_text(
    webhook: RunningCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    response = request(f"{webhook.url}/pager", b"plain words", {"Content-Type": "text/plain"})

    assert response.status == 200
    (record,) = webhook.records()
    assert record["body"] == "plain words"
    assert capsys.readouterr().out.strip() == "[webhook] POST /pager 11 B"


@pytest.mark.parametrize("kind", ["slack", "webhook"])
def test_healthz_answers_ok_and_is_not_recorded(
    start_capture: Callable[[str], RunningCapture], capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    capture = start_capture(kind)

    assert request(f"{capture.url}/healthz") == Response(200, "text/plain", "ok")
    assert capture.records() == []
    assert capsys.readouterr().out == ""


def test_secret_headers_are_redacted_but_signature_headers_are_kept(webhook: RunningCapture) -> None:
    secrets = {"Authorization": "Bearer s3cr3t", "X-Api-Key": "k3y", "Cookie": "session=abc"}
    post_json(f"{webhook.url}/pager", {"a": 1}, {**secrets, "X-Signature": "sha256=abcd", "User-Agent": "am"})

    headers = webhook.records()[0]["headers"]

    assert {name: headers[name] for name in secrets} == dict.fromkeys(secrets, "[redacted]")
    assert headers["X-Signature"] == "sha256=abcd"
    assert headers["User-Agent"] == "am"
    assert not any(value in webhook.out.read_text() for value in secrets.values())


def test_unknown_http_capture_kind_raises_a_value_error_naming_it_and_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'pagerduty'.*slack, webhook"):
        make_http_capture("pagerduty", "127.0.0.1", 0, tmp_path / "x.jsonl")


def _send_mail(controller: Controller, message: EmailMessage, to_addrs: list[str]) -> None:
    # local_hostname avoids socket.getfqdn(), which can stall on a machine without DNS.
    with smtplib.SMTP("127.0.0.1", controller.port, local_hostname="localhost", timeout=5) as client:
        client.send_message(message, to_addrs=to_addrs)


def test_smtp_capture_records_a_multipart_message_sent_with_smtplib(
    smtp_capture: tuple[Controller, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    controller, out = smtp_capture
    message = EmailMessage()
    message["Subject"] = "[FIRING:1] AirflowDagRunFailed"
    message["From"] = "alertmanager@example.org"
    message["To"] = "oncall@example.org"
    message.set_content("DAG etl failed\n")
    message.add_alternative("<html><body><p>DAG <b>etl</b> failed</p></body></html>\n", subtype="html")

    # The audit address is only in the envelope, as a Bcc would be.
    _send_mail(controller, message, ["oncall@example.org", "audit@example.org"])

    (record,) = read_records(out)
    assert record["kind"] == "smtp"
    assert record["mail_from"] == "alertmanager@example.org"
    assert record["rcpt_tos"] == ["oncall@example.org", "audit@example.org"]
    assert record["subject"] == "[FIRING:1] AirflowDagRunFailed"
    assert (record["from"], record["to"]) == ("alertmanager@example.org", "oncall@example.org")
    assert record["content_type"] == "multipart/alternative"
    assert record["text"] == "DAG etl failed\n"
    assert record["html"] == "<html><body><p>DAG <b>etl</b> failed</p></body></html>\n"
    line = capsys.readouterr().out.strip()
    assert line.startswith("[smtp] alertmanager@example.org -> oncall@example.org, audit@example.org ")
    assert line.endswith('"[FIRING:1] AirflowDagRunFailed"')


def test_smtp_capture_takes_the_text_of_the_html_part_when_there_is_only_html(
    smtp_capture: tuple[Controller, Path],
) -> None:
    controller, out = smtp_capture
    message = EmailMessage()
    message["Subject"] = "Airflow alert"
    message["From"] = "airflow@example.org"
    message["To"] = "oncall@example.org"
    message.set_content("<html><style>p {}</style><p>Task <b>load</b> failed</p></html>", subtype="html")

    _send_mail(controller, message, ["oncall@example.org"])

    (record,) = read_records(out)
    assert record["content_type"] == "text/html"
    assert record["text"] == "Task load failed"
    assert "<b>load</b>" in record["html"]


@pytest.mark.parametrize(
    ("kind", "announcement"),
    [
        ("webhook", "[webhook] listening on http://127.0.0.1:"),
        ("smtp", "[smtp] listening on smtp://127.0.0.1:"),
    ],
    ids=["http", "smtp"],
)
def test_a_served_capture_announces_its_address_and_exits_cleanly_on_sigterm(
    tmp_path: Path, kind: str, announcement: str
) -> None:
    out = tmp_path / "out.jsonl"
    command = [
        sys.executable,
        "-m",
        "local_stack",
        "capture",
        kind,
        "--port",
        "0",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "the capture did not announce itself within 10 s"
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith(announcement)
        assert line.endswith(f", recording to {out}")
        port = int(line.removeprefix(announcement).split(",")[0])
        assert port > 0
        if kind == "webhook":
            assert request(f"http://127.0.0.1:{port}/healthz").text == "ok"

        proc.send_signal(signal.SIGTERM)

        assert proc.wait(timeout=5) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
