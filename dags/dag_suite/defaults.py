"""One factory for what every DAG of the suite shares: ownership, retries, timeouts, callbacks, fault switches.

A new DAG gets the observability plugin's callbacks and the suite's policies by calling `suite_dag_args`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from observability import callbacks

from dag_suite.faults import fault_params

# Teams that own DAGs; the team is a `team:<name>` tag, which the exporter exposes for alert routing.
TEAMS = ("data-platform", "analytics", "ml")


def team_tag(team: str) -> str:
    if team not in TEAMS:
        raise ValueError(f"team {team!r} is unknown: expected one of {', '.join(TEAMS)}")
    return f"team:{team}"


def suite_default_args(
    owner: str,
    *,
    retries: int = 2,
    retry_delay: timedelta = timedelta(seconds=20),
    max_retry_delay: timedelta = timedelta(minutes=5),
    execution_timeout: timedelta = timedelta(minutes=20),
) -> dict[str, Any]:
    """default_args for every task: retries with exponential backoff, a timeout, and the plugin's callbacks."""
    return {
        "owner": owner,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": max_retry_delay,
        "execution_timeout": execution_timeout,
        "on_failure_callback": callbacks.on_task_failure,
        "on_retry_callback": callbacks.on_task_retry,
        "on_success_callback": callbacks.on_task_success,
    }


def suite_dag_args(
    *,
    owner: str,
    team: str,
    tags: list[str],
    doc_md: str,
    dagrun_timeout: timedelta = timedelta(hours=2),
    params: dict[str, Any] | None = None,
    **default_args_overrides: Any,
) -> dict[str, Any]:
    """Keyword arguments for `DAG(...)`/`@dag(...)` shared by the suite; schedules stay in each DAG file."""
    return {
        "default_args": suite_default_args(owner, **default_args_overrides),
        "tags": sorted({*tags, team_tag(team)}),
        "doc_md": doc_md,
        "catchup": False,
        "max_active_runs": 1,
        "dagrun_timeout": dagrun_timeout,
        "on_failure_callback": callbacks.on_dag_run_failure,
        "on_success_callback": callbacks.on_dag_run_success,
        "params": {**fault_params(), **(params or {})},
    }
