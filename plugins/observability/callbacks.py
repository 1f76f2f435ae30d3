"""Callbacks a DAG may still carry from earlier versions of the toolkit: they page nobody, by design.

Paging moved to the plugin's listeners (`paging`), which see every DAG, every try and every process
where Airflow reports a state change, including failures no callback hears (a killed task process, a lost
heartbeat, "mark failed" in the UI). A callback that also paged would page twice for one failure, so these only
stay importable: a DAG file that names them keeps parsing, and nothing else happens.
"""

from __future__ import annotations

from typing import Any


def _nothing(context: dict[str, Any]) -> None:
    """The listeners page for this event; see the module docstring."""


on_task_failure = _nothing
on_task_retry = _nothing
on_task_success = _nothing
on_dag_run_failure = _nothing
on_dag_run_success = _nothing
