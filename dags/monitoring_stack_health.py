"""Every 5 minutes: is the observability stack itself healthy? Results go to metrics and the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pendulum
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException
from dag_suite.defaults import suite_dag_args
from dag_suite.faults import active_fault, fault_switch
from dag_suite.monitoring import health_checks, health_metrics, health_store
from dag_suite.warehouse import warehouse_hook

DOC_MD = """
### Stack health (every 5 minutes)

**Checks**, each through its connection id (`dag_suite.connections`) with a short timeout:
`airflow_api` (`/api/v2/monitor/health`: scheduler, triggerer, dag_processor), `metadata_db` (the `metadatabase`
status of that same report), `prometheus` (`/-/ready`), `alertmanager` (`/-/ready`), `exporter` (`/healthz`).
An undefined connection counts as unhealthy: "connection <id> not configured".

**Results**: gauges `airflow_obs.stack_health.<component>` (1/0) and timings `...<component>.latency` (ms)
through Airflow's Stats client; rows in the warehouse table `stack_health` (read by `monitoring_daily_report`).

**A failed run** means: `fail_if_unhealthy` failed -> its message lists the unhealthy components and why (the
rows are already recorded); any other task failed -> the check itself is broken (warehouse down, demo fault...).
A run that never happens is visible as a stale `stack_health` table and missing gauges.

**Fault switches** (demo): params `demo_fault_task`/`demo_fault_mode` or the Variable `demo_faults`.
`fail`, `slow`, `hang` work on every task; `bad_data` on `check_stack` reports the exporter down (labelled as a demo).
"""


class StackUnhealthy(AirflowFailException):
    """Some component is unhealthy: fail without retrying (a retry cannot change recorded results)."""


@task
@fault_switch
def check_stack() -> dict:
    checked_at = datetime.now(UTC)
    results = [result.as_dict() for result in health_checks.check_stack()]
    if active_fault() == "bad_data":
        results = health_checks.pretend_down(results, "exporter")
    return {"checked_at": health_store.timestamp(checked_at), "results": results}


@task
@fault_switch
def record_health(check: dict) -> int:
    return health_store.record(warehouse_hook(), datetime.fromisoformat(check["checked_at"]), check["results"])


@task
@fault_switch
def emit_health_metrics(check: dict) -> list[str]:
    return health_metrics.emit(check["results"])


@task
@fault_switch
def fail_if_unhealthy(check: dict) -> None:
    unhealthy = [f"{r['component']} ({r['detail']})" for r in check["results"] if not r["healthy"]]
    if unhealthy:
        raise StackUnhealthy(
            f"{len(unhealthy)} component(s) unhealthy at {check['checked_at']}: {'; '.join(unhealthy)}"
        )


@dag(
    dag_id="monitoring_stack_health",
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    **suite_dag_args(
        owner="platform-oncall",
        team="data-platform",
        tags=["monitoring"],
        doc_md=DOC_MD,
        dagrun_timeout=timedelta(minutes=4),
        retries=1,
        retry_delay=timedelta(seconds=20),
        execution_timeout=timedelta(minutes=2),
    ),
)
def monitoring_stack_health():
    check = check_stack()
    [record_health(check), emit_health_metrics(check)] >> fail_if_unhealthy(check)


monitoring_stack_health()
