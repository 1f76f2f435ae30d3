"""Airflow notifiers for on-call semantics; usable as callbacks on any DAG (the suite's come via callbacks.py).

    TaskFailureNotifier()      on_failure_callback: a task failed for good (its last try): page
    TaskRetryNotifier()        on_retry_callback: a try failed and will be retried: info, if notify_on_retry
    DagRunFailureNotifier()    DAG on_failure_callback: remember the failure; page only if no task did
                               (the run timed out or deadlocked)
    DagRunRecoveryNotifier()   DAG on_success_callback: "recovered", once, if the last run had failed

None of them raises or takes longer than `budget_seconds` (default: settings.notify_timeout_seconds):
a notifier failing would hide, or even turn into, the failure it reports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from airflow.sdk import BaseNotifier

from observability.events import DagRunEvent, TaskEvent
from observability.notify import messages
from observability.notify.delivery import Outcome, deliver
from observability.notify.redaction import redact, short_error
from observability.notify.retries import Policy
from observability.notify.sinks import prepare_sinks
from observability.notify.spool import Spool
from observability.notify.state import DagFailures, state_dir
from observability.settings import PluginSettings, settings

log = logging.getLogger("airflow_obs.notify")


def send(
    current: PluginSettings, build: Callable[[tuple[str, ...]], messages.Notification], deadline: float
) -> list[Outcome]:
    """Build a notification (given the secrets it must not show) and deliver it to every enabled sink."""
    sinks = prepare_sinks(current)
    if not sinks.names:
        return []
    note = build(sinks.secrets)
    return deliver(
        sinks.envelopes(note, current),
        sinks.senders,
        spool=Spool(current.spool_path),
        policy=Policy.from_settings(current),
        deadline=deadline,
        unavailable=sinks.unavailable,
    )


def _task_instance(context: dict[str, Any]) -> Any:
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        raise ValueError("the callback context has no task instance")
    return ti


def _dag_run_event(context: dict[str, Any], state: str) -> DagRunEvent:
    """From a DAG callback's context: the full one, or the minimal {dag, run_id, reason} of a run whose
    last task instance is unknown."""
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    run = SimpleNamespace(
        dag_id=getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", ""),
        run_id=getattr(dag_run, "run_id", None) or context.get("run_id", ""),
        dag=dag,
        run_type=getattr(dag_run, "run_type", ""),
        start_date=getattr(dag_run, "start_date", None),
        end_date=getattr(dag_run, "end_date", None),
    )
    if not run.dag_id or not run.run_id:
        raise ValueError("the callback context names no DAG run")
    return DagRunEvent.from_dag_run(run, state=state, msg=context.get("reason"))


class ObservabilityNotifier(BaseNotifier):
    """The shared frame: a time budget, and no exception ever reaching Airflow (logged once, redacted)."""

    def __init__(self, *, budget_seconds: float | None = None) -> None:
        super().__init__()
        self.budget_seconds = budget_seconds

    def deadline(self, current: PluginSettings) -> float:
        budget = current.notify_timeout_seconds if self.budget_seconds is None else self.budget_seconds
        return time.monotonic() + max(0.0, budget)

    def __call__(self, *args: Any) -> None:
        # BaseNotifier.__call__ renders templates (we have none) and re-raises: ours must not.
        try:
            self.notify(args[0] if args else {})
        except Exception as error:
            log.warning("%s could not notify: %s", type(self).__name__, short_error(error, limit=300))


class TaskFailureNotifier(ObservabilityNotifier):
    """Pages on a task's final failure: DAG, task, run, try, owner, redacted error, log/dashboard/trace/runbook."""

    kind = messages.TASK_FAILED
    state = "failed"

    def notify(self, context: dict[str, Any]) -> None:
        current = settings()
        deadline = self.deadline(current)
        ti = _task_instance(context)
        error = context.get("exception")

        def build(secrets: tuple[str, ...]) -> messages.Notification:
            event = TaskEvent.from_task_instance(ti, state=self.state, error=short_error(error, secrets) or None)
            trace_id = messages.trace_id_for(event.dag_id, event.run_id)
            return messages.task_notification(current, event, self.kind, trace_id)

        send(current, build, deadline)


class TaskRetryNotifier(TaskFailureNotifier):
    """An info message for a failed try that will be retried; sent only when notify_on_retry is set."""

    kind = messages.TASK_RETRY
    state = "up_for_retry"

    def notify(self, context: dict[str, Any]) -> None:
        if settings().notify_on_retry:
            super().notify(context)


class DagRunFailureNotifier(ObservabilityNotifier):
    """Remembers that the DAG's latest run failed, for the recovery message, and pages for the run itself when no
    task failed for good: a run that timed out or deadlocked would otherwise fail silently."""

    def notify(self, context: dict[str, Any]) -> None:
        current = settings()
        deadline = self.deadline(current)
        event = _dag_run_event(context, "failed")
        DagFailures(state_dir(current)).remember(event.dag_id, event.run_id)
        reason = context.get("reason")
        if reason == messages.TASK_FAILURE_REASON:
            return
        why = messages.run_failure_reason(reason, getattr(context.get("dag"), "dagrun_timeout", None))

        def build(secrets: tuple[str, ...]) -> messages.Notification:
            trace_id = messages.trace_id_for(event.dag_id, event.run_id)
            return messages.run_failure_notification(current, event, redact(why, secrets), trace_id)

        send(current, build, deadline)


class DagRunRecoveryNotifier(ObservabilityNotifier):
    """One "recovered" message when a DAG whose last run failed succeeds again."""

    def notify(self, context: dict[str, Any]) -> None:
        current = settings()
        deadline = self.deadline(current)
        event = _dag_run_event(context, "success")
        failure = DagFailures(state_dir(current)).take(event.dag_id)
        if failure is None:
            return

        def build(secrets: tuple[str, ...]) -> messages.Notification:
            trace_id = messages.trace_id_for(event.dag_id, event.run_id)
            failed_run = redact(str(failure.get("run_id") or ""), secrets)
            return messages.recovery_notification(current, event, failed_run, trace_id)

        send(current, build, deadline)
