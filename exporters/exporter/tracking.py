"""Turns the metadata DB into a stream of finished-work events, reading only new, active and recent rows.

Counters such as "runs completed" must never rescan history. The tracker follows DAG runs instead:
- runs created since the previous poll: `dag_run.id > last seen id` (primary key range);
- runs active now: `state IN ('queued', 'running')` (partial indexes idx_dag_run_queued_dags and
  idx_dag_run_running_dags);
- runs that were active at the previous poll and are not any more: primary-key lookups;
- runs whose task instances ran since the previous poll: `task_instance.last_heartbeat_at >= previous poll -
  HEARTBEAT_MARGIN` (a range on the ti_heartbeat index), then (dag_id, run_id) lookups on dag_run's unique
  key. Airflow 3 sets last_heartbeat_at when a try starts running and at each of its heartbeats, so the
  range holds the task instances running now and those started since the previous poll: it costs
  O(task instances that ran since the previous poll). It finds a finished run that was cleared and ran
  again entirely between two polls, which the other three miss.
Task instances are read only for those runs, through the ti_dag_run index (dag_id, run_id). A poll
costs O(new + active + just-finished + just-run work), whatever the history size.

Events are emitted once: a finished run when it leaves the active set, or when it is first seen finished
if it was created or ran since the previous poll; a finished task instance once per TI id (Airflow gives
every try a new id, so a retried or cleared task counts again); retries as increases of a task's
try_number. A finished run is remembered (its outcome, counted TI ids and tries) while the heartbeat
range can still reach it, so seeing it again counts nothing, and clearing it again counts only the new
work. At start, what is already finished is the baseline and counts nothing: a restart looks like an
ordinary counter reset.

Times come from the injected clock, as in the collectors. HEARTBEAT_MARGIN absorbs the skew between that
clock and the API servers' (which write last_heartbeat_at) and the delay before their writes commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from airflow_obs.exporter.database import airflow_table, utc_timestamp
from sqlalchemy import func, select, tuple_
from sqlalchemy.engine import Connection

ACTIVE_RUN_STATES = ("queued", "running")
FINISHED_RUN_STATES = ("success", "failed")
FINISHED_TI_STATES = ("success", "failed", "skipped", "upstream_failed")
# Waiting to run: a try the scheduler has already numbered.
SCHEDULED_TI_STATES = ("scheduled", "queued")
# Clock skew between the exporter and the API servers, plus commit delay; each poll reads this much more.
HEARTBEAT_MARGIN = timedelta(seconds=60)
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


@dataclass
class _SettledRun:
    """A finished run, kept while the heartbeat range can still find it."""

    run: _TrackedRun
    outcome: tuple[str, datetime | None]  # (state, end_date) as accounted
    settled_at: float


@dataclass
class _Plan:
    """How one run is accounted this poll: everything it did, or only what happened since `since`."""

    row: object
    tracked: _TrackedRun
    counts_past: bool
    since: float | None  # for a run first seen after the first poll; None counts nothing of its past


class FinishedWorkTracker:
    """Polls the DB and returns what finished since the previous poll. Not thread-safe: poll from one thread."""

    def __init__(self, clock: Callable[[], float] = time.time, heartbeat_margin: timedelta = HEARTBEAT_MARGIN) -> None:
        self._clock = clock
        self._margin = heartbeat_margin.total_seconds()
        self._last_run_id: int | None = None  # None until the first poll has set the baseline
        self._last_poll_at = 0.0
        self._tracked: dict[int, _TrackedRun] = {}  # runs active at the previous poll
        self._settled: dict[int, _SettledRun] = {}

    @property
    def tracked_runs(self) -> int:
        return len(self._tracked)

    def poll(self, connection: Connection) -> PollResult:
        now = self._clock()
        first_poll = self._last_run_id is None
        # Whatever started or ended from `since` on did so after the previous poll read the DB.
        since = (now if first_poll else self._last_poll_at) - self._margin
        # A run settled this long ago has no try the heartbeat range can reach (see _plan).
        self._settled = {pk: run for pk, run in self._settled.items() if run.settled_at >= since - self._margin}
        known, new_ids = self._runs(connection, since)

        result = PollResult()
        plans = [plan for row in known.values() if (plan := self._plan(row, new_ids, first_poll, since))]
        rows_by_run = self._task_instances(connection, [plan.row for plan in plans])
        tracked: dict[int, _TrackedRun] = {}
        for plan in plans:
            row = plan.row
            self._account_tasks(plan, rows_by_run.get((row.dag_id, row.run_id), []), result)
            if row.state in ACTIVE_RUN_STATES:
                tracked[row.id] = plan.tracked
                continue
            if row.state in FINISHED_RUN_STATES and (plan.counts_past or plan.since is not None):
                result.finished_runs.append(
                    FinishedRun(row.dag_id, row.state, row.run_type, row.run_after, row.start_date, row.end_date)
                )
            self._settled[row.id] = _SettledRun(plan.tracked, (row.state, row.end_date), now)
        self._tracked = tracked  # a tracked run missing from `known` was deleted from the DB
        if new_ids:
            self._last_run_id = max(self._last_run_id or 0, *new_ids)
        self._last_poll_at = now
        return result

    def _runs(self, connection: Connection, since: float) -> tuple[dict[int, object], set[int]]:
        """The runs to look at, by primary key, and which of them were created since the previous poll."""
        run = airflow_table(connection.engine, "dag_run")
        columns = (run.c.id, run.c.dag_id, run.c.run_id, run.c.state, run.c.run_type)
        columns += (run.c.run_after, run.c.start_date, run.c.end_date)
        if self._last_run_id is None:
            # The primary key's maximum: one index lookup. Older runs are the baseline.
            self._last_run_id = connection.execute(select(func.max(run.c.id))).scalar() or 0
        new = connection.execute(select(*columns).where(run.c.id > self._last_run_id)).all()
        active = connection.execute(select(*columns).where(run.c.state.in_(ACTIVE_RUN_STATES))).all()
        known = {row.id: row for row in (*new, *active)}
        left = [pk for pk in self._tracked if pk not in known]
        for chunk in _chunks(left):
            known.update({row.id: row for row in connection.execute(select(*columns).where(run.c.id.in_(chunk)))})
        seen = {(row.dag_id, row.run_id) for row in known.values()}
        ran = [key for key in self._runs_that_ran(connection, since) if key not in seen]
        for chunk in _chunks(ran):
            # dag_run_dag_id_run_id_key (dag_id, run_id) serves each pair.
            query = select(*columns).where(tuple_(run.c.dag_id, run.c.run_id).in_(chunk))
            known.update({row.id: row for row in connection.execute(query)})
        return known, {row.id for row in new}

    @staticmethod
    def _runs_that_ran(connection: Connection, since: float) -> list[tuple[str, str]]:
        """(dag_id, run_id) of the runs with a task instance that started or heartbeated from `since` on."""
        ti = airflow_table(connection.engine, "task_instance")
        # A range on ti_heartbeat: only the rows in the window are read. Deduplicated here, not with DISTINCT,
        # which makes SQLite's planner prefer walking all of ti_dag_run in (dag_id, run_id) order.
        query = select(ti.c.dag_id, ti.c.run_id).where(
            ti.c.last_heartbeat_at >= datetime.fromtimestamp(since, timezone.utc)
        )
        return list(dict.fromkeys((row.dag_id, row.run_id) for row in connection.execute(query)))

    def _plan(self, row, new_ids: set[int], first_poll: bool, since: float) -> _Plan | None:
        """How to account a run this poll, or None if it has nothing new to count."""
        pk = row.id
        finished = row.state not in ACTIVE_RUN_STATES
        if (tracked := self._tracked.get(pk)) is not None:
            return _Plan(row, tracked, counts_past=True, since=None)
        if (settled := self._settled.pop(pk, None)) is not None:
            if finished and settled.outcome == (row.state, row.end_date):
                self._settled[pk] = settled  # seen again through the heartbeat range: already accounted
                return None
            return _Plan(row, settled.run, counts_past=True, since=None)  # cleared since it was accounted
        fresh = _TrackedRun(row.dag_id, row.run_id)
        if first_poll:
            return _Plan(row, fresh, counts_past=False, since=None)  # the baseline
        if pk in new_ids:
            return _Plan(row, fresh, counts_past=True, since=None)
        if finished and row.end_date is not None and utc_timestamp(row.end_date) < since:
            # Finished before the previous poll, which saw it so; found only through a late heartbeat. Any
            # run settled after `since - margin` is still in _settled, so nothing counted is missed here.
            return None
        # Finished at the previous poll (it was not active then) and cleared since: what ran since counts.
        return _Plan(row, fresh, counts_past=False, since=since)

    @staticmethod
    def _task_instances(connection: Connection, runs: Iterable) -> dict[tuple[str, str], list]:
        ti = airflow_table(connection.engine, "task_instance")
        keys = [(row.dag_id, row.run_id) for row in runs]
        rows_by_run: dict[tuple[str, str], list] = {}
        for chunk in _chunks(keys):
            # ti_dag_run (dag_id, run_id) serves each pair.
            query = select(
                ti.c.dag_id, ti.c.run_id, ti.c.task_id, ti.c.map_index, ti.c.id, ti.c.state, ti.c.try_number
            ).add_columns(ti.c.duration, ti.c.end_date, ti.c.last_heartbeat_at)
            query = query.where(tuple_(ti.c.dag_id, ti.c.run_id).in_(chunk))
            for row in connection.execute(query):
                rows_by_run.setdefault((row.dag_id, row.run_id), []).append(row)
        return rows_by_run

    @staticmethod
    def _account_tasks(plan: _Plan, rows: list, result: PollResult) -> None:
        tracked = plan.tracked
        for row in rows:
            started = plan.since is not None and _at_or_after(row.last_heartbeat_at, plan.since)
            ended = plan.since is not None and _at_or_after(row.end_date, plan.since)
            key = (row.task_id, row.map_index)
            previous_try = tracked.tries.get(key)
            if previous_try is None:
                if plan.counts_past:
                    previous_try = 0
                elif started or (plan.since is not None and row.state in SCHEDULED_TI_STATES):
                    # Its try was numbered since the previous poll: one more try than then. Further tries in
                    # the same interval (a clear, then an automatic retry) are not visible without reading
                    # task_instance_history, so they go uncounted.
                    previous_try = row.try_number - 1
                else:
                    previous_try = row.try_number
            # The first try is not a retry; every later one (automatic retry or manual clear) is.
            extra_tries = row.try_number - max(previous_try, 1)
            if extra_tries > 0:
                result.retries.append(Retry(row.dag_id, row.task_id, extra_tries))
            tracked.tries[key] = max(previous_try, row.try_number)

            ti_id = str(row.id)
            if row.state in FINISHED_TI_STATES and ti_id not in tracked.counted_tis:
                tracked.counted_tis.add(ti_id)
                if plan.counts_past or started or ended:
                    result.finished_tasks.append(FinishedTask(row.dag_id, row.task_id, row.state, row.duration))


def _at_or_after(moment: datetime | None, since: float) -> bool:
    return moment is not None and utc_timestamp(moment) >= since


def _chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), BATCH_SIZE):
        yield items[start : start + BATCH_SIZE]
