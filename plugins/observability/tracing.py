"""Traces of DAG runs and task tries (being written for [4/7]; the listeners already call these two entry points)."""

from __future__ import annotations

from observability.events import DagRunEvent, TaskEvent


def record_task_event(event: TaskEvent) -> None:
    """Record a task try that reached a state (running, success, failed, up_for_retry, skipped)."""


def record_dag_run_event(event: DagRunEvent) -> None:
    """Record a DAG run that reached a state (running, success, failed)."""
