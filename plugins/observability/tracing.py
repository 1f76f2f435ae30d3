"""Traces of DAG runs and task tries: a run span, one span per try, the try's events; see docs/tracing.md.

Spans are emitted when something ends (a try reaches a final state, a run finishes), with the recorded
start time, so no span stays open across processes and nothing is kept between calls except the events
of the try running in this process. Ids and parents come from `trace_context` (derived, or Airflow's
own trace when `[traces] otel_on`). Our TracerProvider is private: Airflow owns the global one.

Every public function catches its own errors and logs each kind once: telemetry never fails a task.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_obs.observability import trace_context as ids
from airflow_obs.observability import trace_provider
from airflow_obs.observability.events import DagRunEvent, TaskEvent
from airflow_obs.observability.trace_store import DAG_ID, RUN_ID
from opentelemetry.trace import Status, StatusCode

log = logging.getLogger("airflow_obs.tracing")

MAX_OPEN_TRIES = 256  # tries whose events we hold at once; a task runner has one, dag.test() a few
MAX_EVENTS_PER_TRY = 64
MAX_ATTRIBUTE_CHARS = 1000
FINAL_TASK_STATES = frozenset({"success", "failed", "up_for_retry", "skipped"})
FINAL_RUN_STATES = frozenset({"success", "failed"})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_STATE = trace_provider.STATE
_LOCK = trace_provider.STATE.lock
reset_tracer = trace_provider.reset


def _log_failure(where: str) -> None:
    kind = (where, type(sys.exc_info()[1]).__name__)
    first = kind not in _STATE.logged_failures
    _STATE.logged_failures.add(kind)
    level = logging.WARNING if first else logging.DEBUG
    log.log(level, "airflow_obs: tracing failed in %s (the task is not affected)", where, exc_info=True)


def _ns(moment: datetime | None) -> int:
    if moment is None:
        return time.time_ns()
    if moment.tzinfo is None:  # Airflow's dates are UTC; a naive one is too
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _redact(text: str) -> str:
    """The notifications' redaction (known secrets, Airflow's masker, secret shapes): one rule set for every sink."""
    try:
        from airflow_obs.observability.notify.redaction import redact
    except ImportError:  # without it, Airflow's masker alone
        from airflow.sdk._shared.secrets_masker import redact
    return str(redact(text))[:MAX_ATTRIBUTE_CHARS]


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Values OTel accepts (str, bool, int, float, lists of str); strings redacted and bounded."""
    clean: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if value is None:
            continue
        if isinstance(value, bool | int | float):
            clean[str(key)] = value
        elif isinstance(value, list | tuple | set | frozenset):
            clean[str(key)] = [_redact(str(item)) for item in value]
        else:
            clean[str(key)] = _redact(str(value))
    return clean


def _try_key(event: TaskEvent) -> tuple[str, str, str, int, int]:
    return (event.dag_id, event.run_id, event.task_id, event.map_index, event.try_number)


def _identity(event: TaskEvent) -> dict[str, Any]:
    return {
        DAG_ID: event.dag_id,
        RUN_ID: event.run_id,
        "airflow.task_id": event.task_id,
        "airflow.task_instance.map_index": event.map_index,
        "airflow.task_instance.try_number": event.try_number,
    }


def _try_attributes(event: TaskEvent) -> dict[str, Any]:
    attributes = {
        **_identity(event),
        "airflow.task_instance.state": event.state,
        "airflow_obs.owner": event.owner,
        "airflow_obs.team": event.team,
        "airflow_obs.pool": event.pool,
        "airflow_obs.queue": event.queue,
        "airflow_obs.hostname": event.hostname,
        "airflow_obs.max_tries": event.max_tries,
        "airflow_obs.will_retry": event.will_retry,
    }
    if event.duration_seconds is not None:
        attributes["airflow_obs.duration_seconds"] = event.duration_seconds
    if event.queued_seconds is not None:  # known where the TI is the ORM row, not in the task runner
        attributes["airflow_obs.queued_seconds"] = event.queued_seconds
    return attributes


def _exception_event(error: str) -> dict[str, str]:
    kind, _, message = error.partition(": ")
    if not message or " " in kind:  # not "Type: message": keep it whole
        kind, message = "", error
    return {"exception.type": kind, "exception.message": message}


def _emit_try(event: TaskEvent, pending: list[tuple[str, int, dict[str, Any]]]) -> None:
    key = _try_key(event)
    name = f"{event.task_id}[{event.map_index}]" if event.map_index >= 0 else event.task_id
    start = _ns(event.start_date)
    end = max(start, _ns(event.end_date))
    placement, span_id = ids.place_try_span(*key), ids.try_span_id(*key)
    attributes = _try_attributes(event)
    span = trace_provider.start_span(f"{name} try {event.try_number}", placement, span_id, start, attributes)
    for event_name, at, event_attributes in pending:
        span.add_event(event_name, event_attributes, timestamp=at)
    error = _redact(event.error) if event.error else ""
    if error:
        span.add_event("exception", _exception_event(error), timestamp=end)
    if event.state in ("failed", "up_for_retry"):
        span.set_status(Status(StatusCode.ERROR, error or event.state))
    else:
        span.set_status(Status(StatusCode.OK))
    span.end(end_time=end)


def record_task_event(event: TaskEvent) -> None:
    """Record a task try that reached a state (running, success, failed, up_for_retry, skipped)."""
    try:
        key = _try_key(event)
        if event.state == "running":
            with _LOCK:  # from now on add_event() keeps this try's events for its span
                if len(_STATE.open_tries) >= MAX_OPEN_TRIES:
                    _STATE.open_tries.pop(next(iter(_STATE.open_tries)))
                _STATE.open_tries.setdefault(key, [])
            return
        if event.state not in FINAL_TASK_STATES:
            return
        with _LOCK:
            pending = _STATE.open_tries.pop(key, None)
        _emit_try(event, pending or [])
        if pending is not None:
            # The try ran in this process (a task runner, which exits soon): wait, boundedly, for its span to
            # leave. A scheduler or api-server reporting someone else's try never waits on a collector.
            trace_provider.flush()
    except Exception:
        _log_failure("record_task_event")


def record_dag_run_event(event: DagRunEvent) -> None:
    """Record a DAG run that reached a state (running, success, failed); the run span is emitted at the end."""
    try:
        if event.state not in FINAL_RUN_STATES:
            return
        start = _ns(event.start_date)
        end = max(start, _ns(event.end_date))
        attributes = {
            DAG_ID: event.dag_id,
            RUN_ID: event.run_id,
            "airflow.dag_run.run_type": event.run_type,
            "airflow.dag_run.state": event.state,
            "airflow_obs.owner": event.owner,
            "airflow_obs.team": event.team,
        }
        if event.duration_seconds is not None:
            attributes["airflow_obs.duration_seconds"] = event.duration_seconds
        placement = ids.place_run_span(event.dag_id, event.run_id)
        span_id = ids.run_span_id(event.dag_id, event.run_id)
        span = trace_provider.start_span(f"run {event.dag_id}", placement, span_id, start, attributes)
        failed = event.state == "failed"
        span.set_status(Status(StatusCode.ERROR, _redact(event.error) or "failed") if failed else Status(StatusCode.OK))
        span.end(end_time=end)
        # No flush here: in the scheduler the batch thread sends it, and a collector outage must not stall scheduling.
    except Exception:
        _log_failure("record_dag_run_event")


def add_event(event: TaskEvent, name: str, attributes: Mapping[str, Any] | None = None) -> None:
    """Attach an event ("notification sent", a data-quality result) to the try `event` describes.

    While the try runs in this process the event waits and becomes a span event of the try span. Otherwise
    (the span is already sent, or the try ran elsewhere) it becomes a zero-length child span of the try span.
    """
    try:
        clean = _clean(attributes)
        now = time.time_ns()
        key = _try_key(event)
        with _LOCK:
            pending = _STATE.open_tries.get(key)
            if pending is not None:
                if len(pending) < MAX_EVENTS_PER_TRY:
                    pending.append((name, now, clean))
                return
        try_id = ids.try_span_id(*key)
        placement = ids.Placement(ids.trace_id_of_run(event.dag_id, event.run_id), try_id)
        span_id = ids.event_span_id(try_id, name, now)
        span = trace_provider.start_span(name, placement, span_id, now, {**_identity(event), **clean})
        span.end(end_time=now)  # sent by the batch thread, or at the latest by the exit hook
    except Exception:
        _log_failure("add_event")


def trace_id_for_run(dag_id: str, run_id: str) -> str:
    """The run's trace id, 32 lowercase hex digits: the one its spans carry in either mode."""
    try:
        return ids.hex_trace_id(ids.trace_id_of_run(dag_id, run_id))
    except Exception:
        _log_failure("trace_id_for_run")
        return ids.hex_trace_id(ids.derived_trace_id(dag_id, run_id))


def span_id_for_try(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """The span id of one task try's span, 16 lowercase hex digits (the same in both modes)."""
    try:
        return ids.hex_span_id(ids.try_span_id(dag_id, run_id, task_id, map_index, try_number))
    except Exception:  # a map index or try number that is not a number: still an id, never an exception
        _log_failure("span_id_for_try")
        return ids.hex_span_id(ids.try_span_id(dag_id, run_id, task_id, -1, 0))
