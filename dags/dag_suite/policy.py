"""The suite's DAG policy: what every DAG must carry to be observable and operable at 3 a.m.

Used by the DAG integrity tests; a team can also call it from a cluster policy (airflow_local_settings).
"""

from __future__ import annotations

from typing import Any

from dag_suite.defaults import TEAMS


def dag_violations(dag: Any) -> list[str]:
    """Every policy breach of `dag`, each naming the DAG (and task) it concerns; empty when compliant."""
    problems: list[str] = []

    def breach(message: str, task_id: str | None = None) -> None:
        where = f"{dag.dag_id}.{task_id}" if task_id else dag.dag_id
        problems.append(f"{where}: {message}")

    if not (dag.doc_md or "").strip():
        breach("doc_md is missing: say what the DAG does and what a failure means")
    teams = [tag.removeprefix("team:") for tag in dag.tags if tag.startswith("team:")]
    if len(teams) != 1 or teams[0] not in TEAMS:
        breach(f"needs exactly one team tag from {', '.join(f'team:{t}' for t in TEAMS)}, has {sorted(dag.tags)}")
    if len([tag for tag in dag.tags if not tag.startswith("team:")]) < 1:
        breach("needs at least one descriptive tag besides the team")
    if dag.dagrun_timeout is None:
        breach("dagrun_timeout is missing")
    if dag.timetable is None or type(dag.timetable).__name__ == "NullTimetable":
        breach("has no schedule: the suite's DAGs run on cron, Assets or a timetable")

    for task in dag.tasks:
        if task.owner in (None, "", "airflow"):
            breach(f"owner is {task.owner!r}: set a real owner", task.task_id)
        if not task.retries or task.retries < 1:
            breach(f"retries is {task.retries!r}: expected at least 1", task.task_id)
        if not task.retry_exponential_backoff:
            breach("retry_exponential_backoff is off", task.task_id)
        if task.max_retry_delay is None:
            breach("max_retry_delay is missing", task.task_id)
        if task.execution_timeout is None:
            breach("execution_timeout is missing: a hung task would hold its slot forever", task.task_id)
    return problems
