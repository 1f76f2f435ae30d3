"""Turns the metadata DB into a stream of finished-work events, reading only new and active rows.

Counters such as "runs completed" must never rescan history. The tracker follows DAG runs instead:
- runs created since the previous poll: `dag_run.id > last seen id` (primary key range);
- runs active now: `state IN ('queued', 'running')` (partial indexes idx_dag_run_queued_dags and
  idx_dag_run_running_dags);
- runs that were active at the previous poll and are not any more: primary-key lookups.
Task instances are read only for those runs, through the ti_dag_run index (dag_id, run_id). A poll
costs O(new + active + just-finished work), whatever the history size.

Events are emitted once: a finished run when it leaves the active set (or is first seen already
finished, if it was created since the previous poll); a finished task instance once per TI id (Airflow
gives every try a new id, so a retried or cleared task counts again); retries as increases of a
task's try_number. At start, what is already finished is the baseline and counts nothing: a restart
looks like an ordinary counter reset.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, select, tuple_

from airflow_exporter.database import airflow_table

ACTIVE_RUN_STATES = ("queued", "running")
FINISHED_RUN_STATES = ("success", "failed")
FINISHED_TI_STATES = ("success", "failed", "skipped", "upstream_failed")
# Keeps each IN (...) list well under SQLite's and PostgreSQL's parameter limits.
BATCH_SIZE = 500


@dataclass(frozen=True)
class FinishedRun:
    dag_id: str
    state: str
    run_type: str
    run_after: datetime | None
    start_date: datetime | None
    end_date: datetime | None

    @property
    def duration_seconds(self) -> float | None:
        if self.start_date is None or self.end_date is None:
            return None
        return max(0.0, (self.end_date - self.start_date).total_seconds())

    @property
    def schedule_delay_seconds(self) -> float | None:
        """Start minus the time the timetable asked for; only meaningful for scheduled runs."""
        if self.run_type != "scheduled" or self.run_after is None or self.start_date is None:
            return None
        return max(0.0, (self.start_date - self.run_after).total_seconds())


@dataclass(frozen=True)
class FinishedTask:
    dag_id: str
    task_id: str
    state: str
    duration_seconds: float | None


@dataclass(frozen=True)
class Retry:
    dag_id: str
    task_id: str
    tries: int


@dataclass
class PollResult:
    finished_runs: list[FinishedRun] = field(default_factory=list)
    finished_tasks: list[FinishedTask] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)


@dataclass
class _TrackedRun:
    dag_id: str
    run_id: str
    # TI ids already counted as finished, and the last try_number seen per (task_id, map_index).
    counted_tis: set[str] = field(default_factory=set)
    tries: dict[tuple[str, int], int] = field(default_factory=dict)


class FinishedWorkTracker:
    """Polls the DB and returns what finished since the previous poll. Not thread-safe: poll from one thread."""

    def __init__(self) -> None:
        self._last_run_id: int | None = None  # None until the first poll has set the baseline
        self._tracked: dict[int, _TrackedRun] = {}

    @property
    def tracked_runs(self) -> int:
        return len(self._tracked)

    def poll(self, connection: Connection) -> PollResult:
        run = airflow_table(connection.engine, "dag_run")
        columns = (run.c.id, run.c.dag_id, run.c.run_id, run.c.state, run.c.run_type)
        columns += (run.c.run_after, run.c.start_date, run.c.end_date)
        first_poll = self._last_run_id is None
        if first_poll:
            # The primary key's maximum: one index lookup. Older runs are the baseline.
            self._last_run_id = connection.execute(select(func.max(run.c.id))).scalar() or 0
        new = connection.execute(select(*columns).where(run.c.id > self._last_run_id)).all()
        active = connection.execute(select(*columns).where(run.c.state.in_(ACTIVE_RUN_STATES))).all()
        known = {row.id: row for row in (*new, *active)}
        left = [run_id for run_id in self._tracked if run_id not in known]
        for chunk in _chunks(left):
            known.update({row.id: row for row in connection.execute(select(*columns).where(run.c.id.in_(chunk)))})

        result = PollResult()
        new_ids = {row.id for row in new}
        rows_by_run = self._task_instances(connection, known.values())
        for run_id, row in known.items():
            tracked = self._tracked.get(run_id)
            if tracked is None:
                tracked = self._tracked[run_id] = _TrackedRun(row.dag_id, row.run_id)
                # A run created since the previous poll counts everything it did; any other run seen for the
                # first time (at start, or cleared back to life) has its past as the baseline.
                counts_past = run_id in new_ids and not first_poll
            else:
                counts_past = True
            self._account_tasks(tracked, rows_by_run.get((row.dag_id, row.run_id), []), counts_past, result)
            if row.state not in ACTIVE_RUN_STATES:
                if row.state in FINISHED_RUN_STATES and counts_past:
                    result.finished_runs.append(
                        FinishedRun(row.dag_id, row.state, row.run_type, row.run_after, row.start_date, row.end_date)
                    )
                del self._tracked[run_id]  # finished (or deleted): its last state has been accounted
        for run_id in set(self._tracked) - set(known):
            del self._tracked[run_id]  # the run was deleted from the DB
        if new:
            self._last_run_id = max(self._last_run_id, *new_ids)
        return result

    @staticmethod
    def _task_instances(connection: Connection, runs: Iterable) -> dict[tuple[str, str], list]:
        ti = airflow_table(connection.engine, "task_instance")
        keys = [(row.dag_id, row.run_id) for row in runs]
        rows_by_run: dict[tuple[str, str], list] = {}
        for chunk in _chunks(keys):
            # ti_dag_run (dag_id, run_id) serves each pair.
            query = select(
                ti.c.dag_id, ti.c.run_id, ti.c.task_id, ti.c.map_index, ti.c.id, ti.c.state, ti.c.try_number
            ).add_columns(ti.c.duration)
            query = query.where(tuple_(ti.c.dag_id, ti.c.run_id).in_(chunk))
            for row in connection.execute(query):
                rows_by_run.setdefault((row.dag_id, row.run_id), []).append(row)
        return rows_by_run

    @staticmethod
    def _account_tasks(tracked: _TrackedRun, rows: list, counts_past: bool, result: PollResult) -> None:
        for row in rows:
            key = (row.task_id, row.map_index)
            previous_try = tracked.tries.get(key)
            if previous_try is None:
                previous_try = 0 if counts_past else row.try_number
            # The first try is not a retry; every later one (automatic retry or manual clear) is.
            extra_tries = row.try_number - max(previous_try, 1)
            if extra_tries > 0:
                result.retries.append(Retry(row.dag_id, row.task_id, extra_tries))
            tracked.tries[key] = max(previous_try, row.try_number)

            ti_id = str(row.id)
            if row.state in FINISHED_TI_STATES and ti_id not in tracked.counted_tis:
                tracked.counted_tis.add(ti_id)
                if counts_past:
                    result.finished_tasks.append(FinishedTask(row.dag_id, row.task_id, row.state, row.duration))


def _chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), BATCH_SIZE):
        yield items[start : start + BATCH_SIZE]
