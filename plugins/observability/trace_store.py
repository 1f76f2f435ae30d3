"""The local trace store: a JSONL file of finished spans, written by an OTel exporter and read back by the CLI.

One line per span (the schema is `SpanRecord`). Every process that records spans (scheduler, each task
runner, the api-server) appends to the same file: each batch is one `write()` on an O_APPEND descriptor,
which the kernel places at the end as a unit, so lines of concurrent writers do not interleave. The file
is opened per batch rather than held, so a fork or an external rotation never leaves a stale descriptor.
Nothing here imports Airflow: `airflow-obs trace` must start fast.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger("airflow_obs.tracing")

# The attributes every span of ours carries (Airflow's own names, so one query finds both kinds of span).
DAG_ID = "airflow.dag_id"
RUN_ID = "airflow.dag_run.run_id"


@dataclass(frozen=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanRecord:
    """One finished span as stored: ids in lowercase hex, times in Unix nanoseconds."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    status: str  # UNSET, OK or ERROR
    status_description: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    service_name: str = ""

    @property
    def duration_seconds(self) -> float:
        return max(0, self.end_time_unix_nano - self.start_time_unix_nano) / 1e9

    def to_json(self) -> dict[str, Any]:
        record = dict(vars(self))
        record["events"] = [vars(event) for event in self.events]
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> SpanRecord:
        events = tuple(SpanEvent(**event) for event in record.get("events") or ())
        return cls(**{**record, "events": events})

    @classmethod
    def from_span(cls, span: ReadableSpan) -> SpanRecord:
        context = span.get_span_context()
        return cls(
            trace_id=format(context.trace_id, "032x"),
            span_id=format(context.span_id, "016x"),
            parent_span_id=format(span.parent.span_id, "016x") if span.parent else None,
            name=span.name,
            start_time_unix_nano=span.start_time or 0,
            end_time_unix_nano=span.end_time or span.start_time or 0,
            status=span.status.status_code.name,
            status_description=span.status.description or "",
            attributes=_plain(span.attributes),
            events=tuple(SpanEvent(e.name, e.timestamp, _plain(e.attributes)) for e in span.events),
            service_name=str(span.resource.attributes.get("service.name", "")),
        )


def _plain(attributes: Any) -> dict[str, Any]:
    # OTel keeps sequence values as tuples; JSON has lists, and a read-back record must equal the written one.
    return {key: list(value) if isinstance(value, tuple) else value for key, value in (attributes or {}).items()}


def _write_all(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class JsonlSpanExporter(SpanExporter):
    """Appends finished spans to a JSONL file; a write error fails the batch and is logged once per process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._failed_before = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            lines = "".join(json.dumps(SpanRecord.from_span(s).to_json(), default=str) + "\n" for s in spans)
            _write_all(self.path, lines.encode())
            return SpanExportResult.SUCCESS
        except Exception:  # the SDK would log every failed batch with a traceback; once is enough
            if not self._failed_before:
                log.warning("airflow_obs: cannot write spans to %s", self.path, exc_info=True)
            self._failed_before = True
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every export is already on disk


def read_spans(path: Path) -> Iterator[SpanRecord]:
    """Every readable span in the file; a torn or foreign line (a crash mid-write) is skipped."""
    with Path(path).open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                yield SpanRecord.from_json(json.loads(line))
            except (ValueError, TypeError):
                continue


def run_traces(spans: Iterable[SpanRecord], dag_id: str, run_id: str) -> dict[str, list[SpanRecord]]:
    """The spans of one DAG run, by trace id (one per run; a run cleared under Airflow's tracing has more).

    A span re-emitted with the same id (a try marked failed in the UI after it finished) keeps its last version.
    """
    traces: dict[str, dict[str, SpanRecord]] = {}
    for span in spans:
        if span.attributes.get(DAG_ID) == dag_id and span.attributes.get(RUN_ID) == run_id:
            traces.setdefault(span.trace_id, {})[span.span_id] = span
    return {trace_id: list(by_id.values()) for trace_id, by_id in traces.items()}
