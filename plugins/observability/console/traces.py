"""A trace for the console's waterfall, from the store the deployment uses: Tempo's API when [observability] tempo_url
is set, else the local JSONL store (read from its end only, so a long-lived store costs the page the same).

`waterfall_rows` places each span on the trace's time axis as percentages, in the tree order the terminal
waterfall (`airflow-obs trace`) uses, so both read alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from airflow_obs.observability.console.tempo import TraceUnavailable, fetch_trace
from airflow_obs.observability.settings import PluginSettings
from airflow_obs.observability.trace_context import checked_hex_trace_id
from airflow_obs.observability.trace_store import SpanRecord
from airflow_obs.observability.waterfall import event_line, format_seconds, tree_order

# The newest spans of the JSONL store: a run's trace is recent when someone opens it from an alert.
STORE_TAIL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class WaterfallRow:
    depth: int
    name: str
    status: str
    duration: str
    offset_percent: float
    width_percent: float
    events: tuple[str, ...]
    attributes: dict


def _tail_lines(path: Path, max_bytes: int) -> Iterator[str]:
    with path.open("rb") as store:
        size = store.seek(0, os.SEEK_END)
        store.seek(max(0, size - max_bytes))
        if size > max_bytes:
            store.readline()  # the first line may start mid-record
        for line in store:
            yield line.decode("utf-8", errors="replace")


def stored_spans(path: Path, trace_id: str, max_bytes: int = STORE_TAIL_BYTES) -> list[SpanRecord]:
    """The trace's spans among the newest `max_bytes` of the store; a span written twice keeps its last version."""
    if not path.is_file():
        return []
    found: dict[str, SpanRecord] = {}
    for line in _tail_lines(path, max_bytes):
        if trace_id not in line:  # cheap skip before parsing: most lines are other traces
            continue
        try:
            span = SpanRecord.from_json(json.loads(line))
        except (ValueError, TypeError):
            continue
        if span.trace_id == trace_id:
            found[span.span_id] = span
    return list(found.values())


def trace_spans(settings: PluginSettings, trace_id: str) -> list[SpanRecord]:
    """The spans of one trace, from Tempo or the JSONL store; TraceUnavailable says why there are none to show."""
    trace_id = checked_hex_trace_id(trace_id)
    if settings.tempo_url:
        return fetch_trace(settings.tempo_url, trace_id)
    spans = stored_spans(settings.traces_path, trace_id)
    if not spans:
        raise TraceUnavailable(f"trace {trace_id} is not among the newest spans of {settings.traces_path}")
    return spans


def waterfall_rows(spans: list[SpanRecord]) -> list[WaterfallRow]:
    if not spans:
        return []
    origin = min(span.start_time_unix_nano for span in spans)
    total = max(max(span.end_time_unix_nano for span in spans) - origin, 1)
    rows = []
    for lead, _, span in tree_order(spans):
        offset = (span.start_time_unix_nano - origin) / total * 100
        width = max(0.0, span.end_time_unix_nano - span.start_time_unix_nano) / total * 100
        rows.append(
            WaterfallRow(
                depth=len(lead) // 3,
                name=span.name,
                status="" if span.status == "UNSET" else span.status,
                duration=format_seconds(span.duration_seconds),
                offset_percent=round(offset, 2),
                width_percent=round(min(width, 100 - offset), 2),
                events=tuple(event_line(event, span) for event in span.events),
                attributes=dict(span.attributes),
            )
        )
    return rows


def total_duration(spans: list[SpanRecord]) -> str:
    if not spans:
        return ""
    return format_seconds((max(s.end_time_unix_nano for s in spans) - min(s.start_time_unix_nano for s in spans)) / 1e9)
