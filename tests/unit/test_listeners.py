"""The listener hooks: Airflow's signatures, both kinds of task instance, one guard per sink."""

from __future__ import annotations

import io
import json
import logging
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.execution_time.task_runner import TaskInstanceState as WorkerState
from airflow.utils.state import TaskInstanceState
from airflow_obs.observability import listeners, logs, metrics, paging, tracing
from airflow_obs.observability.events import DagRunEvent, TaskEvent

from tests.unit.listener_shapes import api_ti, dag_run, worker_ti

TASK_HOOKS = (
    "on_task_instance_running",
    "on_task_instance_success",
    "on_task_instance_failed",
    "on_task_instance_skipped",
)
DAG_RUN_HOOKS = ("on_dag_run_running", "on_dag_run_success", "on_dag_run_failed")


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


def test_the_page_is_recorded_before_the_tries_span_is_emitted() -> None:
    # paging adds a "notification" event to the try's span, which the traces sink sends when the try ends.
    order = list(listeners._task_sinks())

    assert order.index("paging") < order.index("traces")
