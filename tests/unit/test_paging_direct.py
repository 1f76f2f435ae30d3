"""Paging without Alertmanager: a DAG paged directly gets one recovery message; the spool drains without a callback.

Also: the callbacks earlier versions put on DAGs page nobody (the listeners do), and the local stack's connections.
"""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow_obs.observability import callbacks, paging, reconciler
from airflow_obs.observability.events import DagRunEvent
from airflow_obs.observability.notify.sinks import webhook_url
from airflow_obs.observability.notify.spool import Spool, new_envelope
from airflow_obs.observability.notify.state import DagFailures, state_dir
from airflow_obs.observability.settings import read_settings, settings

from local_stack.airflow_env import airflow_env
from local_stack.settings import load_settings
from tests.conftest import free_port


@pytest.fixture
def plugin_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every sink off except a webhook on a free port nothing listens on (yet); a private spool."""
    port = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_OBS_WEBHOOK", f"http://:callbacks-key@127.0.0.1:{port}/hook")
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__SLACK_CONN_ID", "")
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__SMTP_CONN_ID", "")
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__NOTIFY_TIMEOUT_SECONDS", "1")
    settings.cache_clear()
    try:
        yield tmp_path / "spool", port
    finally:
        settings.cache_clear()


def run_event(state: str, run_id: str, reason: str = "", dag_id: str = "etl_orders") -> DagRunEvent:
    """A DAG run reaching `state`, as the scheduler's listener sees it (`reason` is Airflow's msg on failure)."""
    dag = SimpleNamespace(dag_id=dag_id, owner="data-platform", tags=["team:data-platform"])
    run = SimpleNamespace(dag_id=dag_id, run_id=run_id, dag=dag, run_type="scheduled", start_date=None, end_date=None)
    return DagRunEvent.from_dag_run(run, state=state, msg=reason or None)


@pytest.mark.parametrize(
    "callback",
    [callbacks.on_task_failure, callbacks.on_task_retry, callbacks.on_task_success, callbacks.on_dag_run_failure,
     callbacks.on_dag_run_success],
)  # fmt: skip
def test_the_old_callbacks_page_nobody_so_a_dag_that_keeps_them_is_not_paged_twice(callback, plugin_env) -> None:
    spool_path, _ = plugin_env
    ti = SimpleNamespace(dag_id="etl_orders", run_id="r1", task_id="load", map_index=-1, try_number=3, max_tries=2,
                         state="failed", task=None)  # fmt: skip

    callback({"ti": ti, "exception": RuntimeError("boom"), "dag": None, "run_id": "r1", "reason": "timed_out"})

    assert not spool_path.exists() or Spool(spool_path).waiting() == [], "no message was even attempted"


def test_a_run_failure_is_remembered_and_the_next_success_sends_one_recovery(plugin_env) -> None:
    failures = DagFailures(state_dir(settings()))

    paging.record_dag_run_event(run_event("failed", "scheduled__1", reason="task_failure"))
    assert failures.failed_run("etl_orders") == "scheduled__1"
    (record,) = failures.directory.iterdir()
    assert stat.S_IMODE(record.stat().st_mode) == 0o600

    paging.recover_dag(run_event("success", "scheduled__2"))
    assert failures.failed_run("etl_orders") is None
    spooled = Spool(settings().spool_path).waiting()
    assert len(spooled) == 1 and spooled[0].name.endswith("-webhook.json"), "the recovery message, kept"

    paging.recover_dag(run_event("success", "scheduled__3"))
    assert len(Spool(settings().spool_path).waiting()) == 1, "no second recovery"


def test_the_state_sits_beside_the_spool() -> None:
    current = read_settings({"AIRFLOW__OBSERVABILITY__SPOOL_DIR": "/var/lib/airflow-obs/spool"})

    assert state_dir(current) == Path("/var/lib/airflow-obs/spool-dag-state")


def test_two_successes_at_once_take_one_failure_once(tmp_path: Path) -> None:
    failures = DagFailures(tmp_path)
    failures.remember("dag/with odd:id", "r1")
    taken: list = []
    threads = [threading.Thread(target=lambda: taken.append(failures.take("dag/with odd:id"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [record["run_id"] for record in taken if record] == ["r1"]
    assert list(tmp_path.iterdir()) == []


def test_the_schedulers_pass_redelivers_what_the_spool_holds_without_waiting_for_a_callback(plugin_env, caplog) -> None:
    spool_path, port = plugin_env
    spool = Spool(spool_path)
    envelope = new_envelope("n1", "webhook", {"kind": "task_failed"})
    spool.claim_new(envelope)
    spool.release(envelope)
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO):
            reconciler.run_once(settings())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert received == [b'{"kind":"task_failed"}']
    assert spool.waiting() == []
    assert f"notification {envelope.id} delivered to webhook" in caplog.text


def test_the_local_stack_points_the_three_connections_at_its_captures(tmp_path: Path) -> None:
    from airflow.sdk import Connection

    stack = load_settings({"AIRFLOW_OBS_HOME": str(tmp_path)})

    env = airflow_env(stack)

    slack = Connection.from_uri(env["AIRFLOW_CONN_OBS_SLACK"], conn_id="obs_slack")
    assert slack.conn_type == "slackwebhook"
    assert slack.password.startswith(f"http://127.0.0.1:{stack.ports['slack_capture']}/services/")
    smtp = Connection.from_uri(env["AIRFLOW_CONN_OBS_SMTP"], conn_id="obs_smtp")
    assert (smtp.host, smtp.port, smtp.extra_dejson["disable_tls"]) == (
        "127.0.0.1",
        stack.ports["smtp_capture"],
        "true",
    )
    webhook = Connection.from_uri(env["AIRFLOW_CONN_OBS_WEBHOOK"], conn_id="obs_webhook")
    assert webhook_url(webhook) == f"http://127.0.0.1:{stack.ports['webhook_capture']}/airflow-obs"
    key_file = stack.secrets_dir / "obs_webhook_hmac_key"
    assert webhook.password == key_file.read_text().strip() and len(webhook.password) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert airflow_env(stack)["AIRFLOW_CONN_OBS_WEBHOOK"] == env["AIRFLOW_CONN_OBS_WEBHOOK"], "stable across starts"
    assert env["AIRFLOW__OBSERVABILITY__EMAIL_TO"] == stack.endpoints.smtp_to
