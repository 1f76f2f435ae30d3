"""Demo fault switches: make a chosen task fail, run slow, hang or produce bad data, on demand. Off by default.

Two ways to switch one on, both clearly labelled:
- for one run: trigger the DAG with params `demo_fault_task` and `demo_fault_mode` (the "Trigger" form shows them);
- for scheduled runs: the Variable `demo_faults`, JSON `{"<dag_id>": {"<task_id>": "<mode>"}}`.
Delete the Variable (or set the mode to "none") to switch it off.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from airflow.sdk import Param, Variable, get_current_context

log = logging.getLogger(__name__)

FAULT_MODES = ("none", "fail", "slow", "hang", "bad_data")
FAULTS_VARIABLE = "demo_faults"
SLOW_SECONDS_VARIABLE = "demo_fault_slow_seconds"
DEFAULT_SLOW_SECONDS = 90.0

F = TypeVar("F", bound=Callable[..., Any])


class DemoFault(RuntimeError):
    """Raised by the `fail` fault switch; the message says how to switch it off."""


def fault_params() -> dict[str, Param]:
    return {
        "demo_fault_task": Param(
            "",
            type="string",
            title="Demo fault: task id",
            description="Task to break in this run (empty: none). For demos and alert tests.",
        ),
        "demo_fault_mode": Param(
            "none",
            enum=list(FAULT_MODES),
            title="Demo fault: mode",
            description="fail, slow, hang (until execution_timeout) or bad_data.",
        ),
    }


def _variable_faults() -> dict[str, dict[str, str]]:
    raw = Variable.get(FAULTS_VARIABLE, default=None)
    if not raw:
        return {}
    try:
        faults = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise ValueError(
            f'Variable {FAULTS_VARIABLE}={raw!r} is not JSON: expected {{"<dag_id>": {{"<task_id>": "<mode>"}}}}'
        ) from exc
    return faults if isinstance(faults, dict) else {}


def active_fault(context: dict[str, Any] | None = None) -> str:
    """The fault mode switched on for the current task: from this run's params first, then the Variable."""
    context = context or get_current_context()
    ti = context["ti"]
    params = context.get("params") or {}
    mode = "none"
    if params.get("demo_fault_task") == ti.task_id:
        mode = params.get("demo_fault_mode") or "none"
    else:
        mode = _variable_faults().get(ti.dag_id, {}).get(ti.task_id, "none")
    if mode not in FAULT_MODES:
        raise ValueError(f"demo fault mode {mode!r} for task {ti.task_id} is unknown: expected one of {FAULT_MODES}")
    return mode


def _slow_seconds() -> float:
    return float(Variable.get(SLOW_SECONDS_VARIABLE, default=str(DEFAULT_SLOW_SECONDS)))


def apply_fault(mode: str, task_id: str) -> None:
    """Act on `fail`, `slow` and `hang`; `bad_data` is up to the task, which asks `active_fault()`."""
    if mode == "fail":
        raise DemoFault(f"demo fault switch: task {task_id} was told to fail (unset {FAULTS_VARIABLE} or the param)")
    if mode == "slow":
        seconds = _slow_seconds()
        log.warning("demo fault switch: task %s sleeps %.0f s before working", task_id, seconds)
        time.sleep(seconds)
    elif mode == "hang":
        log.warning("demo fault switch: task %s hangs until its execution_timeout stops it", task_id)
        while True:  # bounded by the task's execution_timeout, which every suite task has
            time.sleep(5)


def fault_switch(func: F) -> F:
    """Decorate a task's callable so the fault switches can break it (apply before @task)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        context = get_current_context()
        apply_fault(active_fault(context), context["ti"].task_id)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
