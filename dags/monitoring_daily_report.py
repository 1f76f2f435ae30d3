"""Daily: what happened in Airflow over the last 24 h, from its REST API, as Markdown + PNG + JSON."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task
from dag_suite import paths
from dag_suite.defaults import suite_dag_args
from dag_suite.faults import fault_switch
from dag_suite.monitoring import airflow_api, health_store, report
from dag_suite.monitoring.window import report_window
from dag_suite.warehouse import warehouse_hook

DOC_MD = """
### Daily status report (06:00 UTC, covering the 24 h before)

**Reads** Airflow's REST API with the read-only `airflow_api` connection (`POST /auth/token`, then
`GET /api/v2/dags/~/dagRuns` and `GET /api/v2/dags/~/dagRuns/~/taskInstances?state=failed`, filtered on
`run_after` in the window) and the warehouse table `stack_health` (written by `monitoring_stack_health`).

**Reports** per-DAG success rate (success / finished runs), the slowest DAGs (longest run), the failed runs with
their failed tasks, and the stack's health; writes `report.md`, `report.png`, `report.json` to
`<data dir>/reports/<ds>/`.

**A failed run** means no report today: `fetch_*` failed -> the API is down or refused the account (see the
message); `summarise_stack_health` -> the warehouse; `write_status_report` -> the disk or matplotlib.

**Fault switches** (demo): params `demo_fault_task`/`demo_fault_mode` or the Variable `demo_faults`;
`fail`, `slow`, `hang` work on every task (`bad_data` does nothing special here).
"""


@task
@fault_switch
def fetch_dag_runs() -> dict:
    start, end = report_window(get_current_context())
    runs, truncated = airflow_api.dag_runs(airflow_api.AirflowApi.from_connection(), start, end)
    return {"runs": runs, "truncated": truncated}


@task
@fault_switch
def fetch_failed_tasks() -> dict:
    start, end = report_window(get_current_context())
    tis, truncated = airflow_api.failed_task_instances(airflow_api.AirflowApi.from_connection(), start, end)
    return {"task_instances": tis, "truncated": truncated}


@task
@fault_switch
def summarise_stack_health() -> list[dict]:
    start, end = report_window(get_current_context())
    return health_store.summarise(warehouse_hook(), start, end)


@task
@fault_switch
def write_status_report(runs: dict, failed: dict, stack_health: list[dict]) -> dict:
    context = get_current_context()
    start, end = report_window(context)
    status = report.build_report(
        runs["runs"], failed["task_instances"], stack_health, start, end, runs["truncated"] or failed["truncated"]
    )
    return report.write_report(status, paths.folder("reports", context["ds"]))


@dag(
    dag_id="monitoring_daily_report",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="UTC", interval=timedelta(days=1)),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    **suite_dag_args(
        owner="platform-oncall",
        team="data-platform",
        tags=["monitoring", "report"],
        doc_md=DOC_MD,
        execution_timeout=timedelta(minutes=10),
    ),
)
def monitoring_daily_report():
    write_status_report(fetch_dag_runs(), fetch_failed_tasks(), summarise_stack_health())


monitoring_daily_report()
