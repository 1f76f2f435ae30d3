"""What the metadata DB says about one DAG, for its console page: recent runs, trouble by task, freshness.

Bounded reads: the last RECENT_RUNS runs, and task instances of those runs only, so the page costs the same on a
DAG with years of history as on a new one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

from airflow.models import DagModel, DagRun, TaskInstance
from airflow.models.taskinstancehistory import TaskInstanceHistory
from sqlalchemy import func, select
from sqlalchemy.orm import Session

RECENT_RUNS = 30


@dataclass(frozen=True)
class RunFacts:
    run_id: str
    state: str
    run_type: str
    run_after: datetime | None
    start_date: datetime | None
    end_date: datetime | None

    @property
    def duration_seconds(self) -> float | None:
        if self.start_date is None:
            return None
        end = self.end_date or datetime.now(timezone.utc)
        return max(0.0, (end - self.start_date).total_seconds())


@dataclass(frozen=True)
class TaskTrouble:
    task_id: str
    failed: int  # task instances that ended failed, in the recent runs
    retries: int  # tries that were retried (each earlier try of an instance)
    latest_failed_run_id: str
    latest_failed_try: int
    latest_failed_map_index: int


@dataclass(frozen=True)
class Freshness:
    paused: bool
    schedule: str
    next_run_due: datetime | None  # when the scheduler should create the next run
    last_run_end: datetime | None

    def overdue_seconds(self, now: datetime) -> float:
        """How long past due the next run is (0 when not due yet, paused, or not scheduled)."""
        if self.paused or self.next_run_due is None:
            return 0.0
        return max(0.0, (now - self.next_run_due).total_seconds())


def recent_runs(session: Session, dag_id: str, limit: int = RECENT_RUNS) -> list[RunFacts]:
    """The DAG's latest runs, newest first (the order of the UI's run list)."""
    query = (
        select(DagRun.run_id, DagRun.state, DagRun.run_type, DagRun.run_after, DagRun.start_date, DagRun.end_date)
        .where(DagRun.dag_id == dag_id)
        .order_by(DagRun.run_after.desc(), DagRun.id.desc())
        .limit(limit)
    )
    return [
        RunFacts(row.run_id, str(row.state or ""), str(row.run_type or ""), *row[3:]) for row in session.execute(query)
    ]


def task_trouble(session: Session, dag_id: str, run_ids: list[str]) -> list[TaskTrouble]:
    """Failures and retries by task over the given runs, the most troubled first; tasks with neither are left out."""
    if not run_ids:
        return []
    in_runs = (TaskInstance.dag_id == dag_id) & TaskInstance.run_id.in_(run_ids)
    failed_rows = session.execute(
        select(TaskInstance.task_id, TaskInstance.run_id, TaskInstance.try_number, TaskInstance.map_index)
        .where(in_runs, TaskInstance.state == "failed")
        .order_by(TaskInstance.end_date.desc())
    ).all()
    retried = dict(
        session.execute(
            select(TaskInstanceHistory.task_id, func.count())
            .where(TaskInstanceHistory.dag_id == dag_id, TaskInstanceHistory.run_id.in_(run_ids))
            .group_by(TaskInstanceHistory.task_id)
        ).all()
    )
    failed = Counter(row.task_id for row in failed_rows)
    latest_failure = {}
    for row in failed_rows:  # newest first: the first row of a task is its latest failure
        latest_failure.setdefault(row.task_id, row)
    trouble = []
    for task_id in set(failed) | set(retried):
        latest = latest_failure.get(task_id)
        trouble.append(
            TaskTrouble(
                task_id=task_id,
                failed=failed[task_id],
                retries=int(retried.get(task_id, 0)),
                latest_failed_run_id=latest.run_id if latest else "",
                latest_failed_try=int(latest.try_number) if latest else 0,
                latest_failed_map_index=int(latest.map_index) if latest else -1,
            )
        )
    return sorted(trouble, key=lambda t: (-t.failed, -t.retries, t.task_id))


def freshness(session: Session, dag_id: str, runs: list[RunFacts]) -> Freshness | None:
    """None for a DAG the DB does not know."""
    dag = session.get(DagModel, dag_id)
    if dag is None:
        return None
    ended = [run.end_date for run in runs if run.end_date is not None]
    return Freshness(
        paused=bool(dag.is_paused),
        schedule=dag.timetable_description or dag.timetable_summary or "",
        next_run_due=dag.next_dagrun_create_after,
        last_run_end=max(ended) if ended else None,
    )
