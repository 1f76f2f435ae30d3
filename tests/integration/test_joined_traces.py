"""With Airflow's tracing on, the plugin's spans join Airflow's trace of the run, under the real components.

The shared run (the session fixture `airflow_telemetry`, see airflow_telemetry.py) has `[traces] otel_on` and
sends Airflow's spans and ours to one loopback OTLP/HTTP receiver. Airflow 3.3 gives each DAG run one trace,
kept as a W3C traceparent in `dag_run.context_carrier`: `dag_run.<dag>` (scheduler) -> `task_run.<task>`
(api-server) -> `worker.<task>` (task runner). docs/tracing.md promises that, with tracing on, our `run <dag>`
span is a child of `dag_run.<dag>`, each `<task> try <n>` span a child of that try's `worker.<task>`, and the
trace id is the carrier's. Checked here for the `statsd_probe` run (a task that succeeds, one that fails).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import pytest

from tests.integration.airflow_telemetry import PROBE_DAG, CapturedSpan, TelemetryRun, span_dump

pytestmark = pytest.mark.integration

OUR_SERVICE = "airflow-obs"  # the plugin's service.name when OTEL_SERVICE_NAME names none


@dataclass(frozen=True)
class ProbeRun:
    """The statsd_probe run as the metadata DB keeps it: its id and the ids of its trace carrier."""

    run_id: str
    trace_id: str  # 32 hex digits
    dag_run_span_id: str  # 16 hex digits: the span id Airflow gives `dag_run.<dag>`


def parse_traceparent(column: str) -> tuple[str, str]:
    """(trace id, span id) of a W3C carrier: {"traceparent": "00-<trace>-<span>-<flags>"}.

    The column is Airflow's ExtendedJSON: the dict comes wrapped as {"__var": {...}, "__type": "dict"}.
    """
    carrier = json.loads(column)
    if carrier.get("__type") == "dict":
        carrier = carrier["__var"]
    version, trace_id, span_id, _flags = carrier["traceparent"].split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16, carrier
    return trace_id, span_id


@pytest.fixture(scope="module")
def probe_run(airflow_telemetry: TelemetryRun) -> ProbeRun:
    # Read after every component stopped, so nothing writes to the file any more.
    with sqlite3.connect(f"file:{airflow_telemetry.metadata_db}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT run_id, context_carrier FROM dag_run WHERE dag_id = ?", (PROBE_DAG,)).fetchall()
    assert len(rows) == 1, f"expected one {PROBE_DAG} run (catchup off), found {rows}"
    run_id, carrier = rows[0]
    trace_id, span_id = parse_traceparent(carrier)
    return ProbeRun(run_id, trace_id, span_id)


@pytest.fixture(scope="module")
def run_spans(airflow_telemetry: TelemetryRun, probe_run: ProbeRun) -> list[CapturedSpan]:
    """Every captured span of the probe run, Airflow's and ours: both carry Airflow's dag and run id attributes."""
    return [
        span
        for span in airflow_telemetry.spans
        if span.attributes.get("airflow.dag_id") == PROBE_DAG
        and span.attributes.get("airflow.dag_run.run_id") == probe_run.run_id
    ]


def the_span(spans: list[CapturedSpan], name: str) -> CapturedSpan:
    """The one span of the run with this name (a second copy would be a span emitted twice)."""
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, f"{len(found)} spans named {name!r} in the run; {span_dump(spans)}"
    return found[0]


def test_airflow_sends_its_dag_run_task_run_and_worker_spans_in_the_trace_of_the_runs_carrier(
    run_spans, probe_run
) -> None:
    names = ["dag_run.statsd_probe", "task_run.succeeds", "worker.succeeds", "task_run.fails", "worker.fails"]
    trace_ids = {name: the_span(run_spans, name).trace_id for name in names}
    assert trace_ids == dict.fromkeys(names, probe_run.trace_id), span_dump(run_spans)


def test_airflows_spans_chain_dag_run_to_task_run_to_worker_with_the_carriers_span_id_at_the_top(
    run_spans, probe_run
) -> None:
    """What our parents rely on: `dag_run.<dag>` takes the carrier's span id, `worker.<task>` is its try's."""
    dag_run = the_span(run_spans, "dag_run.statsd_probe")
    assert (dag_run.span_id, dag_run.parent_span_id) == (probe_run.dag_run_span_id, ""), span_dump(run_spans)
    for task_id in ("succeeds", "fails"):
        task_run = the_span(run_spans, f"task_run.{task_id}")
        worker = the_span(run_spans, f"worker.{task_id}")
        assert task_run.parent_span_id == dag_run.span_id, span_dump(run_spans)
        assert worker.parent_span_id == task_run.span_id, span_dump(run_spans)
        assert worker.attributes.get("airflow.task_instance.try_number") == 1, worker


def test_our_run_span_is_in_the_carriers_trace_and_a_child_of_airflows_dag_run_span(run_spans, probe_run) -> None:
    ours = the_span(run_spans, "run statsd_probe")
    dag_run = the_span(run_spans, "dag_run.statsd_probe")
    assert ours.service_name == OUR_SERVICE, ours
    assert (ours.trace_id, ours.parent_span_id) == (probe_run.trace_id, dag_run.span_id), span_dump(run_spans)


def test_our_run_span_is_an_error_because_a_task_failed(run_spans) -> None:
    ours = the_span(run_spans, "run statsd_probe")
    assert (ours.status, ours.attributes.get("airflow.dag_run.state")) == ("ERROR", "failed"), ours


@pytest.mark.parametrize("task_id", ["succeeds", "fails"])
def test_each_try_span_is_a_child_of_the_worker_span_its_try_ran_in(run_spans, probe_run, task_id) -> None:
    ours = the_span(run_spans, f"{task_id} try 1")
    worker = the_span(run_spans, f"worker.{task_id}")
    assert ours.service_name == OUR_SERVICE, ours
    assert (ours.trace_id, ours.parent_span_id) == (probe_run.trace_id, worker.span_id), span_dump(run_spans)


def test_the_successful_try_span_is_ok(run_spans) -> None:
    ours = the_span(run_spans, "succeeds try 1")
    assert (ours.status, ours.attributes.get("airflow.task_instance.state")) == ("OK", "success"), ours
    assert [name for name, _ in ours.events if name == "exception"] == [], ours


def test_the_failed_try_span_is_an_error_carrying_the_tasks_exception(run_spans) -> None:
    ours = the_span(run_spans, "fails try 1")
    assert (ours.status, ours.attributes.get("airflow.task_instance.state")) == ("ERROR", "failed"), ours
    assert "fails on purpose" in ours.status_message, ours
    exceptions = [attributes for name, attributes in ours.events if name == "exception"]
    assert exceptions == [
        {"exception.type": "RuntimeError", "exception.message": "fails on purpose: the run must end failed"}
    ], ours


def test_every_span_of_the_run_ours_and_airflows_is_in_the_one_trace_of_its_carrier(
    airflow_telemetry, run_spans, probe_run
) -> None:
    ours = [span for span in run_spans if span.service_name == OUR_SERVICE]
    # Our three (run, two tries) at least, and Airflow's five: an empty capture must not pass.
    assert len(ours) >= 3 and len(run_spans) - len(ours) >= 5, span_dump(airflow_telemetry.spans)
    assert {span.trace_id for span in run_spans} == {probe_run.trace_id}, span_dump(run_spans)


def test_no_span_of_ours_for_the_dag_lands_in_a_trace_of_its_own(airflow_telemetry, probe_run) -> None:
    """Also spans without the run id attribute: a span of ours in a separate (e.g. derived) trace would show here."""
    ours = [
        span
        for span in airflow_telemetry.spans
        if span.service_name == OUR_SERVICE and span.attributes.get("airflow.dag_id") == PROBE_DAG
    ]
    assert ours, span_dump(airflow_telemetry.spans)
    assert {span.trace_id for span in ours} == {probe_run.trace_id}, span_dump(ours)
