"""Task and DAG-run callbacks every DAG of the suite carries (through dag_suite.defaults).

Until [4/7] fills them with notifications, they only log, so the hook points exist and are tested.
They must never raise: a callback failing would hide the failure it reports.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("airflow_obs.callbacks")


def _describe(context: dict[str, Any]) -> str:
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    return (
        f"dag_id={getattr(ti, 'dag_id', None) or getattr(dag_run, 'dag_id', '?')} "
        f"task_id={getattr(ti, 'task_id', '-')} run_id={getattr(dag_run, 'run_id', '?')} "
        f"try={getattr(ti, 'try_number', '-')}"
    )


def _safe_log(event: str, context: dict[str, Any]) -> None:
    try:
        log.info("%s %s", event, _describe(context))
    except Exception:  # never let telemetry fail the task it observes
        log.debug("callback %s could not describe its context", event, exc_info=True)


def on_task_failure(context: dict[str, Any]) -> None:
    _safe_log("task_failed", context)


def on_task_retry(context: dict[str, Any]) -> None:
    _safe_log("task_up_for_retry", context)


def on_task_success(context: dict[str, Any]) -> None:
    _safe_log("task_succeeded", context)


def on_dag_run_failure(context: dict[str, Any]) -> None:
    _safe_log("dag_run_failed", context)


def on_dag_run_success(context: dict[str, Any]) -> None:
    _safe_log("dag_run_succeeded", context)
