"""One trace read from Grafana Tempo's HTTP API (`GET /api/traces/<trace id>`), as trace_store's `SpanRecord`s.

The console draws a run's trace as a waterfall: from Tempo when the deployment sends its spans there, from the
local JSONL store otherwise. Both sources give the same records, so the drawing never knows which one it was.

Tempo answers with OTLP in protobuf's JSON mapping, and its versions differ in the wrapping: `batches` or
`resourceSpans` around the resources, `scopeSpans` or `instrumentationLibrarySpans` around the spans, ids in
base64 (protobuf's rule for bytes) or already in hex, status codes as enum names or numbers. All are read.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from airflow_obs.observability.http_read import Unreachable, bounded_get
from airflow_obs.observability.trace_context import checked_hex_trace_id
from airflow_obs.observability.trace_store import SpanEvent, SpanRecord

_STATUS_NAMES = ("UNSET", "OK", "ERROR")  # OTLP's numbers for them: 0, 1, 2


class TraceUnavailable(Exception):
    """Tempo could not give the trace: unreachable, no answer in time, not found, an error, or an unreadable body."""


def fetch_trace(base_url: str, trace_id: str, timeout: float = 3.0) -> list[SpanRecord]:
    """The spans of one trace as Tempo at `base_url` (e.g. `http://tempo:3200`) has them, in Tempo's order."""
    trace_id = checked_hex_trace_id(trace_id)
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"Tempo URL {base_url!r} is not an http(s) URL")
    url = f"{base_url.rstrip('/')}/api/traces/{trace_id}"
    try:
        status, body = bounded_get(url, timeout)
    except Unreachable as error:
        raise TraceUnavailable(f"cannot reach Tempo at {url}: {error}") from error
    if status == 404:
        raise TraceUnavailable(f"trace {trace_id} not found in Tempo at {url}")
    if status != 200:
        excerpt = body.decode("utf-8", errors="replace").strip()[:200]
        raise TraceUnavailable(f"Tempo at {url} answered HTTP {status}: {excerpt}")
    try:
        document = json.loads(body)
    except ValueError:
        raise TraceUnavailable(f"Tempo at {url} answered with something that is not JSON") from None
    try:
        return _records(document)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise TraceUnavailable(f"Tempo at {url} answered with JSON that is not an OTLP trace: {error}") from None


def _records(document: Any) -> list[SpanRecord]:
    if not isinstance(document, dict):
        raise TypeError(f"expected an object, got {type(document).__name__}")
    if "batches" not in document and "resourceSpans" not in document and document:
        raise KeyError("neither 'batches' nor 'resourceSpans'")
    records = []
    # protobuf JSON leaves out empty lists, so every list may be missing.
    for batch in document.get("batches", document.get("resourceSpans")) or ():
        resource = _attributes((batch.get("resource") or {}).get("attributes"))
        service_name = str(resource.get("service.name", ""))
        for scope in batch.get("scopeSpans", batch.get("instrumentationLibrarySpans")) or ():
            records.extend(_record(span, service_name) for span in scope.get("spans") or ())
    return records


def _record(span: dict[str, Any], service_name: str) -> SpanRecord:
    status = span.get("status") or {}
    start = int(span.get("startTimeUnixNano") or 0)
    parent = _hex_id(span.get("parentSpanId") or "", 8)
    return SpanRecord(
        trace_id=_hex_id(span["traceId"], 16),
        span_id=_hex_id(span["spanId"], 8),
        parent_span_id=parent if parent.strip("0") else None,
        name=str(span.get("name", "")),
        start_time_unix_nano=start,
        end_time_unix_nano=int(span.get("endTimeUnixNano") or start),
        status=_status(status.get("code", 0)),
        status_description=str(status.get("message", "")),
        attributes=_attributes(span.get("attributes")),
        events=tuple(_event(event) for event in span.get("events") or ()),
        service_name=service_name,
    )


def _event(event: dict[str, Any]) -> SpanEvent:
    return SpanEvent(
        str(event.get("name", "")), int(event.get("timeUnixNano") or 0), _attributes(event.get("attributes"))
    )


def _hex_id(value: str, size: int) -> str:
    """An id as lowercase hex; hex and base64 of the same id never have the same length, so the length decides."""
    if not value:
        return ""
    if len(value) == 2 * size and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)
    except binascii.Error:
        raise ValueError(f"id {value!r} is neither hex nor base64") from None
    if len(raw) != size:
        raise ValueError(f"id {value!r} is {len(raw)} bytes, expected {size}")
    return raw.hex()


def _status(code: Any) -> str:
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if isinstance(code, int) and 0 <= code < len(_STATUS_NAMES):
        return _STATUS_NAMES[code]
    name = str(code).removeprefix("STATUS_CODE_")
    if name not in _STATUS_NAMES:
        raise ValueError(f"unknown status code {code!r}")
    return name


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair["key"]: _value(pair.get("value") or {}) for pair in pairs or ()}


def _value(value: dict[str, Any]) -> Any:
    """An OTLP AnyValue as the python value the SDK held (arrays as lists, as trace_store keeps them)."""
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])  # a string in JSON: int64 does not fit a JavaScript number
    if "doubleValue" in value:
        return float(value["doubleValue"])  # "NaN" and "Infinity" arrive as strings, which float() reads
    if "arrayValue" in value:
        return [_value(item) for item in (value["arrayValue"] or {}).get("values") or ()]
    if "kvlistValue" in value:
        return _attributes((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"])
    return None
