"""Airflow listener hooks: every task try and DAG run state change, handed to the metrics, logs and traces sinks.

Where they fire (Airflow 3.3):
- task hooks in the task runner, with a RuntimeTaskInstance (the worker side, and dag.test());
- task hooks in the api-server, with an ORM TaskInstance and previous_state None, when someone sets a state
  through the UI or REST API ("mark failed"); in the scheduler when it fails a try the runner could not report;
- DAG-run hooks in the scheduler, and in the api-server when a run's state is set by hand.

Telemetry never changes a task's outcome: each sink runs under its own guard, so one failing sink does not
stop the others, and its exception is logged once per sink and exception type (not once per event: a broken
sink would otherwise flood every task log).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from airflow.listeners import hookimpl
from airflow_obs.observability import logs, metrics, paging
from airflow_obs.observability.events import DagRunEvent, TaskEvent
from airflow_obs.observability.notify.outbox import OUTBOX

log = logging.getLogger(__name__)

_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


def _tracing() -> ModuleType:
    # Imported on first use, under the traces sink's guard: if tracing cannot even be imported, metrics
    # and logs go on and the plugin still loads.
    from airflow_obs.observability import tracing

    return tracing


def _task_sinks() -> dict[str, Callable[[TaskEvent], None]]:
    # Looked up on every event, so a sink function can be swapped (tests) or finished later.
    return {
        "metrics": metrics.record_task_event,
        "logs": logs.record_task_event,
        # Before traces: the page becomes an event of the try's span while that span is still open.
        "paging": paging.record_task_event,
        "traces": lambda event: _tracing().record_task_event(event),
    }


def _dag_run_sinks() -> dict[str, Callable[[DagRunEvent], None]]:
    return {
        "metrics": metrics.record_dag_run_event,
        "logs": logs.record_dag_run_event,
        "paging": paging.record_dag_run_event,
        "traces": lambda event: _tracing().record_dag_run_event(event),
    }


def _report(where: str, exc: BaseException) -> None:
    key = (where, type(exc).__name__)
    with _reported_lock:
        first = key not in _reported
        _reported.add(key)
    try:
        if first:
            log.warning(
                "observability %s failed (%s); telemetry goes on without it, and further %s errors from it "
                "are not logged again in this process",
                where,
                type(exc).__name__,
                type(exc).__name__,
                exc_info=exc,
            )
        else:
            log.debug("observability %s failed again (%s)", where, type(exc).__name__)
    except Exception:  # noqa: S110  (the log itself failing must not reach Airflow either)
        pass


def _fan_out(build: Callable[[], Any], sinks: Callable[[], dict[str, Callable[[Any], None]]], kind: str) -> None:
    try:
        event = build()
        targets = sinks()
    except Exception as exc:
        _report(f"{kind} event", exc)
        return
    for name, sink in targets.items():
        try:
            sink(event)
        except Exception as exc:
            _report(f"{name} sink", exc)


def _task_event(task_instance: Any, state: str, error: BaseException | str | None = None) -> None:
    _fan_out(lambda: TaskEvent.from_task_instance(task_instance, state=state, error=error), _task_sinks, "task")


def _dag_run_event(dag_run: Any, state: str, msg: str | None) -> None:
    # msg is Airflow's reason ("task_failure", "Dag Run's state was manually set to ..."): an error only on failure.
    error = msg if state == "failed" else None
    _fan_out(lambda: DagRunEvent.from_dag_run(dag_run, state=state, msg=error), _dag_run_sinks, "DAG run")


def failed_try_state(task_instance: Any) -> str:
    """up_for_retry when Airflow will retry the try, failed otherwise: on_task_instance_failed fires for both."""
    state = getattr(task_instance, "state", None)
    # The Task SDK's TaskInstanceState is a plain (str, Enum): str() gives "TaskInstanceState.UP_FOR_RETRY".
    return "up_for_retry" if getattr(state, "value", state) == "up_for_retry" else "failed"


def _reconcile_if_scheduler(component: Any) -> None:
    # on_starting fires while the Job is created, before its runner names it: so the check is made on each tick.
    job_type = getattr(component, "job_type", None)
    if job_type == "SchedulerJob":
        from airflow_obs.observability import reconciler
        from airflow_obs.observability.settings import settings

        reconciler.run_once(settings())
    elif job_type is not None:
        OUTBOX.stop()  # a triggerer or dag-processor: it reconciles nothing


@hookimpl
def on_starting(component: Any) -> None:
    """In the scheduler, the reconciler's periodic pass (resolve what recovered, redeliver the spool)."""
    if not hasattr(component, "job_type"):  # a task runner: it has no loop to reconcile in
        return
    try:
        from airflow_obs.observability.settings import settings

        OUTBOX.every(settings().reconcile_interval_seconds, lambda: _reconcile_if_scheduler(component))
    except Exception as exc:
        _report("reconciler start", exc)


@hookimpl
def before_stopping(component: Any) -> None:
    try:
        OUTBOX.stop()
        OUTBOX.drain(timeout=5.0)
    except Exception as exc:
        _report("outbox drain", exc)


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    _task_event(task_instance, "running")


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    _task_event(task_instance, "success")


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: BaseException | str | None) -> None:
    _task_event(task_instance, failed_try_state(task_instance), error)


@hookimpl
def on_task_instance_skipped(previous_state: Any, task_instance: Any) -> None:
    _task_event(task_instance, "skipped")


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    _dag_run_event(dag_run, "running", msg)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _dag_run_event(dag_run, "success", msg)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _dag_run_event(dag_run, "failed", msg)
