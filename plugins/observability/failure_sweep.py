"""Final failures that no listener heard, found by the scheduler from Airflow's own audit log.

A try can fail for good without any listener firing: when its process is SIGKILLed (an OOM kill) early, the
task runner never gets to report, and its supervisor reports the state `failed` through the execution API, which
calls no listener (nor any callback). Airflow does write one row to its `log` table for every state the execution
API or the scheduler sets (`event = 'failed'`, with the try's dag_id, task_id, run_id, map_index and try_number).

The scheduler's own listener hears a try it fails for a runner that never reported (a process killed later in its
run, a lost heartbeat), but leaves it to the sweep too (paging.py): both kinds come from one cause, such as an OOM
kill of a worker's tasks, and are paged together.

Each reconciler pass reads the rows added since the previous pass (a range on the table's primary key: cost
O(new rows), capped at MAX_ROWS). Once they are GRACE old (the task runner's own page, with the error, lands
first) and no newer failure came in the last GRACE (for up to MAX_HOLD), it pages each try whose task instance is
still failed on that try and that no page covers yet: none of the plugin's alerts in Alertmanager names that run
and try, and no direct page was sent for it. A try that is up for retry, was cleared or succeeded since, pages
nobody. At start the newest row is the baseline: history never pages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from airflow_obs.observability.events import TaskEvent
from airflow_obs.observability.notify import alerts
from airflow_obs.observability.notify.state import PagedTries

log = logging.getLogger("airflow_obs.notify")

GRACE = timedelta(seconds=5)
# Tries one cause kills (an OOM kill, a lost worker) fail over a few seconds: while more keep failing, the sweep
# waits, up to this long, so they go to Alertmanager in one post and arrive as one notification.
MAX_HOLD = timedelta(seconds=30)
MAX_ROWS = 500
UNREPORTED_ERROR = (
    "The try failed without reporting an error of its own: its process was killed (out of memory, a SIGKILL) "
    "or it could not report. The task log says how it ended."
)


# What the scheduler says when it fails a try the runner never reported (Airflow's "state mismatch" message).
EXECUTOR_MISMATCH = "reported that the task instance"


def cause_of(error: str) -> str:
    """A fixed cause for a try that ended without reporting an error, whether the sweep found it or the scheduler's
    listener did (with a message naming the executor, the run and the TI): "" for any other error."""
    if error == UNREPORTED_ERROR or (error.startswith("Executor") and EXECUTOR_MISMATCH in error):
        return UNREPORTED_ERROR
    return ""


def _burst_still_going(rows: list, now: datetime) -> bool:
    """Failures keep arriving (the newest is younger than GRACE) and none has waited MAX_HOLD yet."""
    times = [row.dttm for row in rows if row.dttm is not None]
    return bool(times) and max(times) > now - GRACE and min(times) > now - MAX_HOLD


def identity(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """What names one try's page, here and in the listeners (paging.py)."""
    return f"task\x1f{dag_id}\x1f{run_id}\x1f{task_id}\x1f{map_index}\x1f{try_number}"


def _covered(firing: Iterable[alerts.Alert]) -> set[tuple[str, str, str, str]]:
    """(dag_id, task_id, run_id, try_number) of every task alert Alertmanager holds."""
    return {
        (a.labels["dag_id"], a.labels.get("task_id", ""), a.annotations.get(alerts.RUN_ID, ""),
         a.annotations.get("try_number", ""))
        for a in firing
        if a.name == alerts.TASK_FAILED
    }  # fmt: skip


class FailureSweep:
    """Remembers how far it has read Airflow's log table; one per scheduler process."""

    def __init__(self) -> None:
        self.last_id: int | None = None

    def unreported(
        self, session, firing: Iterable[alerts.Alert] | None, paged: PagedTries, now: datetime
    ) -> list[TaskEvent]:
        """Tries that failed for good since the previous pass and that no page covers (`firing` None: no router)."""
        from airflow.models.log import Log
        from airflow.models.taskinstance import TaskInstance
        from sqlalchemy import func, select

        if self.last_id is None:
            self.last_id = session.scalar(select(func.max(Log.id))) or 0
            return []
        rows = session.execute(
            select(Log.id, Log.dttm, Log.dag_id, Log.task_id, Log.run_id, Log.map_index, Log.try_number)
            .where(Log.id > self.last_id, Log.event == "failed")
            .order_by(Log.id)
            .limit(MAX_ROWS)
        ).all()
        if _burst_still_going(rows, now):
            return []  # the whole burst is paged together at a later pass: one notification for one cause
        covered = _covered(firing or ())
        found: list[TaskEvent] = []
        for row in rows:
            if row.dttm is not None and row.dttm > now - GRACE:
                break  # too fresh: the try's own page may still be on its way; the next pass reads it
            self.last_id = row.id
            if not (row.dag_id and row.task_id and row.run_id and row.try_number):
                continue
            map_index = row.map_index if row.map_index is not None else -1
            if (row.dag_id, row.task_id, row.run_id, str(row.try_number)) in covered:
                continue
            if paged.paged(identity(row.dag_id, row.run_id, row.task_id, map_index, row.try_number)):
                continue
            ti = session.scalar(
                select(TaskInstance).where(
                    TaskInstance.dag_id == row.dag_id,
                    TaskInstance.task_id == row.task_id,
                    TaskInstance.run_id == row.run_id,
                    TaskInstance.map_index == map_index,
                )
            )
            if ti is None or ti.state != "failed" or ti.try_number != row.try_number:
                continue  # retried, cleared or succeeded since: nothing to page
            found.append(TaskEvent.from_task_instance(ti, state="failed", error=UNREPORTED_ERROR))
            log.warning("try %s.%s of %s failed with no listener reporting it: paging it", row.dag_id,
                        row.task_id, row.run_id)  # fmt: skip
        if len(rows) == MAX_ROWS and rows[-1].id == self.last_id:
            log.info("more than %d failed tries since the previous pass: the rest are read next pass", MAX_ROWS)
        return found
