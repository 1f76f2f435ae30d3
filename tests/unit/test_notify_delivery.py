"""Delivery policy against a scripted HTTP server on 127.0.0.1: retries, Retry-After, 4xx, hangs, the spool."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_obs.observability.notify import messages
from airflow_obs.observability.notify.delivery import deliver, redeliver_spooled
from airflow_obs.observability.notify.retries import DeliveryError, Policy, send_with_retries
from airflow_obs.observability.notify.sinks import SIGNATURE_HEADER, prepare_sinks
from airflow_obs.observability.notify.spool import CLAIMED, PENDING, REJECTED_DIR, Spool, new_envelope
from airflow_obs.observability.settings import PluginSettings, read_settings

from tests.conftest import free_port
from tests.scripted_server import Reply, ScriptedServer

HMAC_KEY = "hmac-key-for-tests-7Qd9"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def serve(port: int) -> Iterator:
    """Start a scripted server on the test's port; every one started is stopped after the test."""
    started: list[tuple[ScriptedServer, threading.Thread]] = []

    def start(*replies: Reply) -> ScriptedServer:
        server = ScriptedServer(port, list(replies))
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    try:
        yield start
    finally:
        for server, thread in started:
            server.release.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@pytest.fixture
def settings(tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> PluginSettings:
    """Only the webhook sink, pointing at the scripted server; a 1 s budget and 3 attempts."""
    monkeypatch.setenv("AIRFLOW_CONN_OBS_WEBHOOK", f"http://:{HMAC_KEY}@127.0.0.1:{port}/hook")
    return read_settings(
        {
            "AIRFLOW__OBSERVABILITY__SPOOL_DIR": str(tmp_path / "spool"),
            "AIRFLOW__OBSERVABILITY__NOTIFY_TIMEOUT_SECONDS": "1",
            "AIRFLOW__OBSERVABILITY__NOTIFY_MAX_ATTEMPTS": "3",
            "AIRFLOW__OBSERVABILITY__SLACK_CONN_ID": "",
            "AIRFLOW__OBSERVABILITY__SMTP_CONN_ID": "",
        }
    )


def note() -> messages.Notification:
    return messages.Notification(
        id="n1", kind=messages.TASK_FAILED, dag_id="etl", run_id="r1", owner="data", team="", error="boom",
        links={"log": "http://airflow/x"}, task_id="load", try_number=3, max_tries=2,
    )  # fmt: skip


def send_now(settings: PluginSettings, budget: float | None = None):
    sinks = prepare_sinks(settings)
    spool = Spool(settings.spool_path)
    deadline = time.monotonic() + (settings.notify_timeout_seconds if budget is None else budget)
    outcomes = deliver(
        sinks.envelopes(note(), settings), sinks.senders, spool=spool, policy=Policy.from_settings(settings),
        deadline=deadline,
    )  # fmt: skip
    return outcomes, spool


def test_two_server_errors_then_ok_deliver_exactly_once(serve, settings) -> None:
    server = serve(Reply(500), Reply(503), Reply(200))

    (outcome,), spool = send_now(settings)

    assert (outcome.status, outcome.attempts) == ("delivered", 3)
    assert len(server.requests) == 3
    assert len({body for _, _, body in server.requests}) == 1, "every attempt sends the same body"
    assert spool.waiting() == [] and not list(settings.spool_path.glob(f"*{CLAIMED}"))


def test_a_429_waits_for_its_retry_after(serve, settings) -> None:
    server = serve(Reply(429, {"Retry-After": "1"}), Reply(200))
    settings = read_settings({**_env(settings), "AIRFLOW__OBSERVABILITY__NOTIFY_TIMEOUT_SECONDS": "3"})

    (outcome,), _ = send_now(settings)

    assert outcome.status == "delivered"
    (first, *_), (second, *_) = server.requests
    assert 1.0 <= second - first < 2.5


def test_a_retry_after_beyond_the_budget_spools_at_once_and_redelivery_honours_it(serve, settings) -> None:
    server = serve(Reply(429, {"Retry-After": "120"}))
    started = time.monotonic()

    (outcome,), spool = send_now(settings)

    assert outcome.status == "spooled" and time.monotonic() - started < 1.0
    assert len(server.requests) == 1
    (waiting,) = [spool.load(path) for path in spool.waiting()]
    assert waiting.not_before >= time.time() + 100
    assert redeliver_spooled(settings=settings) == [], "not due yet: the sink is left alone"
    assert len(server.requests) == 1


def test_a_400_is_not_retried_and_is_kept_aside(serve, settings) -> None:
    server = serve(Reply(400), Reply(200))

    (outcome,), spool = send_now(settings)

    assert (outcome.status, outcome.attempts, outcome.reason) == ("rejected", 1, "HTTP 400 ok")
    assert len(server.requests) == 1
    assert spool.waiting() == []
    (kept,) = (settings.spool_path / REJECTED_DIR).iterdir()
    assert json.loads(kept.read_text())["last_error"] == "HTTP 400 ok"


def test_a_hanging_server_costs_no_more_than_the_budget_and_the_message_is_spooled(serve, settings) -> None:
    server = serve(Reply(hang=True))
    started = time.monotonic()

    (outcome,), spool = send_now(settings)

    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1.75, "the 1 s budget, plus scheduling slack on a busy machine"
    assert outcome.status == "spooled" and "timed out" in outcome.reason
    assert len(spool.waiting()) == 1
    server.release.set()


def test_a_sender_that_never_returns_is_abandoned_at_the_deadline() -> None:
    release = threading.Event()

    def stuck(envelope, timeout) -> None:  # ignores its timeout, as a dripping server can make a client do
        release.wait(10)

    spool = Spool(Path(os.environ["AIRFLOW_HOME"]) / f"stuck-{time.monotonic_ns()}")
    envelope = new_envelope("n", "webhook", {"a": 1})
    started = time.monotonic()
    try:
        (outcome,) = deliver(
            [envelope], {"webhook": stuck}, spool=spool, policy=Policy(0.5, 3), deadline=time.monotonic() + 0.5
        )
        assert time.monotonic() - started < 1.1
        assert outcome.status == "spooled" and outcome.reason == "no answer within 0.5 s"
        assert [path.name for path in spool.waiting()] == [f"{envelope.id}{PENDING}"]
    finally:
        release.set()


def test_a_send_that_succeeds_after_the_deadline_removes_its_spooled_copy(tmp_path: Path) -> None:
    release, done = threading.Event(), threading.Event()

    def late(envelope, timeout) -> None:
        release.wait(5)
        done.set()

    spool = Spool(tmp_path / "spool")
    (outcome,) = deliver(
        [new_envelope("n", "slack", {})], {"slack": late}, spool=spool, policy=Policy(0.3, 1),
        deadline=time.monotonic() + 0.3,
    )  # fmt: skip
    assert outcome.status == "spooled" and len(spool.waiting()) == 1

    release.set()
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while spool.waiting() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert spool.waiting() == []


def test_spooled_while_down_then_redelivered_once_the_server_is_back(serve, settings) -> None:
    (first,), spool = send_now(settings)  # nothing listens on the port yet
    (second,), _ = send_now(settings)
    assert first.status == second.status == "spooled"
    assert first.reason == "network error: ConnectionRefusedError"
    assert len(spool.waiting()) == 2

    server = serve(Reply(200))
    outcomes = redeliver_spooled(settings=settings)

    assert [outcome.status for outcome in outcomes] == ["delivered", "delivered"]
    assert [outcome.envelope_id for outcome in outcomes] == [first.envelope_id, second.envelope_id], "oldest first"
    assert len(server.requests) == 2
    assert spool.waiting() == [] and list(settings.spool_path.iterdir()) == []


def test_a_failed_redelivery_stops_that_sink_and_backs_off(tmp_path: Path) -> None:
    calls: list[str] = []

    def down(envelope, timeout) -> None:
        calls.append(envelope.id)
        raise DeliveryError("HTTP 503", retryable=True)

    now = [1000.0]
    spool = Spool(tmp_path / "spool", clock=lambda: now[0])
    for index in range(3):
        envelope = new_envelope(f"n{index}", "webhook", {}, now=now[0] + index)
        spool.claim_new(envelope)
        spool.release(envelope)
    settings = read_settings(
        {
            "AIRFLOW__OBSERVABILITY__SPOOL_DIR": str(tmp_path / "spool"),
            "AIRFLOW__OBSERVABILITY__NOTIFY_MAX_ATTEMPTS": "1",
        }
    )

    outcomes = redeliver_spooled(settings=settings, senders={"webhook": down}, spool=spool, sleep=lambda _: None)

    assert [outcome.status for outcome in outcomes] == ["spooled", "kept", "kept"]
    assert len(calls) == 1
    assert redeliver_spooled(settings=settings, senders={"webhook": down}, spool=spool) == []
    now[0] += 3600
    redeliver_spooled(settings=settings, senders={"webhook": down}, spool=spool, sleep=lambda _: None)
    assert len(calls) == 2 and calls[0] == calls[1], "the same oldest message, after its backoff"


def test_spool_files_are_private_whole_json_one_per_message(serve, settings) -> None:
    send_now(settings)  # refused: spooled

    assert stat.S_IMODE(settings.spool_path.stat().st_mode) == 0o700
    (path,) = settings.spool_path.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = json.loads(path.read_text())
    assert record["sink"] == "webhook" and record["body"]["id"] == "n1" and record["attempts"] >= 1
    assert HMAC_KEY not in path.read_text(), "the spool keeps the message, never the credential"


def test_the_signature_header_is_an_hmac_of_the_exact_body(serve, settings) -> None:
    server = serve(Reply(200))

    send_now(settings)

    ((_, headers, body),) = server.requests
    expected = "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
    assert json.loads(body)["schema"] == messages.WEBHOOK_SCHEMA


def test_retries_stop_at_max_attempts_with_exponential_waits() -> None:
    waits: list[float] = []

    def failing(envelope, timeout) -> None:
        raise DeliveryError("HTTP 502", retryable=True)

    with pytest.raises(DeliveryError) as error:
        send_with_retries(
            failing, new_envelope("n", "slack", {}), policy=Policy(60, 4), deadline=time.monotonic() + 60,
            sleep=waits.append,
        )  # fmt: skip

    assert error.value.attempts == 4
    assert waits == [0.25, 0.5, 1.0]


def _env(settings: PluginSettings) -> dict[str, str]:
    return {
        "AIRFLOW__OBSERVABILITY__SPOOL_DIR": str(settings.spool_path),
        "AIRFLOW__OBSERVABILITY__NOTIFY_MAX_ATTEMPTS": str(settings.notify_max_attempts),
        "AIRFLOW__OBSERVABILITY__SLACK_CONN_ID": "",
        "AIRFLOW__OBSERVABILITY__SMTP_CONN_ID": "",
    }
