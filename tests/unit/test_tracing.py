"""Tracing without Airflow running: ids, the JSONL store, the waterfall, the CLI, and failures that must not escape."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from observability import trace_context, trace_provider, tracing
from observability.events import DagRunEvent, TaskEvent
from observability.settings import settings
from observability.trace_store import JsonlSpanExporter, SpanEvent, SpanRecord, read_spans, run_traces
from observability.waterfall import render_waterfall
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from airflow_obs.cli import main

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
RUN_ID = "manual__2026-01-05T06:00:00+00:00"
OTLP_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_TRACES_EXPORTER",
    "AIRFLOW__TRACES__OTEL_ON",
)


@pytest.fixture
def traces_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private JSONL store, and a tracer and settings built afresh for it (both are per process)."""
    path = tmp_path / "traces.jsonl"
    monkeypatch.setenv("AIRFLOW_OBS_TRACES_FILE", str(path))
    for variable in OTLP_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    settings.cache_clear()
    tracing.reset_tracer()
    yield path
    tracing.reset_tracer()
    settings.cache_clear()


def task_event(task_id="extract", try_number=1, state="success", start=0.0, end=1.0, error="", map_index=-1):
    return TaskEvent(
        dag_id="etl_orders",
        run_id=RUN_ID,
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        max_tries=1,
        state=state,
        owner="data-eng",
        team="data",
        pool="default_pool",
        queue="default",
        hostname="worker-1",
        start_date=T0 + timedelta(seconds=start),
        end_date=T0 + timedelta(seconds=end),
        queued_dttm=T0 + timedelta(seconds=start - 0.5),
        error=error,
    )


def run_event(state="success", end=4.0, error=""):
    return DagRunEvent(
        dag_id="etl_orders",
        run_id=RUN_ID,
        state=state,
        run_type="manual",
        owner="data-eng",
        team="data",
        start_date=T0,
        end_date=T0 + timedelta(seconds=end),
        error=error,
    )


def by_name(path: Path) -> dict[str, SpanRecord]:
    return {span.name: span for span in read_spans(path)}


# ------------------------------------------------------------------------------------------------ ids
def test_trace_and_span_ids_are_derived_from_the_run_and_try_alone() -> None:
    trace_id = tracing.trace_id_for_run("etl_orders", "manual__1")

    # The documented formula, pinned: the exporter and old alerts compute this id on their own.
    assert trace_id == hashlib.sha256(b"14:airflow-obs/v1,5:trace,10:etl_orders,9:manual__1,").hexdigest()[:32]
    assert trace_id == "7c71993c3d06c2e56a8dc2078458d4f4"
    assert tracing.trace_id_for_run("etl_orders", "manual__1") == trace_id
    assert tracing.trace_id_for_run("etl_orders", "manual__2") != trace_id
    assert tracing.span_id_for_try("etl_orders", "manual__1", "load", -1, 1) == "fe05bd15bde1fbf0"
    assert tracing.span_id_for_try("etl_orders", "manual__1", "load", -1, 2) != "fe05bd15bde1fbf0"
    assert tracing.span_id_for_try("etl_orders", "manual__1", "load", 0, 1) != "fe05bd15bde1fbf0"


def test_the_ids_make_a_valid_w3c_traceparent() -> None:
    trace_id = tracing.trace_id_for_run("etl_orders", "manual__1")
    span_id = tracing.span_id_for_try("etl_orders", "manual__1", "load", -1, 1)
    assert len(trace_id) == 32 and len(span_id) == 16 and trace_id == trace_id.lower()

    from opentelemetry import trace

    carrier = {"traceparent": f"00-{trace_id}-{span_id}-01"}
    context = trace.get_current_span(TraceContextTextMapPropagator().extract(carrier)).get_span_context()
    assert context.is_valid
    assert (format(context.trace_id, "032x"), format(context.span_id, "016x")) == (trace_id, span_id)


def test_ids_of_odd_names_are_ids_too() -> None:
    for dag_id, run_id in [("", ""), ("dag\x00x", "run"), ("d", "r" * 10_000), ("dåg", "run:+/ 1")]:
        assert len(tracing.trace_id_for_run(dag_id, run_id)) == 32
    assert tracing.trace_id_for_run("a\x00b", "c") != tracing.trace_id_for_run("a", "b\x00c")


# ------------------------------------------------------------------------------------------------ store
def test_a_span_written_to_jsonl_reads_back_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "spans.jsonl"
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(JsonlSpanExporter(path)))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    parent = tracer.start_span("run", start_time=1_000)
    child = tracer.start_span("try", context=__import__("opentelemetry").trace.set_span_in_context(parent))
    child.set_attributes({"airflow.dag_id": "d", "count": 3, "ratio": 0.5, "ok": True, "tags": ("a", "b")})
    child.add_event("data quality", {"rows": 3, "note": 'ünïcode "quoted"\nnewline'}, timestamp=2_000)
    child.set_status(Status(StatusCode.ERROR, "boom"))
    child.end(end_time=3_000)
    parent.end(end_time=4_000)

    written = [SpanRecord.from_span(span) for span in memory.get_finished_spans()]
    read = list(read_spans(path))
    assert read == written
    assert read[0].parent_span_id == read[1].span_id and read[1].parent_span_id is None
    assert read[0].events == (SpanEvent("data quality", 2_000, {"rows": 3, "note": 'ünïcode "quoted"\nnewline'}),)
    assert read[0].attributes["tags"] == ["a", "b"] and read[0].status == "ERROR"
    assert read[0].status_description == "boom"


def test_a_torn_line_is_skipped_and_the_rest_is_read(tmp_path: Path) -> None:
    good = SpanRecord("a" * 32, "b" * 16, None, "run x", 0, 1, "OK", attributes={"airflow.dag_id": "x"})
    path = tmp_path / "spans.jsonl"
    line = json.dumps(good.to_json())
    path.write_text(f"{line}\n{line[:40]}\nnot json\n{{}}\n{line}\n")
    assert list(read_spans(path)) == [good, good]


def test_run_traces_groups_a_runs_spans_and_keeps_the_last_version_of_a_span() -> None:
    def span(trace_id, span_id, run_id, status="OK"):
        attributes = {"airflow.dag_id": "d", "airflow.dag_run.run_id": run_id}
        return SpanRecord(trace_id, span_id, None, "s", 0, 1, status, attributes=attributes)

    spans = [span("t1", "s1", "r1"), span("t1", "s2", "r1"), span("t2", "s3", "r2"), span("t1", "s1", "r1", "ERROR")]
    traces = run_traces(spans, "d", "r1")
    assert list(traces) == ["t1"]
    assert [(s.span_id, s.status) for s in traces["t1"]] == [("s1", "ERROR"), ("s2", "OK")]


# ------------------------------------------------------------------------------------------------ waterfall
def record(name, span_id, parent, start, end, status="OK", events=()):
    attributes = {"airflow.dag_id": "etl", "airflow.dag_run.run_id": "manual__1"}
    s = 1_000_000_000
    return SpanRecord("0f" * 16, span_id, parent, name, int(start * s), int(end * s), status, "", attributes, events)


def test_the_waterfall_of_a_known_tree() -> None:
    spans = [
        record("load try 2", "04", "01", 2, 4),
        record("run etl", "01", None, 0, 4),
        record("notification sent", "05", "03", 2, 2, status="UNSET"),
        record("extract try 1", "02", "01", 0, 1, events=(SpanEvent("data quality", 500_000_000, {"rows": 3}),)),
        record(
            "load try 1",
            "03",
            "01",
            1,
            2,
            "ERROR",
            (SpanEvent("exception", 2_000_000_000, {"exception.type": "ValueError", "exception.message": "boom"}),),
        ),
    ]

    assert render_waterfall(spans, bar_width=20) == "\n".join(
        [
            "trace 0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f · etl · manual__1 · 4.00s · 5 spans",
            "run etl                  OK       4.00s |████████████████████|",
            "├─ extract try 1         OK       1.00s |█████               |",
            "│       • data quality +500ms rows=3",
            "├─ load try 1            ERROR    1.00s |     █████          |",
            "│       ! ValueError: boom",
            "│  └─ notification sent             0ms |          ▏         |",
            "└─ load try 2            OK       2.00s |          ██████████|",
        ]
    )


def test_a_span_whose_parent_is_elsewhere_is_a_root_that_names_its_parent() -> None:
    text = render_waterfall([record("extract try 1", "02", "00f067aa0ba902b7", 0, 1)], bar_width=4)
    assert "extract try 1 (under 00f067aa0ba902b7)  OK" in text
    assert render_waterfall([]) == "(no spans)"


# ------------------------------------------------------------------------------------------------ tracer
def test_a_run_and_its_tries_make_one_tree_with_derived_ids(traces_file: Path) -> None:
    tracing.record_task_event(task_event("extract", state="running"))
    tracing.add_event(task_event("extract", state="running"), "data quality", {"rows": 3, "passed": True})
    tracing.record_task_event(task_event("extract", end=1))
    tracing.record_task_event(task_event("load", 1, "up_for_retry", 1, 2, error="ValueError: no rows"))
    tracing.record_task_event(task_event("load", 2, "success", 2.5, 4))
    tracing.record_dag_run_event(run_event())

    spans = by_name(traces_file)
    assert set(spans) == {"run etl_orders", "extract try 1", "load try 1", "load try 2"}
    run = spans["run etl_orders"]
    assert {span.trace_id for span in spans.values()} == {tracing.trace_id_for_run("etl_orders", RUN_ID)}
    assert run.parent_span_id is None and run.status == "OK" and run.duration_seconds == 4.0
    for name, task_id, try_number in [
        ("extract try 1", "extract", 1),
        ("load try 1", "load", 1),
        ("load try 2", "load", 2),
    ]:
        span = spans[name]
        assert span.parent_span_id == run.span_id
        assert span.span_id == tracing.span_id_for_try("etl_orders", RUN_ID, task_id, -1, try_number)
    failed = spans["load try 1"]
    assert failed.status == "ERROR" and failed.status_description == "ValueError: no rows"
    assert failed.events[0].name == "exception"
    assert failed.events[0].attributes == {"exception.type": "ValueError", "exception.message": "no rows"}
    assert failed.attributes["airflow_obs.will_retry"] is True
    extract = spans["extract try 1"]
    assert extract.events[0].name == "data quality" and extract.events[0].attributes == {"rows": 3, "passed": True}
    assert extract.attributes["airflow_obs.queued_seconds"] == 0.5
    assert extract.attributes["airflow_obs.duration_seconds"] == 1.0
    assert extract.start_time_unix_nano == int(T0.timestamp()) * 1_000_000_000


def test_an_event_after_the_try_span_left_becomes_a_zero_length_child(traces_file: Path) -> None:
    tracing.record_task_event(task_event("load", state="failed", error="RuntimeError: down"))
    tracing.add_event(task_event("load", state="failed"), "notification sent", {"channels": ["slack", "email"]})

    spans = by_name(traces_file)
    sent = spans["notification sent"]
    assert sent.parent_span_id == spans["load try 1"].span_id
    assert sent.trace_id == spans["load try 1"].trace_id
    assert sent.duration_seconds == 0 and sent.attributes["channels"] == ["slack", "email"]
    assert sent.attributes["airflow.task_id"] == "load"


def test_secrets_in_errors_and_event_attributes_are_redacted(traces_file: Path) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret("hunter2-very-secret")
    tracing.record_task_event(task_event("load", state="failed", error="ValueError: password hunter2-very-secret"))
    tracing.add_event(task_event("load", state="failed"), "notification sent", {"url": "x hunter2-very-secret"})

    text = traces_file.read_text()
    assert "hunter2-very-secret" not in text and "ValueError" in text


def test_states_that_end_nothing_emit_nothing(traces_file: Path) -> None:
    tracing.record_task_event(task_event(state="running"))
    tracing.record_task_event(task_event(state="deferred"))
    tracing.record_dag_run_event(run_event(state="running"))
    assert not traces_file.exists()


def test_inside_airflows_worker_span_the_try_joins_airflows_trace(
    traces_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__TRACES__OTEL_ON", "True")
    trace_context.clear_caches()
    airflow_provider = TracerProvider(shutdown_on_exit=False)  # stands in for Airflow's global provider
    event = task_event("extract", state="success")
    worker_attributes = {
        "airflow.dag_id": event.dag_id,
        "airflow.dag_run.run_id": event.run_id,
        "airflow.task_id": event.task_id,
        "airflow.task_instance.try_number": event.try_number,
    }
    with airflow_provider.get_tracer("airflow").start_as_current_span("worker.extract", attributes=worker_attributes):
        from opentelemetry import trace

        worker = trace.get_current_span().get_span_context()
        tracing.record_task_event(event)
        assert tracing.trace_id_for_run(event.dag_id, event.run_id) == format(worker.trace_id, "032x")

    span = by_name(traces_file)["extract try 1"]
    assert span.trace_id == format(worker.trace_id, "032x")
    assert span.parent_span_id == format(worker.span_id, "016x")
    assert span.span_id == tracing.span_id_for_try(event.dag_id, event.run_id, "extract", -1, 1)


# ------------------------------------------------------------------------------------------------ exporters
@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "JsonlSpanExporter"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, "grpc"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "http"),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces",
                "OTEL_TRACES_EXPORTER": "otlp_proto_http",
            },
            "http",
        ),
    ],
)
def test_otlp_when_an_endpoint_is_set_else_the_jsonl_file(traces_file: Path, environment, expected) -> None:
    exporter, batched = trace_provider.choose_exporter(environment)
    assert expected in f"{type(exporter).__module__}.{type(exporter).__name__}"
    assert batched == (expected != "JsonlSpanExporter")
    if not batched:
        assert exporter.path == traces_file


# ------------------------------------------------------------------------------------------------ failures
def test_an_unwritable_store_fails_no_task_and_is_logged_once(traces_file: Path, caplog) -> None:
    traces_file.mkdir()  # a directory where the file should be
    with caplog.at_level(logging.WARNING, logger="airflow_obs.tracing"):
        for try_number in (1, 2, 3):
            tracing.record_task_event(task_event(try_number=try_number, state="failed", error="E: x"))
    assert len(caplog.records) == 1 and str(traces_file) in caplog.records[0].getMessage()


def test_an_error_inside_the_tracer_never_reaches_the_caller(
    traces_file: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("tracer bug")

    monkeypatch.setattr(trace_provider, "start_span", broken)
    with caplog.at_level(logging.WARNING, logger="airflow_obs.tracing"):
        for _ in range(2):
            tracing.record_task_event(task_event())
            tracing.record_dag_run_event(run_event())
            tracing.add_event(task_event(), "notification sent", {"x": object()})
    assert sorted(r.getMessage() for r in caplog.records) == [
        f"airflow_obs: tracing failed in {where} (the task is not affected)"
        for where in ("add_event", "record_dag_run_event", "record_task_event")
    ]


def test_bad_settings_or_bad_events_fail_nothing(traces_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_OBS_LOG_FORMAT", "xml")
    settings.cache_clear()
    tracing.record_task_event(task_event())
    odd = TaskEvent(*(None,) * 16)  # type: ignore[arg-type]
    tracing.record_task_event(odd)
    tracing.add_event(odd, "x", {})
    assert tracing.span_id_for_try("d", "r", "t", "not a number", None)  # type: ignore[arg-type]


def test_with_airflow_tracing_on_and_no_carrier_reachable_the_ids_fall_back(
    traces_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__TRACES__OTEL_ON", "True")
    monkeypatch.setattr(trace_context, "_carrier_from_db", lambda *a: (_ for _ in ()).throw(RuntimeError("no ORM")))
    trace_context.clear_caches()
    derived = trace_context.hex_trace_id(trace_context.derived_trace_id("d", "r"))
    assert tracing.trace_id_for_run("d", "r") == derived


def test_a_stalled_collector_holds_a_try_for_the_flush_bound_only(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stalled(SpanExporter):
        def export(self, spans):
            time.sleep(30)
            return SpanExportResult.SUCCESS

    monkeypatch.setattr(trace_provider, "choose_exporter", lambda: (Stalled(), True))
    monkeypatch.setattr(trace_provider, "FLUSH_TIMEOUT_SECONDS", 0.5)
    tracing.reset_tracer()
    try:
        # A try that ran here: its process is about to exit, so it waits for its span, up to the bound.
        tracing.record_task_event(task_event(state="running"))
        started = time.monotonic()
        tracing.record_task_event(task_event())
        assert 0.4 < time.monotonic() - started < 3
        # Someone else's try (a scheduler or api-server reporting it): no wait at all.
        started = time.monotonic()
        tracing.record_task_event(task_event("load", state="failed"))
        tracing.record_dag_run_event(run_event())
        tracing.add_event(task_event("load"), "notification sent", {})
        assert time.monotonic() - started < 0.3
    finally:
        trace_provider.STATE.tracer = trace_provider.STATE.provider = None  # its thread sleeps on: drop it


def test_the_state_survives_a_second_import_of_the_module(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("trace_provider_copy", trace_provider.__file__)
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    assert copy.STATE is trace_provider.STATE and copy.STATE.lock is trace_provider.STATE.lock


# ------------------------------------------------------------------------------------------------ CLI
def test_the_cli_prints_a_runs_waterfall(traces_file: Path, capsys) -> None:
    tracing.record_task_event(task_event("extract"))
    tracing.record_dag_run_event(run_event())
    with pytest.raises(SystemExit) as exited:
        main(["trace", "etl_orders", RUN_ID])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert out.splitlines()[0].startswith(f"trace {tracing.trace_id_for_run('etl_orders', RUN_ID)}")
    assert "run etl_orders" in out and "└─ extract try 1" in out


def test_the_cli_names_the_file_when_it_or_the_run_is_missing(traces_file: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["trace", "etl_orders", "nope"])
    assert exited.value.code == 1 and f"no trace file at {traces_file}" in capsys.readouterr().err

    tracing.record_dag_run_event(run_event())
    with pytest.raises(SystemExit) as exited:
        main(["trace", "etl_orders", "nope", "--file", str(traces_file)])
    err = capsys.readouterr().err
    assert exited.value.code == 1 and f"no spans of dag_id='etl_orders' run_id='nope' in {traces_file}" in err
