"""The `celery_worker_killed` scenario: a Celery worker dies (SIGKILL, with its task processes) in the middle of
the ETL's long load, as when its machine is lost. Airflow's task heartbeat timeout fails the orphaned try, the
retry runs on the other worker, and AirflowCeleryWorkerLost fires until the worker is back.

Needs `AIRFLOW_OBS_EXECUTOR=celery`. How long it takes is mostly Airflow's
`[scheduler] task_instance_heartbeat_timeout` (300 s by default; the tests set 20 s).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from dag_suite.faults import SLOW_SECONDS_VARIABLE

from local_stack.incidents.client import IncidentError, StackClient
from local_stack.programs import celery_workers

ETL_DAG, LONG_TASK = "etl_orders", "load"
LONG_TASK_SECONDS = 45  # the slow fault switch's length: long enough to be killed in the middle
RUNNING_TIMEOUT = 300.0  # the ETL's extract, transform and checks come first


def task_instance(client: StackClient, run_id: str, task_id: str = LONG_TASK) -> dict[str, Any]:
    return client.api("GET", f"/dags/{ETL_DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}")


def task_tries(client: StackClient, run_id: str, task_id: str = LONG_TASK) -> list[dict[str, Any]]:
    """Every try of the task, oldest first, with the host each ran on."""
    path = f"/dags/{ETL_DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/tries"
    return sorted(client.api("GET", path)["task_instances"], key=lambda item: item["try_number"])


def _wait_running(client: StackClient, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUNNING_TIMEOUT
    while True:
        ti = task_instance(client, run_id)
        if ti["state"] == "running" and ti.get("hostname"):
            return ti
        if ti["state"] in ("success", "failed", "upstream_failed") or time.monotonic() > deadline:
            raise IncidentError(f"{ETL_DAG}.{LONG_TASK} of {run_id} is {ti['state']}, never seen running on a worker")
        time.sleep(1)


def kill_the_worker_running_the_load(client: StackClient) -> dict[str, Any]:
    workers = {worker.hostname: worker for worker in celery_workers(client.settings)}
    if len(workers) < 2:
        raise IncidentError("this scenario needs the Celery stack's two workers (AIRFLOW_OBS_EXECUTOR=celery)")
    client.set_variable(SLOW_SECONDS_VARIABLE, str(LONG_TASK_SECONDS))
    # A date of its own, a month back: the scheduled ETL loads today's and yesterday's.
    logical_date = datetime.now(UTC) - timedelta(days=30)
    run_id = client.trigger(ETL_DAG, {"demo_fault_task": LONG_TASK, "demo_fault_mode": "slow"}, logical_date)
    ti = _wait_running(client, run_id)
    time.sleep(5)  # well inside the load's sleep: the try dies mid-task
    victim = workers.get(ti["hostname"])
    if victim is None:
        raise IncidentError(f"{LONG_TASK} runs on {ti['hostname']!r}, which is none of {sorted(workers)}")
    client.kill_program_tree(victim.program)
    return {
        "run_id": run_id,
        "ds": logical_date.date().isoformat(),
        "killed_program": victim.program,
        "killed_hostname": victim.hostname,
        "killed_worker": victim.celery_name,
    }


def let_the_retry_finish_then_restart_the_worker(client: StackClient, context: dict[str, Any]) -> None:
    """The retry must finish on the surviving worker first: only then is the killed one started again."""
    try:
        if context.get("run_id"):
            context["run_state"] = client.wait_for_run(ETL_DAG, context["run_id"], timeout=600)
    finally:
        client.api("DELETE", f"/variables/{SLOW_SECONDS_VARIABLE}", ok=(204, 404))
        if context.get("killed_program"):
            client.start_program(context["killed_program"])
