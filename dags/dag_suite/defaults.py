"""One factory for what every DAG of the suite shares: ownership, retries, timeouts, fault switches.

A new DAG gets the suite's policies by calling `suite_dag_args`. Paging needs nothing here: the observability
plugin's listeners page for every DAG.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
    """default_args for every task: retries with exponential backoff and a timeout."""
    return {
        "owner": owner,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": max_retry_delay,
        "execution_timeout": execution_timeout,
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
        "params": {**fault_params(), **(params or {})},
    }
