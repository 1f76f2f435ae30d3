"""Trace ids derived from the run alone, the JSONL span store, the terminal waterfall and `airflow-obs trace`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from airflow_obs.observability import tracing
from airflow_obs.observability.trace_store import JsonlSpanExporter, SpanEvent, SpanRecord, read_spans, run_traces
from airflow_obs.observability.waterfall import render_waterfall
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from airflow_obs.cli import main
from tests.unit.trace_helpers import RUN_ID, run_event, task_event


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
