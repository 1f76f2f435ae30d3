"""Task failures that no callback reports, caused on the running stack: each must page once, through Alertmanager.

- a running task set to failed in the UI / REST API (the api-server's listener reports it);
- task processes SIGKILLed (an OOM kill): the scheduler fails the try the runner never reported;
- a task whose heartbeat stops (its worker process gone): the scheduler's heartbeat timeout fails it;
- a run over its `dagrun_timeout`: the scheduler fails the run, and no task failed;
- a failure cleared and re-run to success within seconds: one page, one resolution, nothing after.
A try killed while it has retries left pages nobody: the killing scenarios kill the first try too, and the tests
check that only the last one paged.

Every task here hangs on the demo fault switch until it is killed or failed, so each step waits, boundedly, for
the state Airflow reports before the next one.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import psutil
from dag_suite.faults import FAULTS_VARIABLE

from local_stack.incidents.client import IncidentError, StackClient

FAILING_DAG, FAILING_TASK = "maintenance_audit", "check_config_drift"  # retries=1: two tries
HANG = {"demo_fault_mode": "hang"}
# One task each of three DAGs that run in seconds, all with retries=1: killed at once, as an OOM kill would.
KILLED_TASKS = {
    "maintenance_log_cleanup": "delete_old_task_logs",
    "maintenance_db_cleanup": "clean_metadata_db",
    "maintenance_db_backup": "backup_metadata_db",
}
TIMEOUT_DAG, TIMEOUT_TASK = "monitoring_stack_health", "check_stack"  # dagrun_timeout=4 min, max_active_runs=1
TRY_TIMEOUT = 300.0  # waiting for one try to start, or to be failed by Airflow


def task_instance(client: StackClient, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    return client.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}")


def wait_task(
    client: StackClient, dag_id: str, run_id: str, task_id: str, states: tuple[str, ...], try_number: int = 0
) -> dict[str, Any]:
    """Until the task instance is in one of `states` (on at least `try_number`); running also needs its pid."""
    deadline = time.monotonic() + TRY_TIMEOUT
    while True:
        ti = task_instance(client, dag_id, run_id, task_id)
        ready = ti["state"] in states and ti["try_number"] >= try_number
        if ready and (ti["state"] != "running" or ti.get("pid")):
            return ti
        if time.monotonic() > deadline:
            raise IncidentError(
                f"{dag_id}.{task_id} of {run_id} is {ti['state']} (try {ti['try_number']}) after {TRY_TIMEOUT:.0f}s; "
                f"expected {' or '.join(states)} on try {try_number or 'any'}"
            )
        time.sleep(1)


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            psutil.Process(pid).send_signal(signal.SIGKILL)


def _hanging_run(client: StackClient, dag_id: str, task_id: str) -> str:
    return client.trigger(dag_id, {"demo_fault_task": task_id, **HANG})


def healthy_runs(client: StackClient, dag_ids: list[str]) -> None:
    runs = {dag_id: client.trigger(dag_id) for dag_id in dag_ids}
    for dag_id, run_id in runs.items():
        if client.wait_for_run(dag_id, run_id) != "success":
            raise IncidentError(f"the healthy run {run_id} of {dag_id} did not succeed")


# --- a running task set to failed by hand ---------------------------------------------------------------------
def mark_running_task_failed(client: StackClient) -> dict[str, Any]:
    run_id = _hanging_run(client, FAILING_DAG, FAILING_TASK)
    wait_task(client, FAILING_DAG, run_id, FAILING_TASK, ("running",))
    path = f"/dags/{FAILING_DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/{FAILING_TASK}"
    client.api("PATCH", path, {"new_state": "failed"})
    ti = wait_task(client, FAILING_DAG, run_id, FAILING_TASK, ("failed",))
    return {"run_id": run_id, "try_number": ti["try_number"]}


def healthy_failing_dag_run(client: StackClient, _: dict[str, Any]) -> None:
    healthy_runs(client, [FAILING_DAG])


# --- task processes killed, in three DAGs at once -------------------------------------------------------------
def kill_tasks_in_three_dags(client: StackClient) -> dict[str, Any]:
    """Kill each DAG's task on its first try (retried: no page), then all three on their last try at once."""
    runs = {dag_id: _hanging_run(client, dag_id, task_id) for dag_id, task_id in KILLED_TASKS.items()}
    context: dict[str, Any] = {"runs": runs}
    for try_number, next_states in ((1, ("up_for_retry",)), (2, ("failed",))):
        running = {
            dag_id: wait_task(client, dag_id, runs[dag_id], task_id, ("running",), try_number)
            for dag_id, task_id in KILLED_TASKS.items()
        }
        _kill([ti["pid"] for ti in running.values()])
        context[f"try_{try_number}_killed_at"] = datetime.now(UTC).isoformat()
        for dag_id, task_id in KILLED_TASKS.items():
            wait_task(client, dag_id, runs[dag_id], task_id, next_states, try_number)
    return context


def healthy_runs_of_the_three(client: StackClient, _: dict[str, Any]) -> None:
    healthy_runs(client, list(KILLED_TASKS))


# --- a task whose heartbeat stops -----------------------------------------------------------------------------
def _kill_the_tries_worker(client: StackClient, ti: dict[str, Any]) -> None:
    """The try's process and the executor worker supervising it (which sends its heartbeats), by PID."""
    runner = psutil.Process(ti["pid"])
    _kill([runner.ppid(), runner.pid])


def lose_a_tasks_heartbeat(client: StackClient) -> dict[str, Any]:
    """Both tries lose their worker: the first is retried (no page), the second fails for good (one page).

    How long it takes is Airflow's `[scheduler] task_instance_heartbeat_timeout` (300 s by default; the tests set
    20 s), twice.
    """
    run_id = _hanging_run(client, FAILING_DAG, FAILING_TASK)
    context: dict[str, Any] = {"run_id": run_id}
    for try_number, next_states in ((1, ("up_for_retry",)), (2, ("failed",))):
        ti = wait_task(client, FAILING_DAG, run_id, FAILING_TASK, ("running",), try_number)
        _kill_the_tries_worker(client, ti)
        context[f"try_{try_number}_lost_at"] = datetime.now(UTC).isoformat()
        wait_task(client, FAILING_DAG, run_id, FAILING_TASK, next_states, try_number)
    return context


# --- a run over its dagrun_timeout ----------------------------------------------------------------------------
def start_a_run_that_will_time_out(client: StackClient) -> dict[str, Any]:
    """A run of a DAG with a 4-minute dagrun_timeout whose task hangs; returns at once (see wait_timed_out)."""
    return {"run_id": _hanging_run(client, TIMEOUT_DAG, TIMEOUT_TASK), "started_at": time.time()}


def wait_timed_out(client: StackClient, context: dict[str, Any]) -> dict[str, Any]:
    if client.wait_for_run(TIMEOUT_DAG, context["run_id"], timeout=420) != "failed":
        raise IncidentError(f"the run {context['run_id']} of {TIMEOUT_DAG} did not fail on its dagrun_timeout")
    return context


def time_out_a_run(client: StackClient) -> dict[str, Any]:
    return wait_timed_out(client, start_a_run_that_will_time_out(client))


def healthy_timeout_dag_run(client: StackClient, _: dict[str, Any]) -> None:
    healthy_runs(client, [TIMEOUT_DAG])


# --- a failure cleared and re-run to success ------------------------------------------------------------------
def fail_for_good_until_cleared(client: StackClient) -> dict[str, Any]:
    """The task fails both tries through the Variable switch, so a clear (which keeps the run's conf) can succeed."""
    client.set_variable(FAULTS_VARIABLE, json.dumps({FAILING_DAG: {FAILING_TASK: "fail"}}))
    run_id = client.trigger(FAILING_DAG)
    if client.wait_for_run(FAILING_DAG, run_id) != "failed":
        raise IncidentError(f"{FAILING_DAG} run {run_id} did not fail; the fault switch should fail it")
    return {"run_id": run_id}


def clear_to_success(client: StackClient, context: dict[str, Any]) -> None:
    client.api("DELETE", f"/variables/{FAULTS_VARIABLE}", ok=(204, 404))
    # With its downstream, as the UI's Clear offers: report_findings was upstream_failed and must run again too.
    body = {
        "dry_run": False,
        "dag_run_id": context["run_id"],
        "task_ids": [FAILING_TASK],
        "include_downstream": True,
        "reset_dag_runs": True,
    }
    client.api("POST", f"/dags/{FAILING_DAG}/clearTaskInstances", body)
    context["cleared_at"] = datetime.now(UTC).isoformat()
    if client.wait_for_run(FAILING_DAG, context["run_id"]) != "success":
        raise IncidentError(f"the cleared run {context['run_id']} of {FAILING_DAG} did not succeed")
    context["succeeded_at"] = datetime.now(UTC).isoformat()
