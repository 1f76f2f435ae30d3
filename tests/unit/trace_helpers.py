"""What the tracing tests share besides the `traces_file` fixture (conftest.py): events of one known run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow_obs.observability.events import DagRunEvent, TaskEvent
from airflow_obs.observability.trace_store import SpanRecord, read_spans

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
RUN_ID = "manual__2026-01-05T06:00:00+00:00"


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
