"""What the running task is about: its date, and whether the `bad_data` fault switch is on for it."""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context

from dag_suite.faults import active_fault


def run_ds(context: dict[str, Any] | None = None) -> str:
    """The run's date (YYYY-MM-DD): the logical date's, or the run-after date's for runs without one."""
    context = context or get_current_context()
    if context.get("ds"):
        return context["ds"]
    return context["dag_run"].run_after.date().isoformat()


def bad_data_requested(context: dict[str, Any] | None = None) -> bool:
    return active_fault(context) == "bad_data"
