"""The process's one TracerProvider for our spans: which exporter, how spans leave, a flush with a bound.

The provider is private (never `trace.set_tracer_provider`): Airflow installs its own global one when
`[traces] otel_on`, and its spans must keep going where Airflow sends them. Ours is built on first use,
so importing the plugin costs nothing and a process that never records a span never opens a file.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import types
from collections.abc import Mapping
from typing import Any

from airflow_obs.observability import trace_context as ids
from airflow_obs.observability.trace_store import JsonlSpanExporter
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

log = logging.getLogger("airflow_obs.tracing")

FLUSH_TIMEOUT_SECONDS = 2.0  # most a finished try waits for its spans to reach an OTLP collector

# If these modules are ever executed twice in one process (a loader importing plugin files one by one),
# both copies must share one provider: the state lives in a sys.modules entry every copy finds.
STATE = sys.modules.setdefault(
    "airflow_obs.observability._tracing_state", types.ModuleType("airflow_obs.observability._tracing_state")
)
for _name, _initial in {
    "lock": threading.RLock(),
    "tracer": None,
    "provider": None,
    "batched": False,
    "exit_hook": 0,  # pid of the process whose exit flushes
    "open_tries": {},  # try key -> [(event name, time ns, attributes)], see tracing.add_event
    "logged_failures": set(),
}.items():
    vars(STATE).setdefault(_name, _initial)


def choose_exporter(environ: Mapping[str, str] = os.environ) -> tuple[SpanExporter, bool]:
    """(exporter, batched): OTLP when an OTEL_EXPORTER_OTLP_*ENDPOINT is set, else the JSONL file."""
    if not (environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        from airflow_obs.observability.settings import settings

        # One short append per span (tens of microseconds): written by the caller, nothing waits in a queue.
        return JsonlSpanExporter(settings().traces_path), False
    flavour = environ.get("OTEL_TRACES_EXPORTER", "otlp")
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    # Airflow's OTEL_TRACES_EXPORTER names are honoured; so is the standard protocol variable (Airflow ignores it).
    if flavour == "otlp_proto_http" or (flavour == "otlp" and protocol.startswith("http")):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(), True  # endpoint, headers, timeout, TLS: from the OTEL_EXPORTER_OTLP_* variables


def _build() -> trace.Tracer:
    exporter, batched = choose_exporter()
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(
        # Always sample: one span per try is cheap, and an alert's trace link must never lead nowhere.
        sampler=ALWAYS_ON,
        resource=Resource.create({} if named else {"service.name": "airflow-obs"}),
        id_generator=ids.ExplicitIdGenerator(),
        # The SDK's exit hook joins the export thread without a bound; ours flushes with one.
        shutdown_on_exit=False,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter) if batched else SimpleSpanProcessor(exporter))
    STATE.provider, STATE.batched = provider, batched
    return provider.get_tracer("airflow_obs")


def tracer() -> trace.Tracer:
    with STATE.lock:
        if STATE.tracer is None:
            STATE.tracer = _build()
        # Per process: a task runner is forked, and Airflow clears the exit hooks it inherits.
        if STATE.exit_hook != os.getpid():
            atexit.register(flush)
            STATE.exit_hook = os.getpid()
        return STATE.tracer


def start_span(name: str, placement: ids.Placement, span_id: int, start_ns: int, attributes: dict[str, Any]):
    """A span with exactly these ids and parent, whatever span is current in the caller."""
    context = Context()
    if placement.parent_span_id is not None:
        flags = TraceFlags(TraceFlags.SAMPLED)
        parent = SpanContext(placement.trace_id, placement.parent_span_id, is_remote=True, trace_flags=flags)
        context = trace.set_span_in_context(NonRecordingSpan(parent), context)
    with ids.explicit_ids(placement.trace_id, span_id):
        return tracer().start_span(name, context=context, start_time=start_ns, attributes=attributes)


def flush(shutdown: bool = False) -> None:
    """Push queued spans out, waiting at most FLUSH_TIMEOUT_SECONDS (the SDK's own flush has no bound)."""
    provider = STATE.provider
    if provider is None or not (STATE.batched or shutdown):
        return  # the file exporter writes as spans end: nothing is ever queued

    def run() -> None:
        try:
            provider.shutdown() if shutdown else provider.force_flush()
        except Exception:
            log.debug("airflow_obs: span flush failed", exc_info=True)

    worker = threading.Thread(target=run, name="airflow-obs-span-flush", daemon=True)
    worker.start()
    worker.join(FLUSH_TIMEOUT_SECONDS)


def reset() -> None:
    """Flush and drop this process's tracer; the next span builds one from the current settings (tests use it)."""
    with STATE.lock:
        flush(shutdown=True)
        STATE.tracer = STATE.provider = None
        STATE.open_tries.clear()
        STATE.logged_failures.clear()
        ids.clear_caches()
