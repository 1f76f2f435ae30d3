"""Task and DAG-run callbacks every DAG of the suite carries (through dag_suite.defaults).

On-call semantics, delivered by the notifiers in `observability.notify.notifiers`:
- a task's final failure pages (Slack, email, webhook); a try that will be retried pages nobody, and
  sends an info message only when AIRFLOW_OBS_NOTIFY_ON_RETRY is set;
- a DAG run's failure is remembered; the DAG's next successful run sends one "recovered" message;
- each callback first redelivers what the spool holds (using at most half of its time budget).

They must never raise, nor add more than settings.notify_timeout_seconds to a task: a callback failing
would hide the failure it reports. Where they run in Airflow 3: task callbacks in the task's own process
(or the dag-processor, for a task that stopped heartbeating), DAG-run callbacks in the dag-processor.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from observability.notify.delivery import redeliver_spooled
from observability.notify.notifiers import (
    DagRunFailureNotifier,
    DagRunRecoveryNotifier,
    ObservabilityNotifier,
    TaskFailureNotifier,
    TaskRetryNotifier,
)
from observability.notify.redaction import short_error
from observability.settings import settings

log = logging.getLogger("airflow_obs.callbacks")

# Share of a callback's time budget that redelivering older messages may use; the new message gets the rest.
REDELIVERY_SHARE = 0.5


def _run(event: str, notifier: type[ObservabilityNotifier] | None, context: dict[str, Any]) -> None:
    started = time.monotonic()
    try:
        budget = settings().notify_timeout_seconds
        try:
            redeliver_spooled(settings=settings(), budget_seconds=budget * REDELIVERY_SHARE)
        except Exception as error:  # the spool is a best effort here; the new message still goes out
            log.warning("callback %s could not redeliver spooled notifications: %s", event, short_error(error))
        if notifier is not None:
            remaining = budget - (time.monotonic() - started)
            notifier(budget_seconds=max(0.0, remaining))(context)
    except Exception as error:  # never let telemetry fail the task it observes
        log.warning("callback %s failed: %s", event, short_error(error, limit=300))


def on_task_failure(context: dict[str, Any]) -> None:
    _run("task_failed", TaskFailureNotifier, context)


def on_task_retry(context: dict[str, Any]) -> None:
    _run("task_up_for_retry", TaskRetryNotifier, context)


def on_task_success(context: dict[str, Any]) -> None:
    _run("task_succeeded", None, context)


def on_dag_run_failure(context: dict[str, Any]) -> None:
    _run("dag_run_failed", DagRunFailureNotifier, context)


def on_dag_run_success(context: dict[str, Any]) -> None:
    _run("dag_run_succeeded", DagRunRecoveryNotifier, context)
