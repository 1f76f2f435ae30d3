"""What a page says a failing DAG affects, read from a real Prometheus running the committed rules.

The exporter's asset-graph series (as exposition text, served to Prometheus from a loopback scrape target) go through
Prometheus and the asset-impact rules; the plugin's `read_impact` must then write exactly what the rule alerts'
Go templates write for the same DAG, so a page from the plugin and one from the rules read alike.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow_obs.observability import impact
from airflow_obs.observability.events import TaskEvent
from airflow_obs.observability.notify import alerts, messages
from airflow_obs.observability.settings import PluginSettings, read_settings

from local_stack.free_ports import free_port
from tests.running_prometheus import ODD_ASSET, RunningPrometheus, running_prometheus


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPrometheus]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus")) as running:
        yield running


def settings_for(prometheus_url: str) -> PluginSettings:
    return read_settings({"AIRFLOW__OBSERVABILITY__PROMETHEUS_URL": prometheus_url})


def test_the_plugin_writes_what_the_rules_write_for_the_failing_dag_and_the_dags_waiting_on_it(
    prometheus: RunningPrometheus,
) -> None:
    settings = settings_for(prometheus.url)
    producer_alert = prometheus.rule_alerts("AirflowDagLastRunFailed")["etl_orders"]
    waiting = prometheus.rule_alerts("AirflowDagUpstreamFailing")

    producer = impact.read_impact(settings, "etl_orders")
    assert producer.affects_text() == producer_alert["affects"]
    assert producer.affects_text() == (
        f"{ODD_ASSET} -> adhoc_report (team none, owner alice); "
        "warehouse://orders -> ml_monitor_drift (team ml, owner ml-eng); "
        "warehouse://orders -> ml_train_return_model (team ml, owner ml-eng); and 42 more"
    )
    assert producer.upstream_text() == producer_alert["upstream_failing"] == ""

    for dag_id in ("ml_monitor_drift", "ml_train_return_model"):
        consumer = impact.read_impact(settings, dag_id)
        assert consumer.upstream_text() == waiting[dag_id]["upstream_failing"]
        assert consumer.upstream_text() == "etl_orders, whose latest run failed (via warehouse://orders)"
        assert consumer.affects_text() == waiting[dag_id]["affects"]
    assert impact.read_impact(settings, "ml_monitor_drift").affects_text() == (
        "model://return_model/drift -> ml_train_return_model (team ml, owner ml-eng)"
    )


def failed_try(dag_id: str) -> TaskEvent:
    return TaskEvent(
        dag_id=dag_id, run_id="scheduled__2026-12-07T02:00:00+00:00", task_id="load", map_index=-1, try_number=2,
        max_tries=1, state="failed", owner="data-eng", team="data-platform", pool="default_pool", queue="default",
        hostname="worker-1", start_date=None, end_date=None, queued_dttm=None, error="OperationalError: boom",
    )  # fmt: skip


def test_a_task_page_carries_the_impact_in_its_alert_and_in_every_direct_message(prometheus: RunningPrometheus) -> None:
    settings = settings_for(prometheus.url)
    found = impact.read_impact(settings, "etl_orders")
    event = failed_try("etl_orders")

    alert = alerts.task_failed(settings, event, trace_id="", impact=found).body()
    note = messages.task_notification(settings, event, messages.TASK_FAILED, "", found)

    assert alert["annotations"]["affects"] == found.affects_text()
    assert "upstream_failing" not in alert["annotations"]  # empty: left out of the alert
    assert ("Affects", found.affects_text()) in note.facts()
    assert messages.webhook_payload(note)["affects"] == found.affects_text()
    assert "ml_monitor_drift (team ml, owner ml-eng)" in str(messages.slack_payload(note))
    assert "ml_monitor_drift (team ml, owner ml-eng)" in messages.email_content(note)["html"]


def test_without_a_prometheus_the_page_says_nothing_of_impact() -> None:
    assert impact.read_impact(read_settings({}), "etl_orders") == impact.NO_IMPACT
    assert impact.NO_IMPACT.annotations() == {"affects": "", "upstream_failing": ""}


def test_an_unreachable_prometheus_makes_the_impact_unknown_and_says_why() -> None:
    found = impact.read_impact(settings_for(f"http://127.0.0.1:{free_port()}"), "etl_orders")

    assert found.affects_text().startswith("unknown: Prometheus at http://127.0.0.1:")
    assert "could not answer" in found.affects_text()


def serving(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def test_a_prometheus_that_never_answers_holds_the_page_for_the_read_timeout_only() -> None:
    release = threading.Event()

    class Hanging(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            release.wait(10)

        def log_message(self, *args) -> None:
            pass

    server = serving(Hanging)
    try:
        found = impact.read_impact(settings_for(f"http://127.0.0.1:{server.server_address[1]}"), "etl_orders", 0.5)
    finally:
        release.set()
        server.shutdown()
        server.server_close()

    assert "no complete answer within 0.5 s" in found.unknown


def test_a_damaged_answer_makes_the_impact_unknown_not_an_exception() -> None:
    class Damaged(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            row = {"metric": {"__name__": impact.DOWNSTREAM_COUNT}, "value": [0, "many"]}
            body = json.dumps({"status": "success", "data": {"result": [row]}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = serving(Damaged)
    try:
        found = impact.read_impact(settings_for(f"http://127.0.0.1:{server.server_address[1]}"), "etl_orders")
    finally:
        server.shutdown()
        server.server_close()

    assert found.affects_text() == "unknown: Prometheus answered an unexpected result (ValueError)"
