"""The listener hooks: Airflow's signatures, both kinds of task instance, one guard per sink; and the metrics sink."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.execution_time.task_runner import TaskInstanceState as WorkerState
from airflow.utils.state import TaskInstanceState
from airflow_obs.observability import listeners, logs, metrics, paging, tracing
from airflow_obs.observability.events import DagRunEvent, TaskEvent

from tests.conftest import REPO_ROOT
from tests.statsd_mapping_matcher import UNMAPPED_METRIC_PREFIX, airflow_metric_registry, load_mappings, map_line

START = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
TASK_HOOKS = (
    "on_task_instance_running",
    "on_task_instance_success",
    "on_task_instance_failed",
    "on_task_instance_skipped",
)
DAG_RUN_HOOKS = ("on_dag_run_running", "on_dag_run_success", "on_dag_run_failed")


def worker_ti(state: Any = WorkerState.RUNNING, **overrides: Any) -> SimpleNamespace:
    """Shaped like the task runner's RuntimeTaskInstance: its task and DAG attached, no queued_dttm."""
    dag = SimpleNamespace(tags={"etl", "team:data-platform"})
    task = SimpleNamespace(owner="data-eng", dag=dag, pool="default_pool", queue="default")
    values = {
        "dag_id": "etl_orders",
        "run_id": "scheduled__2026-11-20T03:00:00+00:00",
        "task_id": "load",
        "map_index": -1,
        "try_number": 1,
        "max_tries": 2,
        "state": state,
        "task": task,
        "hostname": "worker-1",
        "start_date": START,
        "end_date": START + timedelta(seconds=42),
    }
    return SimpleNamespace(**{**values, **overrides})


def api_ti(state: TaskInstanceState = TaskInstanceState.FAILED) -> SimpleNamespace:
    """Shaped like the api-server's ORM TaskInstance after "mark failed": no task, its DagModel row instead."""
    dag_model = SimpleNamespace(owners="analyst", tags=[SimpleNamespace(name="team:analytics")])
    return SimpleNamespace(
        dag_id="monitoring_daily_report",
        run_id="manual__2026-11-20",
        task_id="render",
        map_index=-1,
        try_number=1,
        max_tries=0,
        state=state,
        task=None,
        dag_model=dag_model,
        queued_dttm=START - timedelta(seconds=5),
        start_date=START,
        end_date=START + timedelta(seconds=3),
    )


def dag_run(state: str = "failed") -> SimpleNamespace:
    dag = SimpleNamespace(owner="data-eng", tags={"team:data-platform"})
    return SimpleNamespace(
        dag_id="etl_orders",
        run_id="scheduled__2026-11-20T03:00:00+00:00",
        state=state,
        run_type="scheduled",
        dag=dag,
        start_date=START,
        end_date=START + timedelta(minutes=5),
    )


@pytest.fixture
def sinks(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Every sink replaced by a recorder: name -> the events it received."""
    received: dict[str, list] = {"metrics": [], "logs": [], "paging": [], "traces": []}
    for name, module in (("metrics", metrics), ("logs", logs), ("paging", paging), ("traces", tracing)):
        monkeypatch.setattr(module, "record_task_event", received[name].append)
        monkeypatch.setattr(module, "record_dag_run_event", received[name].append)
    monkeypatch.setattr(listeners, "_reported", set())
    return received


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch):
    """The toolkit's JSON log lines (INFO and up) written while the test runs, parsed."""
    stream = io.StringIO()
    toolkit = logging.getLogger("observability")
    level = toolkit.level
    toolkit.setLevel(logging.INFO)
    logs.setup_logging("json", stream=stream)
    monkeypatch.setattr(logs._state, "task", {})
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logs.setup_logging("json")
    toolkit.setLevel(level)


# ---------------------------------------------------------------------------------------------- hooks


@pytest.mark.parametrize("manager", ["core", "task_runner"])
def test_every_hook_matches_airflows_hook_specification(manager: str) -> None:
    if manager == "core":
        from airflow._shared.listeners.listener import ListenerManager
        from airflow._shared.listeners.spec import lifecycle, taskinstance
        from airflow.listeners.spec import dagrun

        specs = (lifecycle, taskinstance, dagrun)
    else:
        from airflow.sdk._shared.listeners.listener import ListenerManager
        from airflow.sdk._shared.listeners.spec import lifecycle, taskinstance

        specs = (lifecycle, taskinstance)
    manager_ = ListenerManager()
    for spec in specs:
        manager_.add_hookspecs(spec)

    manager_.add_listener(listeners)  # pluggy rejects an implementation whose arguments differ from the spec

    hooks = TASK_HOOKS + (DAG_RUN_HOOKS if manager == "core" else ())
    for hook in hooks:
        caller = getattr(manager_.hook, hook)
        assert caller.spec is not None, hook
        assert [impl.plugin_name for impl in caller.get_hookimpls()] == ["airflow_obs.observability.listeners"], hook


def test_a_worker_try_goes_to_every_sink_running_then_success(sinks: dict[str, list]) -> None:
    listeners.on_task_instance_running(previous_state=WorkerState.QUEUED, task_instance=worker_ti())
    listeners.on_task_instance_success(previous_state=WorkerState.RUNNING, task_instance=worker_ti(WorkerState.SUCCESS))

    for received in sinks.values():
        assert [(event.task_id, event.state) for event in received] == [("load", "running"), ("load", "success")]
    event = sinks["metrics"][1]
    assert (event.owner, event.team, event.duration_seconds) == ("data-eng", "data-platform", 42.0)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (WorkerState.UP_FOR_RETRY, "up_for_retry"),  # the Task SDK's enum: str() is "TaskInstanceState.UP_FOR_RETRY"
        (TaskInstanceState.UP_FOR_RETRY, "up_for_retry"),  # the core's, in the scheduler
        ("up_for_retry", "up_for_retry"),
        (WorkerState.FAILED, "failed"),
        (None, "failed"),
    ],
)
def test_a_failed_try_is_up_for_retry_or_failed_as_the_task_instance_state_says(
    sinks: dict[str, list], state: Any, expected: str
) -> None:
    error = RuntimeError("boom")
    listeners.on_task_instance_failed(previous_state=WorkerState.RUNNING, task_instance=worker_ti(state), error=error)

    (event,) = sinks["traces"]
    assert event.state == expected
    assert event.error == "RuntimeError: boom"


def test_a_mark_failed_in_the_ui_reaches_the_sinks_with_the_owner_and_team_of_the_dag_model(
    sinks: dict[str, list],
) -> None:
    listeners.on_task_instance_failed(
        previous_state=None,
        task_instance=api_ti(),
        error="TaskInstance's state was manually set to `failed`.",
    )

    (event,) = sinks["logs"]
    assert (event.dag_id, event.task_id, event.state) == ("monitoring_daily_report", "render", "failed")
    assert (event.owner, event.team) == ("analyst", "analytics")
    assert event.error.startswith("TaskInstance's state was manually set")


def test_a_detached_dag_model_leaves_owner_and_team_unknown_instead_of_losing_the_event(
    sinks: dict[str, list],
) -> None:
    class Detached(SimpleNamespace):
        @property
        def dag_model(self) -> Any:
            raise RuntimeError("Instance <TaskInstance> is not bound to a Session")

    ti = Detached(**{k: v for k, v in vars(api_ti()).items() if k != "dag_model"})

    listeners.on_task_instance_skipped(previous_state=None, task_instance=ti)

    (event,) = sinks["metrics"]
    assert (event.state, event.owner, event.team) == ("skipped", "", "")


@pytest.mark.parametrize(
    ("hook", "state", "error"),
    [
        ("on_dag_run_running", "running", ""),
        ("on_dag_run_success", "success", ""),  # Airflow's msg "success" is no error
        ("on_dag_run_failed", "failed", "task_failure"),
    ],
)
def test_dag_run_hooks_reach_every_sink(sinks: dict[str, list], hook: str, state: str, error: str) -> None:
    getattr(listeners, hook)(dag_run=dag_run(state), msg=error or "success")

    for received in sinks.values():
        (event,) = received
        assert isinstance(event, DagRunEvent)
        assert (event.dag_id, event.state, event.error, event.team) == ("etl_orders", state, error, "data-platform")


def test_a_raising_sink_stops_neither_the_others_nor_the_task_and_is_logged_once_per_sink_and_error(
    sinks: dict[str, list], monkeypatch: pytest.MonkeyPatch, log_lines
) -> None:
    def broken(event: Any) -> None:
        raise ConnectionError("collector unreachable")

    monkeypatch.setattr(tracing, "record_task_event", broken)

    for _ in range(3):
        listeners.on_task_instance_running(previous_state=None, task_instance=worker_ti())
    monkeypatch.setattr(metrics, "record_task_event", lambda event: 1 / 0)
    listeners.on_task_instance_success(previous_state=None, task_instance=worker_ti(WorkerState.SUCCESS))

    assert len(sinks["logs"]) == 4
    warnings = [line for line in log_lines() if line["level"] == "WARNING"]
    assert [line["message"].split(" (")[0] for line in warnings] == [
        "observability traces sink failed",
        "observability metrics sink failed",
    ]
    assert warnings[0]["logger"] == "airflow_obs.observability.listeners"
    assert "ConnectionError: collector unreachable" in warnings[0]["exception"]


def test_a_tracing_module_that_cannot_be_imported_costs_the_traces_only(
    monkeypatch: pytest.MonkeyPatch, log_lines
) -> None:
    from airflow_obs import observability

    received: list[TaskEvent] = []
    monkeypatch.setattr(listeners, "_reported", set())
    monkeypatch.setattr(metrics, "record_task_event", received.append)
    monkeypatch.delattr(observability, "tracing")
    monkeypatch.setitem(sys.modules, "airflow_obs.observability.tracing", None)  # the next import raises ImportError

    listeners.on_task_instance_running(previous_state=None, task_instance=worker_ti())

    assert [event.state for event in received] == ["running"]
    messages = [line["message"] for line in log_lines()]
    assert "task try started" in messages  # the logs sink, its ids without trace ids
    assert any(m.startswith("observability traces sink failed (ModuleNotFoundError)") for m in messages), messages


def test_a_task_instance_the_events_cannot_read_is_reported_not_raised(sinks: dict[str, list], log_lines) -> None:
    listeners.on_task_instance_success(previous_state=None, task_instance=SimpleNamespace(task_id="no ids"))

    assert sinks == {"metrics": [], "logs": [], "paging": [], "traces": []}
    assert [line["message"].split(" (")[0] for line in log_lines()] == ["observability task event failed"]


# ---------------------------------------------------------------------------------------------- metrics


class RecordingStats:
    """Stands in for Airflow's Stats: (kind, name, value, tags) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, dict[str, str]]] = []

    def incr(self, stat: str, count: int = 1, rate: float = 1, *, tags: dict[str, str] | None = None) -> None:
        self.calls.append(("incr", stat, count, dict(tags or {})))

    def timing(self, stat: str, dt: float, *, tags: dict[str, str] | None = None) -> None:
        self.calls.append(("timing", stat, dt, dict(tags or {})))


@pytest.fixture
def stats(monkeypatch: pytest.MonkeyPatch) -> RecordingStats:
    recorder = RecordingStats()
    monkeypatch.setattr(metrics, "Stats", recorder)
    return recorder


def task_event(state: str, **overrides: Any) -> TaskEvent:
    return TaskEvent.from_task_instance(worker_ti(**overrides), state=state)


def test_a_try_that_ends_counts_its_outcome_and_times_its_run_with_bounded_tags(stats: RecordingStats) -> None:
    metrics.record_task_event(task_event("success"))

    tags = {"dag_id": "etl_orders", "task_id": "load", "owner": "data-eng", "team": "data-platform"}
    assert stats.calls == [
        ("incr", "obs.task.finished", 1, {**tags, "state": "success"}),
        ("timing", "obs.task.duration", 42000.0, {**tags, "state": "success"}),
    ]


def test_a_try_up_for_retry_also_counts_a_retry(stats: RecordingStats) -> None:
    metrics.record_task_event(task_event("up_for_retry"))

    assert [(kind, name, tags.get("state")) for kind, name, _, tags in stats.calls] == [
        ("incr", "obs.task.finished", "up_for_retry"),
        ("incr", "obs.task.retries", None),
        ("timing", "obs.task.duration", "up_for_retry"),
    ]


def test_a_started_try_counts_and_times_its_queue_only_when_the_instance_knows_when_it_was_queued(
    stats: RecordingStats,
) -> None:
    metrics.record_task_event(task_event("running"))  # a RuntimeTaskInstance has no queued_dttm
    metrics.record_task_event(TaskEvent.from_task_instance(api_ti(), state="running"))

    assert [(kind, name, value) for kind, name, value, _ in stats.calls] == [
        ("incr", "obs.task.started", 1),
        ("incr", "obs.task.started", 1),
        ("timing", "obs.task.queued_duration", 5000.0),
    ]


def test_dag_runs_count_starts_and_outcomes_and_time_the_finished_ones(stats: RecordingStats) -> None:
    metrics.record_dag_run_event(DagRunEvent.from_dag_run(dag_run("running")))
    metrics.record_dag_run_event(DagRunEvent.from_dag_run(dag_run("failed")))

    tags = {"dag_id": "etl_orders", "run_type": "scheduled", "owner": "data-eng", "team": "data-platform"}
    assert stats.calls == [
        ("incr", "obs.dag_run.started", 1, tags),
        ("incr", "obs.dag_run.finished", 1, {**tags, "state": "failed"}),
        ("timing", "obs.dag_run.duration", 300000.0, {**tags, "state": "failed"}),
    ]


def test_states_that_are_no_outcome_are_not_counted(stats: RecordingStats) -> None:
    metrics.record_task_event(task_event("deferred"))
    metrics.record_dag_run_event(DagRunEvent.from_dag_run(dag_run("queued")))

    assert stats.calls == []


def test_no_tag_carries_a_run_id_a_try_number_or_a_host(stats: RecordingStats) -> None:
    for state in ("running", "success", "up_for_retry", "failed", "skipped"):
        metrics.record_task_event(task_event(state))
    metrics.record_dag_run_event(DagRunEvent.from_dag_run(dag_run("success")))

    tag_names = {name for _, _, _, tags in stats.calls for name in tags}
    assert tag_names == {"dag_id", "task_id", "owner", "team", "state", "run_type"}
    assert all(
        "scheduled__" not in value and "worker-1" not in value for *_, tags in stats.calls for value in tags.values()
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("alice, bob", "alice_bob"), ("", "none"), ("team=x,y", "team_x_y"), ("Data Platform", "Data_Platform")],
)
def test_tag_values_keep_only_what_statsd_tags_can_carry(raw: str, expected: str) -> None:
    assert metrics.tag_value(raw) == expected


def test_every_metric_name_is_ours_and_none_is_airflows() -> None:
    airflow_names = {metric["name"] for metric in airflow_metric_registry()}

    for name in metrics.METRICS:
        assert name.startswith(f"{metrics.PREFIX}.")
        assert re.fullmatch(r"[a-z_.]+", name)
        assert name not in airflow_names


def test_our_statsd_lines_land_on_no_airflow_or_exporter_family() -> None:
    # statsd_exporter's rules as the stack applies them; until mappings exist they stay in the catch-all.
    from tests.statsd_mapping_matcher import parse_line

    mappings = load_mappings()
    exporter_source = "\n".join(p.read_text() for p in (REPO_ROOT / "exporters" / "exporter").rglob("*.py"))
    exporter_families = set(re.findall(r"\bairflow_[a-z_]+", exporter_source))

    for name, (kind, tags, _) in metrics.METRICS.items():
        suffix = "c" if kind == "counter" else "ms"
        line = f"airflow.{name}," + ",".join(f"{tag}=x" for tag in tags) + f":1|{suffix}"
        mapped = map_line(mappings, parse_line(line))
        assert mapped.name.startswith((UNMAPPED_METRIC_PREFIX, "airflow_obs_task_", "airflow_obs_dag_run_")), name
    assert not [family for family in exporter_families if family.startswith("airflow_obs_")]


def test_the_plugin_docs_list_every_metric_with_its_tags() -> None:
    doc = (Path(REPO_ROOT) / "docs" / "plugin.md").read_text()

    for name, (kind, tags, _) in metrics.METRICS.items():
        row = next((line for line in doc.splitlines() if f"`{name}`" in line), "")
        assert row, f"{name} missing from docs/plugin.md"
        assert kind in row
        assert all(f"`{tag}`" in row for tag in tags), (name, row)


def test_the_page_is_recorded_before_the_tries_span_is_emitted() -> None:
    # paging adds a "notification" event to the try's span, which the traces sink sends when the try ends.
    order = list(listeners._task_sinks())

    assert order.index("paging") < order.index("traces")
