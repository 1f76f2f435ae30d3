"""The StatsD lines a real Airflow 3.3 sends, captured over UDP, all land where exporters/statsd_mapping.yml means.

One run: a private AIRFLOW_HOME on SQLite, the api-server (tasks reach the execution API through it), scheduler,
dag-processor and triggerer with StatsD and InfluxDB tags on, pointed at a UDP socket of this test. Two @daily
DAGs of our own (catchup off, so each gets one scheduled run at once): one with a task that succeeds and one that
fails, one with a single task that succeeds. The test waits until every expected family has arrived, stops
everything it started, then applies statsd_exporter's rules (tests/statsd_mapping_matcher.py) to every line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.conftest import free_port
from tests.integration.conftest import processes_of, wait_for
from tests.statsd_mapping_matcher import (
    Mapped,
    StatsdLine,
    is_legacy_name,
    left_to_catch_all,
    load_mappings,
    map_line,
    parse_line,
)

pytestmark = pytest.mark.integration

AIRFLOW = str(Path(sys.prefix) / "bin" / "airflow")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
MAX_DATAGRAMS = 100_000  # a run sends ~1,000; the bound only guards memory if something loops
ALL_FAMILIES_TIMEOUT = 150  # seconds after db migrate; ~30 s here
STOP_TIMEOUT = 20  # seconds between SIGTERM and SIGKILL (Airflow components stop in ~6 s)

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

# Families that must arrive, as (Prometheus name, labels that must be among the series' labels).
EXPECTED = {
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


def airflow_env(home: Path, statsd_port: int) -> dict[str, str]:
    """This process's environment without any Airflow setting (tests/conftest.py sets some), plus the run's own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    api_port = free_port()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
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
        for family, (name, labels) in EXPECTED.items()
        if not any(n == name and labels.items() <= series_labels.items() for n, series_labels in seen)
    ]


def summary(lines: list[str]) -> str:
    names = sorted({raw.split(":", 1)[0] + " |" + raw.rsplit("|", 1)[-1] for raw in lines})
    return f"{len(lines)} lines, {len(names)} unique names with tags and type:\n" + "\n".join(names)


@pytest.fixture(scope="module")
def captured_lines(tmp_path_factory) -> list[str]:
    """Every StatsD line of one Airflow run, from `db migrate` until all expected families arrived and
    every component stopped."""
    home = tmp_path_factory.mktemp("statsd-capture")
    (home / "dags").mkdir()
    (home / "plugins").mkdir()
    (home / "dags" / "statsd_probe.py").write_text(DAG_FILE)
    started = time.monotonic()
    with UdpCapture() as capture:
        env = airflow_env(home, capture.port)
        migrate = subprocess.run(
            [AIRFLOW, "db", "migrate"], env=env, cwd=home, capture_output=True, text=True, timeout=120
        )
        assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
        migrated = time.monotonic()
        try:
            with running_airflow(home, env):
                wait_for(
                    lambda: not missing_families(capture.snapshot()),
                    timeout=ALL_FAMILIES_TIMEOUT,
                    what="every expected StatsD family",
                    interval=1,
                )
                arrived = time.monotonic()
        finally:
            # After the stop, so that what components send while shutting down is checked too.
            lines = capture.snapshot()
            print(summary(lines))  # pytest shows it when the test fails
            print("missing:", missing_families(lines))
    print(
        f"db migrate {migrated - started:.0f} s, all families {arrived - migrated:.0f} s later, "
        f"stopped {time.monotonic() - arrived:.0f} s later"
    )
    return lines


def test_airflow_sends_every_expected_family(captured_lines) -> None:
    assert missing_families(captured_lines) == []


def test_every_line_is_one_statsd_exporter_can_parse(captured_lines) -> None:
    bad = []
    for raw in captured_lines:
        try:
            parse_line(raw)
        except ValueError as error:
            bad.append(str(error))
    assert bad == []


def test_every_line_lands_on_the_mapping_meant_for_it(captured_lines) -> None:
    """Legacy names (ids inside the name, per Airflow's registry) are dropped; every other line has its own
    mapping, except the names deliberately left to the catch-all (LEFT_TO_CATCH_ALL, with reasons)."""
    wrong = set()
    for _raw, line, result in mapped_lines(captured_lines):
        if is_legacy_name(line.name):
            if not result.dropped:
                wrong.add(f"legacy {line.name} ({line.metric_type}) is not dropped: {result.mapping}")
        elif result.mapping is None or result.dropped:
            wrong.add(f"{line.name} ({line.metric_type}) is {'dropped' if result.dropped else 'unmapped'}")
        elif result.mapping.catch_all and left_to_catch_all(line.name) is None:
            wrong.add(f"{line.name} ({line.metric_type}) only reaches the catch-all {result.name}")
    assert sorted(wrong) == []


def test_each_prometheus_metric_gets_one_type_and_one_label_set(captured_lines) -> None:
    """statsd_exporter: metrics with the same name must have the same label names (team_name only comes with
    multi-team setups, and is absent here)."""
    shapes: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
    for _raw, line, result in mapped_lines(captured_lines):
        if result.mapping is not None and not result.dropped and not result.mapping.catch_all:
            shapes.setdefault(result.name, set()).add((line.metric_type, tuple(sorted(result.labels))))
    assert {name: shape for name, shape in shapes.items() if len(shape) > 1} == {}


def test_no_label_is_an_unbounded_id(captured_lines) -> None:
    labels = {
        key for _raw, _line, result in mapped_lines(captured_lines) if not result.dropped for key in result.labels
    }
    assert labels.isdisjoint({"run_id", "job_id", "try_number", "map_index", "ti_id"}), labels


def test_dag_file_parse_duration_is_still_sent_in_seconds_as_milliseconds(captured_lines) -> None:
    """The mapping names it `_kiloseconds` because Airflow 3.3 sends seconds with the ms type. A tiny file parses
    in well under 40 s; a value of 40 or more means Airflow now sends milliseconds (apache/airflow PR 72553):
    rename the metric to airflow_dag_processing_last_duration_seconds and rescale its buckets."""
    values = [
        line.value
        for _raw, line, _result in mapped_lines(captured_lines)
        if line.name == "airflow.dag_processing.last_duration"
    ]
    assert values and max(values) < 40, values
