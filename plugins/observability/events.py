"""What happened to a task try or a DAG run, as plain data every sink (metrics, traces, logs, messages) reads.

Airflow hands the plugin different objects for the same event: the task runner's RuntimeTaskInstance
(listeners and callbacks on a worker), the ORM TaskInstance (a "mark failed" in the UI fires the
listeners in the api-server), a callback context dict, or a DagRun. The constructors here read only
attributes those objects share, with getattr fallbacks, so one event type serves all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_obs.observability.notify.redaction import short_error

TEAM_TAG_PREFIX = "team:"


def _team(tags: Any) -> str:
    for tag in sorted(str(getattr(tag, "name", tag)) for tag in (tags or ())):
        if tag.startswith(TEAM_TAG_PREFIX):
            return tag.removeprefix(TEAM_TAG_PREFIX)
    return ""


def _from_dag_model(obj: Any) -> tuple[str, str]:
    """(owner, team) from the DagModel row of an ORM TaskInstance or DagRun that came without its DAG.

    The api-server hands listeners TaskInstances loaded without their task ("mark failed"); reading the
    relationship may hit the database or find the row detached, so any error means "unknown".
    """
    try:
        dag_model = getattr(obj, "dag_model", None)
        if dag_model is None:
            return "", ""
        return str(getattr(dag_model, "owners", "") or ""), _team(getattr(dag_model, "tags", None))
    except Exception:
        return "", ""


def _state_text(state: Any, default: str = "unknown") -> str:
    # An enum state's value: the Task SDK's TaskInstanceState is a plain (str, Enum) whose str() is its name.
    return str(getattr(state, "value", state) or default)


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


@dataclass(frozen=True)
class TaskEvent:
    """One task try reaching a state. `error` is redacted, then cut short (so a cut never leaves half a secret);
    a sink that knows more secrets (its own credentials) redacts again."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    max_tries: int
    state: str
    owner: str
    team: str
    pool: str
    queue: str
    hostname: str
    start_date: datetime | None
    end_date: datetime | None
    queued_dttm: datetime | None
    error: str

    @property
    def duration_seconds(self) -> float | None:
        return _seconds_between(self.start_date, self.end_date)

    @property
    def queued_seconds(self) -> float | None:
        return _seconds_between(self.queued_dttm, self.start_date)

    @property
    def will_retry(self) -> bool:
        return self.state == "up_for_retry"

    @classmethod
    def from_task_instance(cls, ti: Any, state: str | None = None, error: BaseException | str | None = None):
        task = getattr(ti, "task", None)
        dag = getattr(task, "dag", None)
        owner, team = str(getattr(task, "owner", "") or ""), _team(getattr(dag, "tags", None))
        if task is None:
            owner, team = _from_dag_model(ti)
        return cls(
            dag_id=str(ti.dag_id),
            run_id=str(ti.run_id),
            task_id=str(ti.task_id),
            map_index=int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1),
            try_number=int(getattr(ti, "try_number", 0) or 0),
            max_tries=int(getattr(ti, "max_tries", 0) or 0),
            state=_state_text(state or getattr(ti, "state", None)),
            owner=owner,
            team=team,
            pool=str(getattr(ti, "pool", None) or getattr(task, "pool", "") or ""),
            queue=str(getattr(ti, "queue", None) or getattr(task, "queue", "") or ""),
            hostname=str(getattr(ti, "hostname", "") or ""),
            start_date=getattr(ti, "start_date", None),
            end_date=getattr(ti, "end_date", None),
            queued_dttm=getattr(ti, "queued_dttm", None),
            error=short_error(error),
        )

    @classmethod
    def from_context(cls, context: dict[str, Any], state: str | None = None):
        """From a task callback's context (on_failure_callback and friends)."""
        ti = context.get("ti") or context.get("task_instance")
        return cls.from_task_instance(ti, state=state, error=context.get("exception"))


@dataclass(frozen=True)
class DagRunEvent:
    dag_id: str
    run_id: str
    state: str
    run_type: str
    owner: str
    team: str
    start_date: datetime | None
    end_date: datetime | None
    error: str

    @property
    def duration_seconds(self) -> float | None:
        return _seconds_between(self.start_date, self.end_date)

    @classmethod
    def from_dag_run(cls, dag_run: Any, state: str | None = None, msg: str | None = None):
        dag = getattr(dag_run, "dag", None)
        owner, team = str(getattr(dag, "owner", "") or ""), _team(getattr(dag, "tags", None))
        if dag is None:
            owner, team = _from_dag_model(dag_run)
        return cls(
            dag_id=str(dag_run.dag_id),
            run_id=str(dag_run.run_id),
            state=_state_text(state or getattr(dag_run, "state", None)),
            run_type=_state_text(getattr(dag_run, "run_type", None), default=""),
            owner=owner,
            team=team,
            start_date=getattr(dag_run, "start_date", None),
            end_date=getattr(dag_run, "end_date", None),
            error=short_error(msg),
        )
