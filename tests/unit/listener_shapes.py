"""Task instances and DAG runs shaped as each Airflow process hands them to the listeners."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

from airflow.sdk.execution_time.task_runner import TaskInstanceState as WorkerState
from airflow.utils.state import TaskInstanceState

START = datetime(2026, 11, 20, 3, 0, tzinfo=timezone.utc)


def worker_ti(state: Any = WorkerState.RUNNING, **overrides: Any) -> SimpleNamespace:
    """Shaped like the task runner's RuntimeTaskInstance: its task and DAG attached, no queued_dttm."""
    dag = SimpleNamespace(tags={"etl", "team:data-platform"})
    task = SimpleNamespace(owner="data-eng", dag=dag, pool="default_pool", queue="default")
    values = {
        "dag_id": "etl_orders",
        "run_id": "scheduled__2026-11-20T03:00:00+00:00",
        "task_id": "load",
        "map_index": -1,
        "try_number": 1,
        "max_tries": 2,
        "state": state,
        "task": task,
        "hostname": "worker-1",
        "start_date": START,
        "end_date": START + timedelta(seconds=42),
    }
    return SimpleNamespace(**{**values, **overrides})


def api_ti(state: TaskInstanceState = TaskInstanceState.FAILED) -> SimpleNamespace:
    """Shaped like the api-server's ORM TaskInstance after "mark failed": no task, its DagModel row instead."""
    dag_model = SimpleNamespace(owners="analyst", tags=[SimpleNamespace(name="team:analytics")])
    return SimpleNamespace(
        dag_id="monitoring_daily_report",
        run_id="manual__2026-11-20",
        task_id="render",
        map_index=-1,
        try_number=1,
        max_tries=0,
        state=state,
        task=None,
        dag_model=dag_model,
        queued_dttm=START - timedelta(seconds=5),
        start_date=START,
        end_date=START + timedelta(seconds=3),
    )


def dag_run(state: str = "failed") -> SimpleNamespace:
    dag = SimpleNamespace(owner="data-eng", tags={"team:data-platform"})
    return SimpleNamespace(
        dag_id="etl_orders",
        run_id="scheduled__2026-11-20T03:00:00+00:00",
        state=state,
        run_type="scheduled",
        dag=dag,
        start_date=START,
        end_date=START + timedelta(minutes=5),
    )
