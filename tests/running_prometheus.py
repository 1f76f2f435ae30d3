"""A real Prometheus on a free loopback port, running the committed rules over the DAG suite's asset graph.

Its one scrape target serves, as the exporter would, the graph etl_orders -> ml_monitor_drift ->
ml_train_return_model (plus an asset with odd characters and 43 DAGs the list leaves out), with etl_orders failing;
the rules (the DAG alert's one-minute wait cut to nothing) then mark the DAGs waiting on it.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from airflow_obs.alerting.render import render_rule_files
from airflow_obs.alerting.thresholds import env_var
from airflow_obs.observability import impact
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from local_stack.free_ports import free_port
from local_stack.processes import stop_process
from tests.integration.conftest import http_json, wait_for

PROMETHEUS = "/usr/bin/prometheus"
ODD_ASSET = 's3://bucket/odd "name"\\path{x}/é'
DOWNSTREAM_LABELS = ["dag_id", "asset", "downstream_dag_id", "downstream_owner", "downstream_team", "depth"]


def exposition() -> bytes:
    """etl_orders -> ml_monitor_drift -> ml_train_return_model (+ 43 more), as the exporter writes it; the ETL fails."""
    info = GaugeMetricFamily(impact.DOWNSTREAM_INFO, "downstream DAGs", labels=DOWNSTREAM_LABELS)
    info.add_metric(["etl_orders", "warehouse://orders", "ml_monitor_drift", "ml-eng", "ml", "1"], 1)
    info.add_metric(["etl_orders", "warehouse://orders", "ml_train_return_model", "ml-eng", "ml", "2"], 1)
    info.add_metric(["etl_orders", ODD_ASSET, "adhoc_report", "alice", "", "1"], 1)
    info.add_metric(["ml_monitor_drift", "model://return_model/drift", "ml_train_return_model", "ml-eng", "ml", "1"], 1)
    count = GaugeMetricFamily(impact.DOWNSTREAM_COUNT, "downstream DAGs in all", labels=["dag_id"])
    count.add_metric(["etl_orders"], 45)
    count.add_metric(["ml_monitor_drift"], 1)
    failed = GaugeMetricFamily("airflow_dag_last_run_failed", "latest run failed", labels=["dag_id"])
    for dag_id, value in (("etl_orders", 1), ("ml_monitor_drift", 0), ("ml_train_return_model", 0)):
        failed.add_metric([dag_id], value)

    class Families:
        def collect(self):
            return [info, count, failed]

    registry = CollectorRegistry()
    registry.register(Families())
    return generate_latest(registry)


class _Exposition(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = exposition()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@dataclass
class RunningPrometheus:
    url: str

    def rule_alerts(self, alertname: str) -> dict[str, dict[str, str]]:
        """dag_id -> annotations of the firing alerts named `alertname`."""
        status, reply = http_json(f"{self.url}/api/v1/alerts")
        assert status == 200, reply
        return {
            found["labels"]["dag_id"]: found["annotations"]
            for found in reply["data"]["alerts"]
            if found["labels"]["alertname"] == alertname and found["state"] == "firing"
        }


@contextlib.contextmanager
def running_prometheus(home: Path) -> Iterator[RunningPrometheus]:
    target = ThreadingHTTPServer(("127.0.0.1", 0), _Exposition)
    threading.Thread(target=target.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    # The committed rules, with the DAG alert's one-minute wait cut to nothing.
    for name, text in render_rule_files({env_var("dag_failed_for"): "0s"}).items():
        (home / name).write_text(text)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(home / "*.rules.yml")],
        "scrape_configs": [
            {"job_name": "airflow-exporter", "static_configs": [{"targets": [f"127.0.0.1:{target.server_address[1]}"]}]}
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with contextlib.ExitStack() as stack:
        stack.callback(target.server_close)
        stack.callback(target.shutdown)
        log = stack.enter_context((home / "prometheus.log").open("w"))
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        stack.callback(stop_process, process, timeout=10)
        running = RunningPrometheus(f"http://127.0.0.1:{port}")

        def marked() -> bool:
            if process.poll() is not None:
                pytest.fail(f"Prometheus exited: {(home / 'prometheus.log').read_text()}")
            with contextlib.suppress(OSError):
                waiting = running.rule_alerts("AirflowDagUpstreamFailing")
                return {"ml_monitor_drift", "ml_train_return_model"} <= set(waiting) and bool(
                    running.rule_alerts("AirflowDagLastRunFailed")
                )
            return False

        wait_for(marked, 30, "Prometheus to evaluate the asset-impact rules", interval=0.2)
        yield running
