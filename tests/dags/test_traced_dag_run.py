"""A real DAG run under dag.test(), with Airflow's own listener hooks driving the tracer: the span tree it leaves."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from airflow.listeners import hookimpl
from airflow_obs.observability import trace_context, tracing
from airflow_obs.observability.events import DagRunEvent, TaskEvent
from airflow_obs.observability.trace_store import SpanRecord, read_spans

from tests.dags.conftest import task_states

DAG_ID = "obs_tracing_probe"


def build_probe_dag():
    """extract (records a data-quality result) -> flaky (fails its first try) and broken (always fails).

    Written to the metadata DB as if parsed from the dags folder: dag.test() only runs serialized DAGs.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    def extract(**context):
        tracing.add_event(TaskEvent.from_context(context), "data quality", {"rows": 3, "passed": True})

    def flaky(**context):
        if context["ti"].try_number == 1:
            raise ValueError("first try fails")

    def broken():
        raise RuntimeError("source is down")

    def notify(context):  # stands in for the notifications engineer's failure callback
        tracing.add_event(TaskEvent.from_context(context, state="failed"), "notification sent", {"channel": "slack"})

    with DAG(
        DAG_ID,
        schedule=None,
        tags=["team:data"],
        default_args={"owner": "alice", "retries": 0, "retry_delay": timedelta(0)},
    ) as dag:
        first = PythonOperator(task_id="extract", python_callable=extract)
        second = PythonOperator(task_id="flaky", python_callable=flaky, retries=1)
        third = PythonOperator(task_id="broken", python_callable=broken, on_failure_callback=notify)
        first >> [second, third]
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(Path(__file__).parent / "no-such-folder"), collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag


class TracingListener:
    """What the plugin's listeners do for tracing: each hook turns its object into an event and records it."""

    @hookimpl
    def on_task_instance_running(self, previous_state, task_instance):
        tracing.record_task_event(TaskEvent.from_task_instance(task_instance, state="running"))

    @hookimpl
    def on_task_instance_success(self, previous_state, task_instance):
        tracing.record_task_event(TaskEvent.from_task_instance(task_instance, state="success"))

    @hookimpl
    def on_task_instance_failed(self, previous_state, task_instance, error):
        # The state tells a retry from a final failure.
        tracing.record_task_event(TaskEvent.from_task_instance(task_instance, error=error))

    @hookimpl
    def on_dag_run_success(self, dag_run, msg):
        tracing.record_dag_run_event(DagRunEvent.from_dag_run(dag_run, state="success", msg=msg))

    @hookimpl
    def on_dag_run_failed(self, dag_run, msg):
        tracing.record_dag_run_event(DagRunEvent.from_dag_run(dag_run, state="failed", msg=msg))


@pytest.fixture
def only_our_listener(airflow_db):
    """Our listener alone on both of Airflow's listener managers (the Task SDK's fires the task hooks).

    Whatever the plugin registers is set aside, so its own tracing calls cannot double the spans.
    """
    from airflow.listeners.listener import get_listener_manager as core_manager
    from airflow.sdk.listener import get_listener_manager as sdk_manager

    listener = TracingListener()
    saved = []
    for manager in (core_manager(), sdk_manager()):
        plugins = manager.pm.get_plugins()
        for plugin in plugins:
            manager.pm.unregister(plugin)
        manager.add_listener(listener)
        saved.append((manager, plugins))
    yield
    for manager, plugins in saved:
        manager.pm.unregister(listener)
        for plugin in plugins:
            manager.add_listener(plugin)


def spans_by_name(path: Path) -> dict[str, SpanRecord]:
    spans = list(read_spans(path))
    by_name = {span.name: span for span in spans}
    assert len(by_name) == len(spans), f"a span was emitted twice: {[s.name for s in spans]}"
    return by_name


def test_a_run_leaves_one_trace_run_span_over_one_span_per_try(traces_file, only_our_listener) -> None:
    dag_run = build_probe_dag().test()
    assert task_states(dag_run) == {"extract": "success", "flaky": "success", "broken": "failed"}

    spans = spans_by_name(traces_file)
    assert set(spans) == {f"run {DAG_ID}", "extract try 1", "flaky try 1", "flaky try 2", "broken try 1"}
    run = spans[f"run {DAG_ID}"]
    assert {span.trace_id for span in spans.values()} == {tracing.trace_id_for_run(DAG_ID, dag_run.run_id)}
    assert run.parent_span_id is None
    for name, span in spans.items():
        if span is run:
            continue
        task_id, try_number = name.split(" try ")
        assert span.parent_span_id == run.span_id, name
        assert span.span_id == tracing.span_id_for_try(DAG_ID, dag_run.run_id, task_id, -1, int(try_number)), name
        assert run.start_time_unix_nano <= span.start_time_unix_nano <= span.end_time_unix_nano


def test_each_try_carries_its_outcome_attributes_and_events(traces_file, only_our_listener) -> None:
    dag_run = build_probe_dag().test()
    spans = spans_by_name(traces_file)

    retried, retry, broken = spans["flaky try 1"], spans["flaky try 2"], spans["broken try 1"]
    assert (retried.status, retry.status, broken.status) == ("ERROR", "OK", "ERROR")
    assert retried.attributes["airflow.task_instance.state"] == "up_for_retry"
    assert retried.attributes["airflow_obs.will_retry"] is True
    assert [(e.name, e.attributes["exception.type"]) for e in retried.events] == [("exception", "ValueError")]
    assert retried.events[0].attributes["exception.message"] == "first try fails"
    assert broken.attributes["airflow.task_instance.state"] == "failed"
    # The failure callback ran before the listener ended the span: its event is on the span.
    assert [e.name for e in broken.events] == ["notification sent", "exception"]
    assert broken.events[1].attributes == {"exception.type": "RuntimeError", "exception.message": "source is down"}

    extract = spans["extract try 1"]
    assert extract.status == "OK" and extract.events[0].name == "data quality"
    assert extract.events[0].attributes == {"rows": 3, "passed": True}
    assert (
        extract.attributes
        | {
            "airflow.dag_id": DAG_ID,
            "airflow.dag_run.run_id": dag_run.run_id,
            "airflow.task_id": "extract",
            "airflow.task_instance.try_number": 1,
            "airflow.task_instance.map_index": -1,
            "airflow_obs.owner": "alice",
            "airflow_obs.team": "data",
            "airflow_obs.pool": "default_pool",
            "airflow_obs.queue": "default",
        }
        == extract.attributes
    )
    assert 0 <= extract.attributes["airflow_obs.duration_seconds"] == pytest.approx(extract.duration_seconds, abs=1e-3)

    run = spans[f"run {DAG_ID}"]
    assert run.status == "ERROR" and run.attributes["airflow.dag_run.state"] == "failed"
    assert run.attributes["airflow_obs.team"] == "data"
    assert run.attributes["airflow_obs.duration_seconds"] == pytest.approx(run.duration_seconds, abs=1e-3)


def test_with_airflow_tracing_on_the_spans_join_the_trace_in_the_runs_carrier(
    traces_file, only_our_listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.taskinstance import TaskInstance

    monkeypatch.setenv("AIRFLOW__TRACES__OTEL_ON", "True")
    trace_context.clear_caches()
    dag_run = build_probe_dag().test()

    trace_id, run_parent = trace_context.ids_from_carrier(dag_run.context_carrier)
    spans = spans_by_name(traces_file)
    assert {span.trace_id for span in spans.values()} == {format(trace_id, "032x")}
    assert tracing.trace_id_for_run(DAG_ID, dag_run.run_id) == format(trace_id, "032x")
    assert spans[f"run {DAG_ID}"].parent_span_id == format(run_parent, "016x")  # under Airflow's dag_run span
    # dag.test() runs tries without a worker span, so a try hangs under its task_run span (the TI's carrier).
    extract = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "extract")
    assert isinstance(extract, TaskInstance)
    _, task_run = trace_context.ids_from_carrier(extract.context_carrier)
    assert spans["extract try 1"].parent_span_id == format(task_run, "016x")


def test_reading_a_runs_carrier_leaves_the_callers_session_usable(
    traces_file, only_our_listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener hooks run inside the scheduler's scoped session: our DB read must not commit or close it
    (it once did, and the scheduler died with DetachedInstanceError on the run it was starting)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag_run = build_probe_dag().test()
    monkeypatch.setenv("AIRFLOW__TRACES__OTEL_ON", "True")
    trace_context.clear_caches()

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == dag_run.run_id))
        placement = trace_context.place_run_span(DAG_ID, run.run_id)
        assert run in session  # closing the session would have detached it, as it detached the scheduler's run
        assert run.state == dag_run.state
    assert placement.trace_id == trace_context.ids_from_carrier(dag_run.context_carrier)[0]
