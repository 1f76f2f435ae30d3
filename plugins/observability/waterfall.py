"""A trace as a terminal waterfall: one line per span in tree order, a bar placed on the run's time axis.

    trace d80e8d02dc6ea22c5fa64073efded937 · etl_orders · manual__1 · 4.00s · 3 spans
    run etl_orders           ERROR    4.00s |████████████████████|
    ├─ extract try 1         OK       1.00s |█████               |
    └─ load try 1            ERROR    3.00s |     ███████████████|
            ! ValueError: no rows

Span events sit under their span (`!` an exception, `•` anything else, with its offset from the span's
start). A span whose parent is not in the file (Airflow's own span, exported to OTLP) is shown as a root
and names the parent it hangs under.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from airflow_obs.observability.trace_store import DAG_ID, RUN_ID, SpanEvent, SpanRecord

BAR_WIDTH = 40
MAX_LABEL_WIDTH = 60
_FULL = "█"
_INSTANT = "▏"  # a zero-length span (an event recorded after its try span ended) still gets a mark


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 100:
        return f"{seconds:.2f}s"
    if seconds < 3600:
        return f"{seconds:.0f}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _bar(span: SpanRecord, origin: int, total: int, width: int) -> str:
    start = (span.start_time_unix_nano - origin) / total * width
    end = (span.end_time_unix_nano - origin) / total * width
    first = min(int(start), width - 1)
    if span.end_time_unix_nano <= span.start_time_unix_nano:
        return " " * first + _INSTANT + " " * (width - first - 1)
    last = max(first + 1, min(math.ceil(end), width))
    return " " * first + _FULL * (last - first) + " " * (width - last)


def event_line(event: SpanEvent, span: SpanRecord) -> str:
    if event.name == "exception":
        kind = event.attributes.get("exception.type", "")
        message = event.attributes.get("exception.message", "")
        return f"! {kind}: {message}" if kind else f"! {message}"
    offset = format_seconds(max(0, event.time_unix_nano - span.start_time_unix_nano) / 1e9)
    details = " ".join(f"{key}={value}" for key, value in sorted(event.attributes.items()))
    return f"• {event.name} +{offset}" + (f" {details}" if details else "")


def tree_order(spans: Sequence[SpanRecord]) -> list[tuple[str, str, SpanRecord]]:
    """(tree prefix for the span's line, prefix for lines under it, span) in depth-first time order."""
    by_id = {span.span_id: span for span in spans}
    children: dict[str | None, list[SpanRecord]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in by_id else None
        children.setdefault(parent, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: (s.start_time_unix_nano, s.name, s.span_id))

    ordered: list[tuple[str, str, SpanRecord]] = []

    def walk(span: SpanRecord, lead: str, under: str) -> None:
        ordered.append((lead, under, span))
        kids = children.get(span.span_id, [])
        for index, child in enumerate(kids):
            last = index == len(kids) - 1
            walk(child, under + ("└─ " if last else "├─ "), under + ("   " if last else "│  "))

    for root in children.get(None, []):
        walk(root, "", "")
    return ordered


def render_waterfall(spans: Sequence[SpanRecord], bar_width: int = BAR_WIDTH) -> str:
    """The trace of `spans` (all of one trace id) as lines of text, without a trailing newline."""
    if not spans:
        return "(no spans)"
    origin = min(span.start_time_unix_nano for span in spans)
    end = max(span.end_time_unix_nano for span in spans)
    total = max(end - origin, 1)
    ordered = tree_order(spans)
    labels = []
    for lead, _, span in ordered:
        label = lead + span.name
        if span.parent_span_id and lead == "":
            label += f" (under {span.parent_span_id})"
        labels.append(label)
    width = min(max(len(label) for label in labels), MAX_LABEL_WIDTH)

    first = spans[0].attributes
    head = [f"trace {spans[0].trace_id}", str(first.get(DAG_ID, "")), str(first.get(RUN_ID, ""))]
    lines = [" · ".join([*filter(None, head), format_seconds(total / 1e9), f"{len(spans)} spans"])]
    for label, (_, under, span) in zip(labels, ordered, strict=True):
        if len(label) > width:
            label = label[: width - 1] + "…"
        bar = _bar(span, origin, total, bar_width)
        status = "" if span.status == "UNSET" else span.status  # an event span has no outcome of its own
        lines.append(f"{label:<{width}}  {status:<6} {format_seconds(span.duration_seconds):>7} |{bar}|")
        lines.extend(f"{under}     {event_line(event, span)}" for event in span.events)
    return "\n".join(line.rstrip() for line in lines)
