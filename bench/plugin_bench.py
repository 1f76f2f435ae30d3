"""Time the observability plugin adds to a task event: the listener fan-out, and a final-failure notification.

Run: `python -m bench.plugin_bench [--events 2000] [--write-docs]` (part of `make bench`).

- listener: `on_task_instance_success` with every sink on (Stats to StatsD over UDP, JSON logs, a try
  span written to the JSONL trace store), per event;
- notification: `on_task_failure` (the final-failure callback) sending Slack, webhook and email to
  local capture servers on 127.0.0.1, per event; then with every sink hanging (a listener that accepts
  and never answers), where the configured bound (AIRFLOW__OBSERVABILITY__NOTIFY_TIMEOUT_SECONDS) must hold.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

from bench.docs_section import DOCS, write_section

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTIFY_TIMEOUT_SECONDS = 1.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def _summary(name: str, seconds: list[float]) -> str:
    ms = [value * 1000 for value in seconds]
    return (
        f"| {name} | {len(ms)} | {statistics.median(ms):.2f} ms | {_percentile(ms, 0.99):.2f} ms | {max(ms):.2f} ms |"
    )


def _task_instance(index: int, state: str, try_number: int = 1, max_tries: int = 0) -> SimpleNamespace:
    now = datetime.now(UTC)
    dag = SimpleNamespace(tags=["etl", "team:data-platform"])
    return SimpleNamespace(
        dag_id="bench_dag",
        run_id=f"manual__{index}",
        task_id=f"task_{index % 5}",
        map_index=-1,
        try_number=try_number,
        max_tries=max_tries,
        state=state,
        pool="default_pool",
        queue="default",
        hostname="bench",
        start_date=now - timedelta(seconds=3),
        end_date=now,
        queued_dttm=None,
        task=SimpleNamespace(owner="data-eng", dag=dag, pool="default_pool", queue="default"),
    )


@contextmanager
def _hanging_listener():
    """A TCP port that accepts connections and never answers: the worst kind of dead sink."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        for connection in accepted:
            connection.close()
        server.close()


def _point_sinks_at(slack: str, webhook: str, smtp_port: int, spool: Path) -> None:
    os.environ["AIRFLOW_CONN_OBS_SLACK"] = f"slackwebhook://:{quote(slack, safe='')}@"
    os.environ["AIRFLOW_CONN_OBS_WEBHOOK"] = f"http://:bench-hmac-key@{webhook}/hooks/airflow"
    os.environ["AIRFLOW_CONN_OBS_SMTP"] = f"smtp://:pw@127.0.0.1:{smtp_port}?disable_tls=true&disable_ssl=true"
    os.environ["AIRFLOW__OBSERVABILITY__SPOOL_DIR"] = str(spool)
    from airflow_obs.observability.settings import settings

    settings.cache_clear()


def run(events: int, folder: Path) -> list[str]:
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # receives and drops: UDP sends never block
    statsd.bind(("127.0.0.1", 0))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(folder / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd.getsockname()[1]),
            "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
            "AIRFLOW__OBSERVABILITY__TRACES_FILE": str(folder / "traces.jsonl"),
            "AIRFLOW__OBSERVABILITY__NOTIFY_TIMEOUT_SECONDS": str(NOTIFY_TIMEOUT_SECONDS),
            "AIRFLOW__OBSERVABILITY__EMAIL_TO": "oncall@example.com",
            "AIRFLOW__OBSERVABILITY__LOG_FORMAT": "json",
        }
    )
    sys.path.insert(0, str(REPO_ROOT / "plugins"))
    from airflow_obs.observability import listeners
    from airflow_obs.observability.events import TaskEvent
    from airflow_obs.observability.paging import page_task_failure

    from local_stack.captures.http_capture import make_http_capture
    from local_stack.captures.smtp_capture import make_smtp_capture

    rows = []
    listener_times = []
    for index in range(events):
        ti = _task_instance(index, "success")
        started = time.perf_counter()
        listeners.on_task_instance_success(None, ti)
        listener_times.append(time.perf_counter() - started)
    rows.append(_summary("listener: task success (metrics, log, span)", listener_times))

    slack = make_http_capture("slack", "127.0.0.1", 0, folder / "slack.jsonl")
    webhook = make_http_capture("webhook", "127.0.0.1", 0, folder / "webhook.jsonl")
    smtp = make_smtp_capture("127.0.0.1", 0, folder / "smtp.jsonl")
    servers = [threading.Thread(target=server.serve_forever, daemon=True) for server in (slack, webhook)]
    for thread in servers:
        thread.start()
    smtp.start()
    try:
        _point_sinks_at(
            f"http://127.0.0.1:{slack.server_address[1]}/services/T0/B0/bench",
            f"127.0.0.1:{webhook.server_address[1]}",
            smtp.port,
            folder / "spool-up",
        )
        reachable = []
        for index in range(max(20, events // 20)):
            event = TaskEvent.from_task_instance(_task_instance(index, "failed"), error=RuntimeError("bench failure"))
            started = time.perf_counter()
            page_task_failure(event)
            reachable.append(time.perf_counter() - started)
        rows.append(_summary("final-failure page, direct to 3 sinks up", reachable))
    finally:
        slack.shutdown()
        webhook.shutdown()
        smtp.stop()

    with _hanging_listener() as slack_port, _hanging_listener() as webhook_port, _hanging_listener() as smtp_port:
        _point_sinks_at(
            f"http://127.0.0.1:{slack_port}/services/T0/B0/bench",
            f"127.0.0.1:{webhook_port}",
            smtp_port,
            folder / "down",
        )
        down = []
        for index in range(10):
            ti = _task_instance(100_000 + index, "failed")  # a run of its own: each try pages once per process
            event = TaskEvent.from_task_instance(ti, error=RuntimeError("bench failure"))
            started = time.perf_counter()
            page_task_failure(event)
            down.append(time.perf_counter() - started)
        rows.append(_summary(f"final-failure page, 3 sinks hanging (bound {NOTIFY_TIMEOUT_SECONDS:g} s)", down))
    statsd.close()
    return rows


def render(rows: list[str]) -> str:
    header = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {os.cpu_count()} cores, in one process, wall time per call.",
        "",
        "| event | calls | median | p99 | max |",
        "|---|---:|---:|---:|---:|",
    ]
    return "\n".join(header + rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="listener events to time")
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the plugin part of {DOCS.name}")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error(f"--events must be at least 1, got {args.events}")
    with tempfile.TemporaryDirectory(prefix="airflow-obs-plugin-bench-") as folder:
        section = render(run(args.events, Path(folder)))
    print(section)
    if args.write_docs:
        write_section("plugin-bench", section)


if __name__ == "__main__":
    main()
