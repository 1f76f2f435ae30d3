"""What the metadata DB says across DAGs, for the console's top-level page: the DAGs whose latest run failed (with
the failed try to open), and how overdue each DAG's next run is. A fixed number of queries, whatever the number of
DAGs or runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow.models import DagModel, DagRun, TaskInstance
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class FailingDag:
    dag_id: str
    owners: str
    run_id: str
    ended: datetime | None
    task_id: str  # the run's first failed task ("" when no task failed: a timeout)
    try_number: int
    map_index: int


def failing_dags(session: Session, dag_ids: set[str]) -> list[FailingDag]:
    """The DAGs among `dag_ids` whose latest run failed, most recent failure first."""
    if not dag_ids:
        return []
    latest = (
        select(DagRun.dag_id, func.max(DagRun.run_after).label("run_after"))
        .where(DagRun.dag_id.in_(dag_ids))
        .group_by(DagRun.dag_id)
        .subquery()
    )
    runs = session.execute(
        select(DagRun.dag_id, DagRun.run_id, DagRun.end_date, DagModel.owners)
        .join(latest, (DagRun.dag_id == latest.c.dag_id) & (DagRun.run_after == latest.c.run_after))
        .join(DagModel, DagModel.dag_id == DagRun.dag_id)
        .where(DagRun.state == "failed")
    ).all()
    # Their failed task instances in one query; the first to end is the one that broke the run.
    first_failed: dict[tuple[str, str], Any] = {}
    if runs:
        tries = session.execute(
            select(
                TaskInstance.dag_id,
                TaskInstance.run_id,
                TaskInstance.task_id,
                TaskInstance.try_number,
                TaskInstance.map_index,
            )
            .where(tuple_(TaskInstance.dag_id, TaskInstance.run_id).in_([(r.dag_id, r.run_id) for r in runs]))
            .where(TaskInstance.state == "failed")
            .order_by(TaskInstance.end_date)
        )
        for ti in tries:
            first_failed.setdefault((ti.dag_id, ti.run_id), ti)
    failing = []
    for run in runs:
        task = first_failed.get((run.dag_id, run.run_id))
        failing.append(
            FailingDag(
                dag_id=run.dag_id,
                owners=run.owners or "",
                run_id=run.run_id,
                ended=run.end_date,
                task_id=task.task_id if task else "",
                try_number=int(task.try_number) if task else 0,
                map_index=int(task.map_index) if task else -1,
            )
        )
    return sorted(failing, key=lambda dag: dag.ended.timestamp() if dag.ended else 0.0, reverse=True)


def overdue_seconds(session: Session, dag_ids: set[str], now: datetime) -> dict[str, float]:
    """{dag_id: seconds its next run is past due} for the active, unpaused DAGs among `dag_ids` that are overdue."""
    if not dag_ids:
        return {}
    rows = session.execute(
        select(DagModel.dag_id, DagModel.next_dagrun_create_after).where(
            DagModel.dag_id.in_(dag_ids),
            DagModel.is_paused.is_(False),
            DagModel.is_stale.is_(False),
            DagModel.next_dagrun_create_after < now,
        )
    ).all()
    return {row.dag_id: (now - row.next_dagrun_create_after).total_seconds() for row in rows}
