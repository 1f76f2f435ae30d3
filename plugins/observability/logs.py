"""The toolkit's own log lines: JSON (or text) through loguru, with trace and task ids, and secrets redacted.

What goes through here: the listener's event lines and the toolkit's standard `logging` loggers
(`airflow_obs.*`), which an intercept handler hands to loguru instead of their parents.
Airflow's own logging (structlog and the root logger it configures) is left exactly as Airflow set it up;
only a process the toolkit owns (exporter, CLI) asks for `route_root=True`. Levels stay those of the
standard loggers, so Airflow's `[logging] logging_level` applies to our lines as well.

Lines go to stdout inside a task (Airflow files every stderr line of a task as an error) and to stderr
everywhere else. JSON lines carry ts, level, message, logger, trace_id, span_id, dag_id, task_id, plus
run_id, try_number, map_index and the event's fields when known.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from datetime import timezone
from typing import Any, TextIO

from airflow_obs.observability.events import DagRunEvent, TaskEvent

LOG_FORMATS = ("json", "text")
TOOLKIT_LOGGERS = ("airflow_obs",)
EVENT_LOGGER = "airflow_obs.observability.listeners"
# Every JSON line has these keys, empty when unknown, so a query never has to test for their presence.
FIELDS = ("ts", "level", "message", "logger", "trace_id", "span_id", "dag_id", "task_id")
CONTEXT_FIELDS = ("trace_id", "span_id", "dag_id", "task_id", "run_id", "map_index", "try_number")
_INTERCEPT_MARKER = "airflow_obs_intercept"
REDACTED = "[redacted]"  # as airflow_obs.observability.notify.redaction writes it

# ---------------------------------------------------------------------------------------------- redaction
# The core's secrets masker (servers): airflow_obs.observability.notify.redaction applies the Task SDK's. One that this
# process never imported has never been given a secret.
_CORE_MASKER = "airflow._shared.secrets_masker"


def redact(text: str) -> str:
    """Text as every sink sends it: Airflow's registered secrets, URL credentials, Slack webhooks and tokens,
    `password=` pairs replaced (airflow_obs.observability.notify.redaction's rules, one set for every sink)."""
    core_masker = sys.modules.get(_CORE_MASKER)
    if core_masker is not None:
        text = str(core_masker.redact(text, replacement=REDACTED))
    try:
        from airflow_obs.observability.notify.redaction import redact as redact_shapes
    except ImportError:  # without it, Airflow's masker alone (as tracing does)
        from airflow.sdk._shared.secrets_masker import redact as redact_shapes
    return str(redact_shapes(text))


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------------- the logger
def _own_logger() -> Any:
    """A loguru logger with its own handlers, built as loguru builds its global one (loguru is pinned).

    The global `loguru.logger` belongs to the process: a DAG may use it, and its default handler would
    print our lines a second time. Its documented copy recipe (deepcopy) fails while that handler exists.
    """
    from loguru._logger import Core, Logger

    return Logger(
        core=Core(),
        exception=None,
        depth=0,
        record=False,
        lazy=False,
        colors=False,
        raw=False,
        capture=True,
        patchers=[],
        extra={},
    )


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logger = _own_logger()
        self.sink_id: int | None = None
        self.log_format = "json"
        self.stream: TextIO | None = None
        # The try this process runs (a task runner runs one): its ids go on every line logged meanwhile.
        self.task: dict[str, Any] = {}
        self.warned: set[str] = set()


_state = _State()


def _default_stream() -> TextIO:
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    # SUPERVISOR_COMMS is how Airflow itself tells that code runs inside a task.
    if runner is not None and getattr(runner, "SUPERVISOR_COMMS", None) is not None:
        return sys.stdout
    return sys.stderr


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    extra = dict(record["extra"])
    fields: dict[str, Any] = {
        "ts": record["time"].astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record["level"].name,
        "message": redact(record["message"]),
        "logger": extra.pop("logger", None) or record["name"],
        "trace_id": "",
        "span_id": "",
        "dag_id": "",
        "task_id": "",
    }
    for key, value in {**_state.task, **extra}.items():
        fields[key] = _redact_value(value)
    if record["exception"] is not None:
        kind, value, tb = record["exception"]
        fields["exception"] = redact("".join(traceback.format_exception(kind, value, tb)).rstrip())
    return fields


def _json_line(fields: dict[str, Any]) -> str:
    return json.dumps(fields, default=str, ensure_ascii=False)


def _text_line(fields: dict[str, Any]) -> str:
    where = ".".join(part for part in (fields["dag_id"], fields["task_id"]) if part)
    rest = {k: v for k, v in fields.items() if k not in FIELDS and k != "exception" and v not in ("", None)}
    line = f"{fields['ts']} {fields['level']:<8} {fields['logger']}"
    if where:
        line += f" [{where}]"
    line += f" {fields['message']}"
    if fields["trace_id"]:
        line += f" trace_id={fields['trace_id']}"
    line += "".join(f" {key}={value}" for key, value in rest.items())
    if "exception" in fields:
        line += "\n" + fields["exception"]
    return line


def _write(message: Any) -> None:
    fields = _fields(message.record)
    line = _json_line(fields) if _state.log_format == "json" else _text_line(fields)
    stream = _state.stream or _default_stream()
    stream.write(line + "\n")
    stream.flush()


class InterceptHandler(logging.Handler):
    """Hands a standard logging record to the toolkit's loguru logger: name, level, exception, context fields."""

    def __init__(self) -> None:
        super().__init__()
        setattr(self, _INTERCEPT_MARKER, True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # Ids a caller passed as `extra=` keep their field names.
            context = {key: getattr(record, key) for key in CONTEXT_FIELDS if getattr(record, key, None) is not None}
            exception = record.exc_info if record.exc_info and record.exc_info[0] is not None else None
            level: str | int = (
                record.levelname if isinstance(logging.getLevelName(record.levelname), int) else record.levelno
            )
            _state.logger.bind(logger=record.name, **context).opt(exception=exception).log(level, record.getMessage())
        except Exception:
            self.handleError(record)


def _intercept(logger: logging.Logger, *, propagate: bool) -> None:
    # Checked by marker, not class: a second import of this module defines a second InterceptHandler class.
    if not any(getattr(handler, _INTERCEPT_MARKER, False) for handler in logger.handlers):
        logger.addHandler(InterceptHandler())
    logger.propagate = propagate


def setup_logging(log_format: str | None = None, stream: TextIO | None = None, *, route_root: bool = False) -> None:
    """(Re)configure the toolkit's log lines; calling it again adds nothing (the plugin may load twice).

    log_format defaults to the plugin setting (AIRFLOW__OBSERVABILITY__LOG_FORMAT); stream to stdout in a task and
    stderr elsewhere. route_root sends every standard logging record through loguru: only for the
    toolkit's own processes, never inside Airflow, whose root logger Airflow configures.
    """
    if log_format is None:
        from airflow_obs.observability.settings import settings

        log_format = settings().log_format
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: expected one of {', '.join(LOG_FORMATS)}")
    with _state.lock:
        _state.log_format = log_format
        _state.stream = stream
        if _state.sink_id is None:
            # level 0: the standard loggers' levels decide what reaches us.
            _state.sink_id = _state.logger.add(_write, level=0, format="{message}", catch=True)
        for name in TOOLKIT_LOGGERS:
            _intercept(logging.getLogger(name), propagate=False)
        if route_root:
            root = logging.getLogger()
            for handler in [h for h in root.handlers if not getattr(h, _INTERCEPT_MARKER, False)]:
                root.removeHandler(handler)
            _intercept(root, propagate=True)
            if root.level == logging.NOTSET or root.level > logging.INFO:
                root.setLevel(logging.INFO)


def ensure_logging() -> None:
    """Configure with the defaults unless something already did."""
    if _state.sink_id is None:
        setup_logging()


def log(logger_name: str, level: int, message: str, **fields: Any) -> None:
    """One line from the toolkit, if the standard logger of that name is enabled for the level."""
    if not logging.getLogger(logger_name).isEnabledFor(level):
        return
    ensure_logging()
    _state.logger.bind(logger=logger_name, **fields).log(logging.getLevelName(level), message)


def _warn_once(key: str, message: str) -> None:
    if key not in _state.warned:
        _state.warned.add(key)
        logging.getLogger(EVENT_LOGGER).warning(message, exc_info=True)


# ---------------------------------------------------------------------------------------------- trace ids
def trace_ids(dag_id: str, run_id: str, task_id: str = "", map_index: int = -1, try_number: int = 0) -> tuple[str, str]:
    """(trace_id, span_id) from airflow_obs.observability.tracing's trace_id_for_run/span_id_for_try, "" if it has none.

    Called with keywords: trace_id_for_run(dag_id=, run_id=) and
    span_id_for_try(dag_id=, run_id=, task_id=, map_index=, try_number=).
    """
    try:
        # Imported here: tracing is optional for a log line, and may not provide these (yet).
        from airflow_obs.observability import tracing

        for_run = getattr(tracing, "trace_id_for_run", None)
        for_try = getattr(tracing, "span_id_for_try", None)
        trace_id = str(for_run(dag_id=dag_id, run_id=run_id) or "") if for_run else ""
        span_id = ""
        if for_try and task_id:
            found = for_try(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, try_number=try_number)
            span_id = str(found or "")
        return trace_id, span_id
    except Exception:
        _warn_once("trace_ids", "log lines go without trace ids: airflow_obs.observability.tracing could not give them")
        return "", ""


# ---------------------------------------------------------------------------------------------- event sink
_TASK_LINES = {
    "running": (logging.INFO, "task try started"),
    "success": (logging.INFO, "task try succeeded"),
    "skipped": (logging.INFO, "task try skipped"),
    "up_for_retry": (logging.WARNING, "task try failed, will be retried"),
    "failed": (logging.ERROR, "task try failed"),
}
_DAG_RUN_LINES = {
    "running": (logging.INFO, "DAG run started"),
    "success": (logging.INFO, "DAG run succeeded"),
    "failed": (logging.ERROR, "DAG run failed"),
}


def _known(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value not in (None, "")}


def record_task_event(event: TaskEvent) -> None:
    """One line per task try event; a started try's ids stay on every toolkit line until it ends."""
    trace_id, span_id = trace_ids(event.dag_id, event.run_id, event.task_id, event.map_index, event.try_number)
    ids = {
        "dag_id": event.dag_id,
        "task_id": event.task_id,
        "run_id": event.run_id,
        "map_index": event.map_index,
        "try_number": event.try_number,
        "trace_id": trace_id,
        "span_id": span_id,
    }
    if event.state == "running":
        _state.task = ids
    level, message = _TASK_LINES.get(event.state, (logging.INFO, f"task try is {event.state}"))
    duration = round(event.duration_seconds, 3) if event.duration_seconds is not None else None
    extra = _known(
        state=event.state,
        owner=event.owner,
        team=event.team,
        duration_seconds=duration if event.state != "running" else None,
        error=event.error,
    )
    log(EVENT_LOGGER, level, message, **ids, **extra)
    if event.state != "running":
        _state.task = {}


def record_dag_run_event(event: DagRunEvent) -> None:
    """One line per DAG run event."""
    trace_id, _ = trace_ids(event.dag_id, event.run_id)
    level, message = _DAG_RUN_LINES.get(event.state, (logging.INFO, f"DAG run is {event.state}"))
    duration = round(event.duration_seconds, 3) if event.duration_seconds is not None else None
    extra = _known(
        state=event.state,
        run_type=event.run_type,
        owner=event.owner,
        team=event.team,
        duration_seconds=duration if event.state != "running" else None,
        error=event.error,
    )
    log(EVENT_LOGGER, level, message, dag_id=event.dag_id, task_id="", run_id=event.run_id, trace_id=trace_id, **extra)
