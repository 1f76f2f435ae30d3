"""Where each of our spans goes: its trace id, its own span id and its parent's, in one place.

Two modes, chosen by Airflow's `[traces] otel_on`:

- off: nothing else traces the run, so ids are derived from what every component knows. The trace id
  is a hash of (dag_id, run_id), the run span's and each try span's ids are hashes of their keys. The
  exporter, an alert or a dashboard can compute any of them without asking anyone.
- on: Airflow 3.3 already gives the run a trace. It draws a random trace id when the DagRun is created
  (or cleared) and keeps it as a W3C traceparent in `dag_run.context_carrier`; each TI gets a child
  carrier (`task_instance.context_carrier`, the `task_run.<task>` span) and the task runner runs the
  try inside `worker.<task>`, the current OpenTelemetry span there. Our spans join that trace: the
  trace id is read from the carrier (the current span in the task runner, the metadata DB elsewhere).
  Only if neither is reachable do we fall back to the derived ids, and say so in the log.

Span ids of our own spans are derived in both modes, so a late event can find its try span's id.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger("airflow_obs.tracing")

# Bumping the namespace changes every derived id: only ever do it with a migration note.
_NAMESPACE = b"airflow-obs/v1"


def _derive(kind: str, *parts: object, bits: int) -> int:
    """The first `bits` of SHA-256 over netstrings (`<len>:<utf-8 bytes>,`) of the namespace, kind and parts.

    Netstrings keep ("a:b", "c") and ("a", "b:c") apart, and are easy to reproduce in any language.
    """
    fields = [_NAMESPACE, kind.encode(), *(str(part).encode() for part in parts)]
    digest = hashlib.sha256(b"".join(b"%d:%s," % (len(field), field) for field in fields)).digest()
    value = int.from_bytes(digest[: bits // 8], "big")
    return value or 1  # all-zero ids are invalid in W3C trace context; a hash hitting it is near impossible


def derived_trace_id(dag_id: str, run_id: str) -> int:
    return _derive("trace", dag_id, run_id, bits=128)


def run_span_id(dag_id: str, run_id: str) -> int:
    return _derive("run", dag_id, run_id, bits=64)


def try_span_id(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> int:
    return _derive("try", dag_id, run_id, task_id, int(map_index), int(try_number), bits=64)


def event_span_id(try_id: int, name: str, time_ns: int) -> int:
    return _derive("event", try_id, name, time_ns, bits=64)


def hex_trace_id(value: int) -> str:
    return format(value, "032x")


def checked_hex_trace_id(raw: str) -> str:
    """A trace id from outside (a URL, an API): 32 hex digits, lowercased, or ValueError naming the value."""
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9a-fA-F]{32}", raw):
        raise ValueError(f"trace id {raw!r} is not a trace id: expected 32 hex digits")
    return raw.lower()


def hex_span_id(value: int) -> str:
    return format(value, "016x")


def ids_from_carrier(carrier: Any) -> tuple[int, int] | None:
    """(trace id, span id) of a W3C carrier such as `dag_run.context_carrier`, or None if it holds none."""
    if not isinstance(carrier, dict) or not carrier:
        return None
    span_context = trace.get_current_span(TraceContextTextMapPropagator().extract(carrier)).get_span_context()
    return (span_context.trace_id, span_context.span_id) if span_context.is_valid else None


# The SDK takes span ids only from its IdGenerator; this one hands out the ids set for the next span.
_next_ids: ContextVar[tuple[int, int] | None] = ContextVar("airflow_obs_next_span_ids", default=None)


class ExplicitIdGenerator(RandomIdGenerator):
    """Gives the span started inside `explicit_ids(...)` exactly those ids; random ids otherwise."""

    def generate_trace_id(self) -> int:
        ids = _next_ids.get()
        return ids[0] if ids else super().generate_trace_id()

    def generate_span_id(self) -> int:
        ids = _next_ids.get()
        return ids[1] if ids else super().generate_span_id()

    def is_trace_id_random(self) -> bool:
        return False  # derived ids are not random, so samplers must not be told they are


@contextmanager
def explicit_ids(trace_id: int, span_id: int) -> Iterator[None]:
    token = _next_ids.set((trace_id, span_id))
    try:
        yield
    finally:
        _next_ids.reset(token)


def clear_caches() -> None:
    """Forget the mode and the runs' trace ids read so far (tests, and trace_provider.reset)."""
    airflow_tracing_on.cache_clear()
    _recent_runs.clear()
    _fallback_warned.clear()


@cache
def airflow_tracing_on() -> bool:
    """Airflow's `[traces] otel_on`, read once per process (Airflow reads it once too, at start-up)."""
    try:
        from airflow.configuration import conf
    except ImportError:  # a worker with only the Task SDK installed
        from airflow.sdk.configuration import conf
    return conf.getboolean("traces", "otel_on", fallback=False)


@dataclass(frozen=True)
class Placement:
    """The trace a span belongs to and its parent there (None: the span is the trace's root)."""

    trace_id: int
    parent_span_id: int | None


def _airflow_worker_span(dag_id: str, run_id: str, task_id: str | None = None, try_number: int | None = None):
    """The task runner's current `worker.<task>` span if it is this run's (and this try's), else None.

    Only an SDK span exposes its attributes; with Airflow's tracing off the current span is non-recording
    and never matches, which is right: there is nothing to join.
    """
    span = trace.get_current_span()
    attributes = getattr(span, "attributes", None) or {}
    if attributes.get("airflow.dag_id") != dag_id or attributes.get("airflow.dag_run.run_id") != run_id:
        return None
    if task_id is not None and attributes.get("airflow.task_id") != task_id:
        return None
    if try_number is not None and attributes.get("airflow.task_instance.try_number") != try_number:
        return None
    context = span.get_span_context()
    return context if context.is_valid else None


def _carrier_from_db(dag_id: str, run_id: str, task_id: str | None = None, map_index: int = -1) -> Any:
    # Inside a task the ORM raises RuntimeError (Airflow 3 forbids it); callers treat that as "not found".
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if task_id is None:
        query = select(DagRun.context_carrier).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    else:
        query = select(TaskInstance.context_carrier).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )
    # A session of our own, never the thread's scoped one: the listener hooks run inside the scheduler's (and
    # the api-server's) session, and create_session() on the scoped session would commit, then close it under
    # them (the scheduler then dies with DetachedInstanceError on its next DagRun attribute).
    with create_session(scoped=False) as session:
        return session.scalar(query)


def _ids_from_db(dag_id: str, run_id: str, task_id: str | None = None, map_index: int = -1):
    try:
        found = ids_from_carrier(_carrier_from_db(dag_id, run_id, task_id, map_index))
    except Exception:
        log.debug("airflow_obs: no trace carrier in the metadata DB for %s/%s", dag_id, run_id, exc_info=True)
        return None
    if task_id is None and found:
        _recent_runs[(dag_id, run_id)] = (time.monotonic() + RUN_CACHE_SECONDS, found)
        while len(_recent_runs) > RUN_CACHE_SIZE:
            _recent_runs.pop(next(iter(_recent_runs)))
    return found


# Several sinks ask for the same run's trace id within milliseconds (a log line, a message, a span);
# one DB read serves them. Kept short because clearing a run gives it a new carrier, hence a new trace.
RUN_CACHE_SECONDS = 30.0
RUN_CACHE_SIZE = 1024
_recent_runs: dict[tuple[str, str], tuple[float, tuple[int, int]]] = {}


def _run_ids_cached(dag_id: str, run_id: str):
    hit = _recent_runs.get((dag_id, run_id))
    if hit and hit[0] > time.monotonic():
        return hit[1]
    return _ids_from_db(dag_id, run_id)


_fallback_warned: set[str] = set()


def _fallback(dag_id: str, run_id: str, parent_span_id: int | None) -> Placement:
    # Warn once per process: the cause (no DB here, carriers missing) is the same for every run that follows.
    level = logging.DEBUG if _fallback_warned else logging.WARNING
    _fallback_warned.add("warned")
    message = "airflow_obs: Airflow tracing is on but the trace of %s/%s is unknown here; using derived ids"
    log.log(level, message, dag_id, run_id)
    return Placement(derived_trace_id(dag_id, run_id), parent_span_id)


def trace_id_of_run(dag_id: str, run_id: str) -> int:
    if not airflow_tracing_on():
        return derived_trace_id(dag_id, run_id)
    worker = _airflow_worker_span(dag_id, run_id)
    if worker is not None:
        return worker.trace_id
    ids = _run_ids_cached(dag_id, run_id)
    return ids[0] if ids else _fallback(dag_id, run_id, None).trace_id


def place_run_span(dag_id: str, run_id: str) -> Placement:
    """Off: the root of the run's trace. On: a child of Airflow's `dag_run.<dag>` span."""
    if not airflow_tracing_on():
        return Placement(derived_trace_id(dag_id, run_id), None)
    ids = _ids_from_db(dag_id, run_id)
    return Placement(ids[0], ids[1]) if ids else _fallback(dag_id, run_id, None)


def place_try_span(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> Placement:
    """Off: a child of our run span. On: a child of `worker.<task>` (task runner) or `task_run.<task>`."""
    if not airflow_tracing_on():
        return Placement(derived_trace_id(dag_id, run_id), run_span_id(dag_id, run_id))
    worker = _airflow_worker_span(dag_id, run_id, task_id, try_number)
    if worker is not None:
        return Placement(worker.trace_id, worker.span_id)
    ids = _ids_from_db(dag_id, run_id, task_id, map_index) or _ids_from_db(dag_id, run_id)
    if ids:
        return Placement(ids[0], ids[1])
    return _fallback(dag_id, run_id, run_span_id(dag_id, run_id))
