"""One private Airflow 3.3 run whose telemetry several test modules check: StatsD lines and OTLP spans.

A private AIRFLOW_HOME on SQLite, the api-server (tasks reach the execution API through it), scheduler,
dag-processor and triggerer, with StatsD (InfluxDB tags on) pointed at a UDP socket of this process and
Airflow's own tracing (`[traces] otel_on`) pointed at a loopback OTLP/HTTP receiver of this process. The
observability plugin loads in every component (and in the task runner) through its `airflow.plugins` entry
point, and its OTLP exporter reads the same OTEL_* variables, so its spans reach the same receiver.

Two @daily DAGs of our own (catchup off, so each gets one scheduled run at once): `statsd_probe` with a task
that succeeds and one that fails, `statsd_probe_ok` with a single task that succeeds. The run lasts until every
expected StatsD family and every expected span has arrived (or a bounded wait ends), then everything started
is stopped by PID, and what was captured is handed to the tests.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests.conftest import free_port
from tests.integration.conftest import processes_of
from tests.statsd_mapping_matcher import Mapped, StatsdLine, load_mappings, map_line, parse_line

AIRFLOW = str(Path(sys.prefix) / "bin" / "airflow")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
MAX_DATAGRAMS = 100_000  # a run sends ~1,000; the bound only guards memory if something loops
MAX_SPANS = 10_000  # a run sends a few dozen; same reason
MAX_OTLP_BODY_BYTES = 8 * 1024 * 1024  # one batch of a few dozen spans is a few KB
EVERYTHING_TIMEOUT = 150  # seconds after db migrate for every family and span; ~30 s here
STOP_TIMEOUT = 20  # seconds between SIGTERM and SIGKILL (Airflow components stop in ~6 s)
MIGRATE_TIMEOUT = 120
OTLP_TRACES_PATH = "/v1/traces"

PROBE_DAG = "statsd_probe"
DAG_FILE = textwrap.dedent(
    """
    from datetime import datetime

    from airflow.sdk import DAG, task

    # @daily with catchup off: one scheduled run at once, and a periodic timetable, which the schedule and
    # first-task delay metrics need.
    with DAG("statsd_probe", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False,
             default_args={"retries": 0}):

        @task
        def succeeds():
            return 1

        @task
        def fails():
            raise RuntimeError("fails on purpose: the run must end failed")

        succeeds()
        fails()

    with DAG("statsd_probe_ok", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False):

        @task
        def only_task():
            return 1

        only_task()
    """
)

# StatsD families that must arrive, as (Prometheus name, labels that must be among the series' labels).
EXPECTED_FAMILIES = {
    "scheduler heartbeat": ("airflow_scheduler_heartbeat_total", {}),
    "dag-processor heartbeat": ("airflow_dag_processor_heartbeat_total", {}),
    "triggerer heartbeat": ("airflow_triggerer_heartbeat_total", {}),
    "executor open slots": ("airflow_executor_open_slots", {"executor_class_name": "LocalExecutor"}),
    "executor queued tasks": ("airflow_executor_queued_tasks", {"executor_class_name": "LocalExecutor"}),
    "executor running tasks": ("airflow_executor_running_tasks", {"executor_class_name": "LocalExecutor"}),
    **{
        f"pool {kind}": (f"airflow_pool_{kind}", {"pool_name": "default_pool"})
        for kind in ("open_slots", "queued_slots", "running_slots", "deferred_slots", "scheduled_slots")
    },
    "pool starving tasks": ("airflow_pool_starving_tasks", {"pool_name": "default_pool"}),
    "import errors": ("airflow_dag_processing_import_errors", {}),
    "total parse time": ("airflow_dag_processing_total_parse_time_seconds", {}),
    "dagbag size": ("airflow_dagbag_size", {}),
    "file parse duration": ("airflow_dag_processing_last_duration_kiloseconds", {"file_name": "statsd_probe"}),
    "file last parsed": ("airflow_dag_processing_last_run_seconds_ago", {"file_name": "statsd_probe"}),
    "file queue size": ("airflow_dag_processing_file_path_queue_size", {}),
    "parsing processes": ("airflow_dag_processing_processes_total", {"file_path": "statsd_probe.py"}),
    "dagrun failed": ("airflow_dagrun_duration_seconds", {"dag_id": "statsd_probe", "state": "failed"}),
    "dagrun success": ("airflow_dagrun_duration_seconds", {"dag_id": "statsd_probe_ok", "state": "success"}),
    "dagrun schedule delay": ("airflow_dagrun_schedule_delay_seconds", {"dag_id": "statsd_probe"}),
    # Only for scheduled runs of a periodic timetable (hence @daily rather than @once).
    "first task scheduling delay": (
        "airflow_dagrun_first_task_scheduling_delay_seconds",
        {"dag_id": "statsd_probe_ok"},
    ),
    "dependency check": ("airflow_dagrun_dependency_check_seconds", {"dag_id": "statsd_probe"}),
    "ti success": ("airflow_ti_finish_total", {"dag_id": "statsd_probe", "task_id": "succeeds", "state": "success"}),
    "ti failed": ("airflow_ti_finish_total", {"dag_id": "statsd_probe", "task_id": "fails", "state": "failed"}),
    "ti start": ("airflow_ti_start_total", {"dag_id": "statsd_probe", "task_id": "fails"}),
    "ti failures": ("airflow_ti_failures_total", {"dag_id": "statsd_probe", "task_id": "fails"}),
    "ti successes": ("airflow_ti_successes_total", {"dag_id": "statsd_probe", "task_id": "succeeds"}),
    "task instances by state": ("airflow_ti_count", {"dag_id": "statsd_probe"}),
    "task duration": ("airflow_task_duration_seconds", {"dag_id": "statsd_probe", "task_id": "succeeds"}),
    "task scheduled duration": ("airflow_task_scheduled_duration_seconds", {"dag_id": "statsd_probe"}),
    "operator failures": ("airflow_operator_failures_total", {"dag_id": "statsd_probe", "task_id": "fails"}),
    "task instances created": ("airflow_task_instance_created_total", {"dag_id": "statsd_probe"}),
    "scheduler loop": ("airflow_scheduler_scheduler_loop_duration_seconds", {}),
    "critical section": ("airflow_scheduler_critical_section_duration_seconds", {}),
    "critical section query": ("airflow_scheduler_critical_section_query_duration_seconds", {}),
    "executor heartbeat": ("airflow_scheduler_executor_heartbeat_duration_seconds", {"executor": "LocalExecutor"}),
    "executable tasks": ("airflow_scheduler_tasks_executable", {}),
    "starving tasks": ("airflow_scheduler_tasks_starving", {}),
    "running dag runs": ("airflow_scheduler_dagruns_running", {}),
    "orphaned tasks cleared": ("airflow_scheduler_orphaned_tasks_cleared_total", {}),
    "orphaned tasks adopted": ("airflow_scheduler_orphaned_tasks_adopted_total", {}),
    "triggers running": ("airflow_triggers_running", {}),
    "triggerer capacity": ("airflow_triggerer_capacity_left", {}),
}
# Families Airflow 3.3 does not send in such a run (mapped all the same; checked in the unit test):
# - task.queued_duration: only TaskInstance.check_and_change_state_before_execution emits it, and Airflow 3's
#   task runner moves a task to running through the execution API, which does not call it.
# - task_instances_without_heartbeats_killed ("zombies"): needs a task whose runner dies mid-run.
# - scheduler.tasks.killed_externally, triggers.*/deadline_alerts.*/asset.* counters: need failures, deferrable
#   tasks, deadlines or assets this run does not have.

# Spans of the statsd_probe run that must arrive: Airflow's (scheduler, api-server, task runner) and ours.
EXPECTED_SPANS = (
    f"dag_run.{PROBE_DAG}",
    "task_run.succeeds",
    "task_run.fails",
    "worker.succeeds",
    "worker.fails",
    f"run {PROBE_DAG}",
    "succeeds try 1",
    "fails try 1",
)


# ---------------------------------------------------------------------------------------------- StatsD

MAPPINGS = load_mappings()


def mapped_lines(lines: list[str]) -> list[tuple[str, StatsdLine, Mapped]]:
    """Each parsable line with what statsd_exporter makes of it (unparsable ones fail their own test)."""
    result = []
    for raw in lines:
        with contextlib.suppress(ValueError):
            line = parse_line(raw)
            result.append((raw, line, map_line(MAPPINGS, line)))
    return result


def missing_families(lines: list[str]) -> list[str]:
    seen = [(m.name, m.labels) for _, _, m in mapped_lines(lines) if m.mapping is not None and not m.dropped]
    return [
        family
        for family, (name, labels) in EXPECTED_FAMILIES.items()
        if not any(n == name and labels.items() <= series_labels.items() for n, series_labels in seen)
    ]


def statsd_summary(lines: list[str]) -> str:
    names = sorted({raw.split(":", 1)[0] + " |" + raw.rsplit("|", 1)[-1] for raw in lines})
    return f"{len(lines)} lines, {len(names)} unique names with tags and type:\n" + "\n".join(names)


class UdpCapture:
    """Every datagram sent to a loopback UDP port, split into lines, read by a thread (bounded)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self.lines: list[str] = []
        self.datagrams = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="statsd-capture", daemon=True)

    def _read(self) -> None:
        while not self._stop.is_set() and self.datagrams < MAX_DATAGRAMS:
            try:
                data = self._sock.recv(65535)
            except TimeoutError:
                continue
            with self._lock:
                self.datagrams += 1
                self.lines.extend(line for line in data.decode("utf-8", "replace").split("\n") if line)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def __enter__(self) -> UdpCapture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


# ------------------------------------------------------------------------------------------------ OTLP


@dataclass(frozen=True)
class CapturedSpan:
    """One span as a collector received it; ids as lowercase hex, parent "" for a root span."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status: str  # UNSET, OK or ERROR
    status_message: str
    events: tuple[tuple[str, dict[str, Any]], ...]
    service_name: str

    def line(self) -> str:
        """One line per span for failure messages: enough to see the tree by eye."""
        parent = self.parent_span_id or "(root)"
        return f"{self.service_name:<12} {self.name:<24} trace {self.trace_id} span {self.span_id} parent {parent}"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(pairs: list[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def spans_of(request: ExportTraceServiceRequest) -> Iterator[CapturedSpan]:
    for resource_spans in request.resource_spans:
        service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield CapturedSpan(
                    name=span.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    attributes=_attributes(span.attributes),
                    # STATUS_CODE_ERROR -> ERROR
                    status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
                    status_message=span.status.message,
                    events=tuple((event.name, _attributes(event.attributes)) for event in span.events),
                    service_name=service,
                )


class OtlpCapture:
    """A loopback OTLP/HTTP (protobuf) trace receiver: records every span it is sent, up to MAX_SPANS."""

    def __init__(self) -> None:
        self.spans: list[CapturedSpan] = []
        self.rejected: list[str] = []  # requests it could not take, for the failure message
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="otlp-capture", daemon=True
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _record(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self._lock:
            for span in spans_of(request):
                if len(self.spans) >= MAX_SPANS:
                    break
                self.spans.append(span)

    def _reject(self, why: str) -> None:
        with self._lock:
            if len(self.rejected) < 100:
                self.rejected.append(why)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a client that stalls mid-request cannot hold a thread for long

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                if self.path != OTLP_TRACES_PATH or not 0 < length <= MAX_OTLP_BODY_BYTES:
                    capture._reject(f"POST {self.path} with {length} bytes")
                    self.send_error(404 if self.path != OTLP_TRACES_PATH else 413)
                    return
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                try:
                    capture._record(body)
                except Exception as error:  # an undecodable body must show up in the test, not kill the thread
                    capture._reject(f"undecodable body: {error!r}")
                    self.send_error(400)
                    return
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass  # one line per export on stderr would bury pytest's output

        return Handler

    def snapshot(self) -> list[CapturedSpan]:
        with self._lock:
            return list(self.spans)

    def __enter__(self) -> OtlpCapture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()


def missing_spans(spans: list[CapturedSpan]) -> list[str]:
    names = {span.name for span in spans if span.attributes.get("airflow.dag_id") == PROBE_DAG}
    return [name for name in EXPECTED_SPANS if name not in names]


def span_dump(spans: list[CapturedSpan]) -> str:
    return f"{len(spans)} spans:\n" + "\n".join(span.line() for span in spans)


# --------------------------------------------------------------------------------------------- Airflow


def airflow_env(home: Path, statsd_port: int, otlp_endpoint: str) -> dict[str, str]:
    """This process's environment without any Airflow or OTel setting (tests/conftest.py sets some), plus the
    run's own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "OTEL_"))}
    api_port = free_port()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            # Empty on purpose: the plugin loads through its `airflow.plugins` entry point (as installed), and a
            # plugins-folder copy would be imported twice in the task runner.
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            # The execution API URL derives from base_url: without the same port every task fails to start.
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Shared by every process: tokens between scheduler and api-server, connection encryption.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            # The settings exporters/statsd_mapping.yml expects. Legacy names stay on (Airflow's default) so
            # that the test also proves every one of them is dropped.
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd_port),
            "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
            "AIRFLOW__METRICS__LEGACY_NAMES_ON": "True",
            # Periodic metrics every 2 s instead of 30 s, so a short run sees them.
            "AIRFLOW__SCHEDULER__TI_METRICS_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__DAGRUN_METRICS_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "2",
            # Airflow's tracing, and through the same variables the plugin's exporter: OTLP/HTTP to the receiver
            # (Airflow speaks gRPC unless told otherwise; the plugin picks OTLP because an endpoint is set).
            "AIRFLOW__TRACES__OTEL_ON": "True",
            "OTEL_TRACES_EXPORTER": "otlp_proto_http",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            # Batches leave every 0.5 s instead of 5 s: the scheduler's spans are sent by the batch thread only.
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            # The exporter honours proxy variables; the receiver is on loopback.
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
        }
    )
    return env


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it after STOP_TIMEOUT."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def running_airflow(home: Path, env: dict[str, str]) -> Iterator[None]:
    """Airflow's components, each in its own process group; all stopped by PID on exit, even on failure."""
    processes: list[subprocess.Popen] = []
    try:
        for component in COMPONENTS:
            with open(home / f"{component}.log", "w") as log:
                processes.append(
                    subprocess.Popen(
                        [AIRFLOW, component],
                        env=env,
                        cwd=home,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield
    finally:
        threads = [threading.Thread(target=stop, args=(p,)) for p in processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Task runners forked by the executor live in its group, but make sure: anything still running with
        # this AIRFLOW_HOME in its environment is ours.
        for pid in processes_of(home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 1.0) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; whether it held. What is missing is for the
    tests to assert, each with its own message, so one missing span does not fail the StatsD tests too."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@dataclass(frozen=True)
class TelemetryRun:
    """What one private Airflow run sent, captured from `db migrate` until every component stopped."""

    home: Path
    statsd_lines: list[str] = field(repr=False)
    spans: list[CapturedSpan] = field(repr=False)
    rejected_otlp_requests: list[str]

    @property
    def metadata_db(self) -> Path:
        return self.home / "airflow.db"


def prepare_home(home: Path) -> None:
    (home / "dags").mkdir()
    (home / "plugins").mkdir()
    (home / "dags" / "statsd_probe.py").write_text(DAG_FILE)


def capture_airflow_telemetry(home: Path) -> TelemetryRun:
    """Run Airflow in `home` until every expected StatsD family and span arrived (or EVERYTHING_TIMEOUT), stop
    it, and return what was captured, including what components sent while shutting down."""
    prepare_home(home)
    started = time.monotonic()
    with UdpCapture() as statsd, OtlpCapture() as otlp:
        env = airflow_env(home, statsd.port, otlp.endpoint)
        migrate = subprocess.run(
            [AIRFLOW, "db", "migrate"], env=env, cwd=home, capture_output=True, text=True, timeout=MIGRATE_TIMEOUT
        )
        assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
        migrated = time.monotonic()
        with running_airflow(home, env):
            wait_until(
                lambda: not missing_families(statsd.snapshot()) and not missing_spans(otlp.snapshot()),
                timeout=EVERYTHING_TIMEOUT,
            )
            arrived = time.monotonic()
        # After the stop, so that what components send while shutting down is captured too.
        run = TelemetryRun(home, statsd.snapshot(), otlp.snapshot(), list(otlp.rejected))
    # pytest shows these when a test fails
    print(statsd_summary(run.statsd_lines))
    print("missing StatsD families:", missing_families(run.statsd_lines))
    print(span_dump(run.spans))
    print("missing spans:", missing_spans(run.spans), "rejected OTLP requests:", run.rejected_otlp_requests)
    print(
        f"db migrate {migrated - started:.0f} s, waited {arrived - migrated:.0f} s for every family and span, "
        f"stopped {time.monotonic() - arrived:.0f} s later"
    )
    return run
