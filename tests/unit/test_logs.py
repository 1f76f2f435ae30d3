"""The toolkit's log lines: JSON and text, only its own loggers intercepted, idempotent setup, redaction, ids."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk._shared.secrets_masker import mask_secret
from airflow_obs.observability import logs, tracing
from airflow_obs.observability.events import DagRunEvent, TaskEvent

START = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch):
    """JSON lines into a buffer, the toolkit's loggers at DEBUG; everything restored afterwards."""
    out = Captured()
    levels = {name: logging.getLogger(name).level for name in logs.TOOLKIT_LOGGERS}
    for name in logs.TOOLKIT_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logs.setup_logging("json", stream=out.stream)
    monkeypatch.setattr(logs._state, "task", {})
    monkeypatch.setattr(logs._state, "warned", set())
    yield out
    logs.setup_logging("json")
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def ti(state: str = "running", **overrides: Any) -> SimpleNamespace:
    task = SimpleNamespace(owner="data-eng", dag=SimpleNamespace(tags={"team:data-platform"}))
    values = {
        "dag_id": "etl_orders",
        "run_id": "scheduled__2026-11-20T03:00:00+00:00",
        "task_id": "load",
        "map_index": -1,
        "try_number": 2,
        "state": state,
        "task": task,
        "start_date": START,
        "end_date": START + timedelta(seconds=1.5),
    }
    return SimpleNamespace(**{**values, **overrides})


def task_event(state: str, error: Any = None, **overrides: Any) -> TaskEvent:
    return TaskEvent.from_task_instance(ti(**overrides), state=state, error=error)


def test_an_event_line_is_one_json_object_with_every_field(captured: Captured) -> None:
    logs.record_task_event(task_event("success"))

    (line,) = captured.lines()
    assert set(logs.FIELDS) <= set(line)
    assert line["ts"].endswith("Z") and datetime.fromisoformat(line["ts"]).tzinfo is not None
    assert (line["level"], line["message"], line["logger"]) == (
        "INFO",
        "task try succeeded",
        "airflow_obs.observability.listeners",
    )
    assert (line["dag_id"], line["task_id"], line["try_number"], line["state"]) == ("etl_orders", "load", 2, "success")
    assert (line["owner"], line["team"], line["duration_seconds"]) == ("data-eng", "data-platform", 1.5)


def test_event_lines_carry_the_trace_and_span_ids_tracing_gives_the_run_and_the_try(captured: Captured) -> None:
    logs.record_task_event(task_event("up_for_retry"))
    logs.record_dag_run_event(DagRunEvent.from_dag_run(SimpleNamespace(dag_id="etl_orders", run_id=ti().run_id)))

    try_line, run_line = captured.lines()
    trace_id = tracing.trace_id_for_run(dag_id="etl_orders", run_id=ti().run_id)
    assert trace_id and try_line["trace_id"] == trace_id == run_line["trace_id"]
    assert try_line["span_id"] == tracing.span_id_for_try(
        dag_id="etl_orders", run_id=ti().run_id, task_id="load", map_index=-1, try_number=2
    )
    assert (try_line["level"], try_line["message"]) == ("WARNING", "task try failed, will be retried")
    assert (run_line["task_id"], run_line["span_id"]) == ("", "")


def test_without_tracing_ids_the_lines_still_go_out_with_empty_ids(
    captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(tracing, "trace_id_for_run", raising=False)
    monkeypatch.delattr(tracing, "span_id_for_try", raising=False)

    logs.record_task_event(task_event("running"))

    (line,) = captured.lines()
    assert (line["trace_id"], line["span_id"], line["task_id"]) == ("", "", "load")


def test_a_tracing_error_costs_the_ids_not_the_line_and_is_reported_once(
    captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> str:
        raise ValueError("no trace store")

    monkeypatch.setattr(tracing, "trace_id_for_run", broken)

    logs.record_task_event(task_event("running"))
    logs.record_task_event(task_event("success"))

    lines = captured.lines()
    assert [line["message"] for line in lines if line["level"] == "WARNING"] == [
        "log lines go without trace ids: airflow_obs.observability.tracing could not give them"
    ]
    assert [line["trace_id"] for line in lines if line["logger"] == "airflow_obs.observability.listeners"] == [
        "",
        "",
        "",
    ]


def test_the_toolkits_standard_loggers_go_through_loguru_and_only_there(captured: Captured) -> None:
    seen_by_root: list[logging.LogRecord] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen_by_root.append(record)

    spy = Spy(level=logging.DEBUG)
    logging.getLogger().addHandler(spy)
    try:
        logging.getLogger("airflow_obs.callbacks").info("task_failed %s", "dag_id=etl_orders", extra={"run_id": "r1"})
        logging.getLogger("airflow_obs.observability.notify").debug("sent to slack")
        logging.getLogger("dag_suite.etl").warning("not ours")
    finally:
        logging.getLogger().removeHandler(spy)

    lines = captured.lines()
    assert [(line["logger"], line["level"], line["message"]) for line in lines] == [
        ("airflow_obs.callbacks", "INFO", "task_failed dag_id=etl_orders"),
        ("airflow_obs.observability.notify", "DEBUG", "sent to slack"),
    ]
    assert lines[0]["run_id"] == "r1"
    assert [record.name for record in seen_by_root] == ["dag_suite.etl"]


def test_airflows_root_logger_and_the_global_loguru_logger_are_left_alone(captured: Captured) -> None:
    from loguru import logger as global_loguru

    root_handlers = list(logging.getLogger().handlers)
    global_handlers = dict(global_loguru._core.handlers)

    logs.setup_logging("json", stream=captured.stream)
    logging.getLogger("airflow_obs.observability.x").info("ours")

    assert logging.getLogger().handlers == root_handlers
    assert global_loguru._core.handlers == global_handlers
    assert logging.getLogger("airflow").propagate is True


def test_setting_up_twice_even_from_a_second_import_of_the_module_writes_each_line_once(captured: Captured) -> None:
    # The task runner loads plugins twice; a plugins-folder module may even be imported under a second name.
    spec = importlib.util.spec_from_file_location("observability_logs_second_import", logs.__file__)
    second = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(second)
    try:
        logs.setup_logging("json", stream=captured.stream)
        logs.ensure_logging()
        second.setup_logging("json", stream=captured.stream)

        logging.getLogger("airflow_obs.callbacks").warning("once")
    finally:
        sys.modules.pop("observability_logs_second_import", None)

    assert [line["message"] for line in captured.lines()] == ["once"]
    for name in logs.TOOLKIT_LOGGERS:
        intercepts = [h for h in logging.getLogger(name).handlers if getattr(h, "airflow_obs_intercept", False)]
        assert len(intercepts) == 1


def test_between_a_try_starting_and_ending_every_toolkit_line_carries_its_ids(captured: Captured) -> None:
    logs.record_task_event(task_event("running"))
    logging.getLogger("airflow_obs.callbacks").info("inside the try")
    logs.record_task_event(task_event("failed"))
    logging.getLogger("airflow_obs.callbacks").info("after the try")

    inside, after = (line for line in captured.lines() if line["logger"] == "airflow_obs.callbacks")
    assert (inside["dag_id"], inside["task_id"], inside["try_number"]) == ("etl_orders", "load", 2)
    assert inside["trace_id"] and inside["span_id"]
    assert (after["dag_id"], after["task_id"], after["trace_id"]) == ("", "", "")


def test_lines_follow_the_standard_loggers_level(captured: Captured) -> None:
    logging.getLogger("airflow_obs").setLevel(logging.ERROR)

    logs.record_task_event(task_event("success"))
    logs.record_task_event(task_event("failed"))

    assert [line["message"] for line in captured.lines()] == ["task try failed"]


SLACK_WEBHOOK = "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghijklmnop1234"


@pytest.mark.parametrize(
    ("secret", "text"),
    [
        ("hunter2pass", "could not connect to postgresql://etl:hunter2pass@warehouse:5432/dw"),
        ("abcdefghijklmnop1234", f"slack said 404 for {SLACK_WEBHOOK}"),
        ("xoxb-1234567890-abcdefghijkl", "auth failed with xoxb-1234567890-abcdefghijkl"),
        ("s3cr3t-token-value", "GET /api?token=s3cr3t-token-value failed"),
    ],
)
def test_secret_shapes_are_redacted_from_messages(captured: Captured, secret: str, text: str) -> None:
    logging.getLogger("airflow_obs.callbacks").error(text)

    (line,) = captured.lines()
    assert secret not in captured.text()
    assert logs.REDACTED in line["message"]


def test_a_secret_airflow_masks_is_redacted_from_the_event_error_and_the_traceback(captured: Captured) -> None:
    mask_secret("warehouse-password-4711")
    try:
        raise RuntimeError("login refused for warehouse-password-4711")
    except RuntimeError as exc:
        logs.record_task_event(task_event("failed", error=exc))
        logging.getLogger("airflow_obs.observability.notify").exception("delivery failed: %s", exc)

    event_line, exception_line = captured.lines()
    assert "warehouse-password-4711" not in captured.text()
    assert event_line["error"] == f"RuntimeError: login refused for {logs.REDACTED}"
    assert "Traceback" in exception_line["exception"] and logs.REDACTED in exception_line["exception"]


def test_the_text_format_puts_the_ids_on_one_readable_line(captured: Captured) -> None:
    logs.setup_logging("text", stream=captured.stream)

    logs.record_task_event(task_event("up_for_retry"))

    (line,) = captured.text().splitlines()
    assert (
        " WARNING  airflow_obs.observability.listeners [etl_orders.load] task try failed, will be retried trace_id="
        in line
    )
    assert "state=up_for_retry" in line and "try_number=2" in line


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of json, text"):
        logs.setup_logging("xml")


def test_inside_a_task_lines_go_to_stdout_elsewhere_to_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time import task_runner

    monkeypatch.delattr(task_runner, "SUPERVISOR_COMMS", raising=False)
    assert logs._default_stream() is sys.stderr

    # Airflow's own test for "running inside a task"; its supervisor files a task's stderr lines as errors.
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", object(), raising=False)
    assert logs._default_stream() is sys.stdout
