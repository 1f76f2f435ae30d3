"""Reading one trace from Tempo's HTTP API: a local server plays Tempo, with OTLP JSON of real SDK spans."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow_obs.observability.console.tempo import TraceUnavailable, fetch_trace
from airflow_obs.observability.trace_store import DAG_ID, SpanEvent, SpanRecord
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@dataclass
class FakeTempo:
    """What the server answers next, and the requests it was sent (path, Accept header)."""

    url: str = ""
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    requests: list[tuple[str, str]] = field(default_factory=list)

    def answer(self, status: int, body: bytes | str | dict, content_type: str = "application/json") -> None:
        self.status, self.content_type = status, content_type
        if isinstance(body, dict):
            body = json.dumps(body)
        self.body = body.encode() if isinstance(body, str) else body


@pytest.fixture
def tempo() -> Iterator[FakeTempo]:
    fake = FakeTempo()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append((self.path, self.headers.get("Accept", "")))
            self.send_response(fake.status)
            self.send_header("Content-Type", fake.content_type)
            self.send_header("Content-Length", str(len(fake.body)))
            self.end_headers()
            self.wfile.write(fake.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def real_spans() -> list[ReadableSpan]:
    """A run span and a failed child, recorded by the OTel SDK the way the plugin records them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "airflow"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("observability")
    attributes = {DAG_ID: "etl_orders", "airflow.try_number": 0, "airflow.retried": False, "rows": [3, 1], "ratio": 0.5}
    with (
        tracer.start_as_current_span("run etl_orders", attributes=attributes),
        tracer.start_as_current_span("load try 1") as child,
    ):
        try:
            raise ValueError("3 rows failed the check")
        except ValueError as error:
            child.record_exception(error)
        child.set_status(Status(StatusCode.ERROR, "ValueError: 3 rows failed the check"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def by_id(records: list[SpanRecord]) -> dict[str, SpanRecord]:
    return {record.span_id: record for record in records}


def test_a_trace_reads_back_as_the_same_records_the_local_store_keeps_for_its_spans(tempo: FakeTempo) -> None:
    spans = real_spans()
    tempo.answer(200, {"batches": MessageToDict(encode_spans(spans))["resourceSpans"]})
    trace_id = format(spans[0].context.trace_id, "032x")

    records = fetch_trace(tempo.url, trace_id)

    assert by_id(records) == by_id([SpanRecord.from_span(span) for span in spans])
    assert tempo.requests == [(f"/api/traces/{trace_id}", "application/json")]
    run, load = sorted(records, key=lambda record: record.parent_span_id is not None)
    assert (run.parent_span_id, load.parent_span_id) == (None, run.span_id)
    assert run.attributes == {
        DAG_ID: "etl_orders", "airflow.try_number": 0, "airflow.retried": False, "rows": [3, 1], "ratio": 0.5
    }  # fmt: skip
    assert (load.status, load.status_description) == ("ERROR", "ValueError: 3 rows failed the check")
    assert [event.name for event in load.events] == ["exception"]
    assert load.events[0].attributes["exception.type"] == "ValueError"
    assert {record.service_name for record in records} == {"airflow"}


def test_older_tempo_shapes_with_hex_ids_and_numeric_status_codes_read_the_same(tempo: FakeTempo) -> None:
    tempo.answer(
        200,
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "scheduler"}}]},
                    "instrumentationLibrarySpans": [
                        {
                            "instrumentationLibrary": {"name": "observability"},
                            "spans": [
                                {
                                    "traceId": TRACE_ID.upper(),
                                    "spanId": "00f067aa0ba902b7",
                                    "parentSpanId": "",
                                    "name": "run etl_orders",
                                    "startTimeUnixNano": 1700000000000000000,
                                    "endTimeUnixNano": "1700000004000000000",
                                    "attributes": [
                                        {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                                        {"key": "ratio", "value": {"doubleValue": 0.25}},
                                        {"key": "size", "value": {"intValue": "12"}},
                                        {
                                            "key": "owner",
                                            "value": {
                                                "kvlistValue": {
                                                    "values": [{"key": "team", "value": {"stringValue": "data"}}]
                                                }
                                            },
                                        },  # fmt: skip
                                    ],
                                    "status": {"code": 1},
                                },
                                {
                                    "traceId": TRACE_ID,
                                    "spanId": "b7ad6b7169203331",
                                    "parentSpanId": "00f067aa0ba902b7",
                                    "name": "extract try 1",
                                    "startTimeUnixNano": "1700000001000000000",
                                    "endTimeUnixNano": "1700000002000000000",
                                    "events": [{"timeUnixNano": 1700000001500000000, "name": "retry"}],
                                },
                            ],
                        }
                    ],
                }
            ]
        },
    )

    run, extract = fetch_trace(tempo.url, TRACE_ID)

    assert run == SpanRecord(
        trace_id=TRACE_ID, span_id="00f067aa0ba902b7", parent_span_id=None, name="run etl_orders",
        start_time_unix_nano=1700000000000000000, end_time_unix_nano=1700000004000000000, status="OK",
        attributes={"tags": ["a"], "ratio": 0.25, "size": 12, "owner": {"team": "data"}}, service_name="scheduler",
    )  # fmt: skip
    assert extract == SpanRecord(
        trace_id=TRACE_ID, span_id="b7ad6b7169203331", parent_span_id="00f067aa0ba902b7", name="extract try 1",
        start_time_unix_nano=1700000001000000000, end_time_unix_nano=1700000002000000000, status="UNSET",
        events=(SpanEvent("retry", 1700000001500000000),), service_name="scheduler",
    )  # fmt: skip


def test_tempo_is_asked_directly_even_when_the_environment_names_a_proxy(
    tempo: FakeTempo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # the discard port: a proxied request would fail
    tempo.answer(200, {"batches": []})

    assert fetch_trace(tempo.url, TRACE_ID) == []
    assert tempo.requests == [(f"/api/traces/{TRACE_ID}", "application/json")]


def test_a_trace_tempo_does_not_have_is_unavailable_and_named(tempo: FakeTempo) -> None:
    tempo.answer(404, "trace not found", "text/plain")

    with pytest.raises(
        TraceUnavailable, match=re.escape(f"trace {TRACE_ID} not found in Tempo at {tempo.url}/api/traces/{TRACE_ID}")
    ):
        fetch_trace(tempo.url + "/", TRACE_ID)


def test_a_tempo_error_reports_its_status_and_the_start_of_its_body(tempo: FakeTempo) -> None:
    tempo.answer(500, "rpc error: code = Unavailable desc = ingester down " + "x" * 500, "text/plain")

    with pytest.raises(TraceUnavailable) as raised:
        fetch_trace(tempo.url, TRACE_ID)

    message = str(raised.value)
    assert tempo.url in message and "HTTP 500" in message
    assert "rpc error: code = Unavailable desc = ingester down" in message
    assert "x" * 200 not in message  # the excerpt stops at 200 characters


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("<html>502 Bad Gateway</html>", "not JSON"),
        ('["not", "a", "trace"]', "not an OTLP trace"),
        ('{"data": []}', "not an OTLP trace"),
        ('{"batches": [{"scopeSpans": [{"spans": [{"traceId": "not an id!", "spanId": "x"}]}]}]}', "not an OTLP"),
    ],
)
def test_a_body_that_is_not_a_trace_is_unavailable_rather_than_half_read(
    tempo: FakeTempo, body: str, complaint: str
) -> None:
    tempo.answer(200, body)

    with pytest.raises(TraceUnavailable, match=complaint):
        fetch_trace(tempo.url, TRACE_ID)


def test_a_server_that_never_answers_ends_in_unavailable_within_the_timeout() -> None:
    # A listening socket nobody reads: the kernel completes the connection, and no answer ever comes.
    silent = socket.socket()
    try:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        with pytest.raises(
            TraceUnavailable, match=re.escape(f"cannot reach Tempo at {url}/") + ".*no complete answer within 0.5 s"
        ):
            fetch_trace(url, TRACE_ID, timeout=0.5)
    finally:
        silent.close()


def test_a_body_dripping_in_slower_than_the_timeout_ends_in_unavailable() -> None:
    # Each byte comes well within the socket timeout, so only a bound on the whole read stops this.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not stop.wait(0.05):
                connection.sendall(b" ")

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with pytest.raises(TraceUnavailable, match=re.escape(f"cannot reach Tempo at {url}/") + ".*within 0.5 s"):
            fetch_trace(url, TRACE_ID, timeout=0.5)
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_a_tempo_that_is_not_running_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free now, and closed: nothing listens there

    with pytest.raises(
        TraceUnavailable, match=re.escape(f"cannot reach Tempo at http://127.0.0.1:{port}/") + ".*refused"
    ):
        fetch_trace(f"http://127.0.0.1:{port}", TRACE_ID, timeout=0.5)


@pytest.mark.parametrize("bad", ["", "00f067aa0ba902b7", TRACE_ID + "0", "../../api/echo" + "0" * 18, "g" * 32])
def test_a_trace_id_that_is_not_32_hex_digits_is_refused_before_any_request(tempo: FakeTempo, bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{bad!r}") + ".*expected 32 hex digits"):
        fetch_trace(tempo.url, bad)

    assert tempo.requests == []
