"""The tracer without Airflow running: the spans of a run and its tries, events, modes, and failures that must
not escape."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from airflow_obs.observability import trace_context, trace_provider, tracing
from airflow_obs.observability.events import TaskEvent
from airflow_obs.observability.settings import settings
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.unit.trace_helpers import RUN_ID, T0, by_name, run_event, task_event


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
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__LOG_FORMAT", "xml")
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


def test_a_page_becomes_an_event_of_the_failed_trys_span(traces_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_obs.observability.notify import router
    from airflow_obs.observability.paging import page_task_failure

    monkeypatch.setattr(router, "_recent", type(router._recent)())
    for sink in ("SLACK", "SMTP", "WEBHOOK"):  # no sink, no Alertmanager: the page goes nowhere, and says so
        monkeypatch.setenv(f"AIRFLOW_OBS_{sink}_CONN_ID", "")
    settings.cache_clear()
    failed = task_event("load", state="failed", error="RuntimeError: down")
    tracing.record_task_event(task_event("load", state="running"))

    page_task_failure(failed)
    tracing.record_task_event(failed)

    (event,) = [e for e in by_name(traces_file)["load try 1"].events if e.name == "notification"]
    assert event.attributes["airflow_obs.alert"] == "AirflowTaskFailed"
    assert event.attributes["airflow_obs.routed_to"] == "nowhere"
