"""The faults the harness causes with the stack's own parts: the suite's fault switches on fast DAGs, the scheduler
and PostgreSQL killed (supervisord), a DAG file that stops importing, the executor's workers frozen, the default
pool emptied, a run hung past its next schedule, a run far over its learned baseline.

Each `inject` waits, boundedly, for what it caused; each `recover` puts it back (scenarios.py pairs them with the
alert they must raise). The faults of other modules: task_failures.py, warehouse_outage.py, worker_loss.py,
deadlines.py, upstream_failure.py.
"""

from __future__ import annotations

import math
import os
import signal
import textwrap
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import psutil
from dag_suite.faults import DEFAULT_SLOW_SECONDS, SLOW_SECONDS_VARIABLE

from local_stack.incidents import task_failures
from local_stack.incidents.client import IncidentError, StackClient
from local_stack.settings import REPO_ROOT

FAILING_DAG, FAILING_TASK = task_failures.FAILING_DAG, task_failures.FAILING_TASK  # retries=1: two tries, ~40 s
FAULT_FAIL = {"demo_fault_task": FAILING_TASK, "demo_fault_mode": "fail"}
# Fast DAGs whose runs the "many DAGs fail while the scheduler is down" scenario fails by hand.
MANY_DAGS = ("maintenance_log_cleanup", "maintenance_db_cleanup", "maintenance_db_backup")
# A file the dag-processor finds beside the suite's DAGs; .gitignore'd, and removed by `recover`.
BROKEN_DAG_FILE = REPO_ROOT / "dags" / "zz_incident_broken_dag.py"


# --- a task failing for good (and again: repeatedly, and for "an hour") -------------------------------------
def failing_runs(count: int) -> Callable[[StackClient], dict[str, Any]]:
    def inject(client: StackClient) -> dict[str, Any]:
        runs = []
        for _ in range(count):
            run_id = client.trigger(FAILING_DAG, FAULT_FAIL)
            state = client.wait_for_run(FAILING_DAG, run_id)
            if state != "failed":
                raise IncidentError(f"{FAILING_DAG} run {run_id} ended {state}; the fault switch should fail it")
            runs.append(run_id)
        return {"runs": runs}

    return inject


def failing_runs_then_exporter_alerts(count: int) -> Callable[[StackClient], dict[str, Any]]:
    """Fail the DAG, then wait until Alertmanager holds the exporter's alerts about it (they must stay muted)."""

    def inject(client: StackClient) -> dict[str, Any]:
        context = failing_runs(count)(client)
        context["exporter_alerts"] = {
            alertname: _wait_dag_alerts(client, alertname, {FAILING_DAG})[FAILING_DAG]
            for alertname in ("AirflowDagLastRunFailed", "AirflowTaskFailingRepeatedly", "AirflowDagFailingForAnHour")
        }
        return context

    return inject


def healthy_run(client: StackClient, _: dict[str, Any]) -> None:
    run_id = client.trigger(FAILING_DAG)
    if client.wait_for_run(FAILING_DAG, run_id) != "success":
        raise IncidentError(f"the healthy run {run_id} of {FAILING_DAG} did not succeed")


# --- the scheduler killed, while several DAGs fail ----------------------------------------------------------
def _wait_alert_firing(client: StackClient, alertname: str, timeout: float = 120.0) -> None:
    url = f"{client.settings.url('alertmanager')}/api/v2/alerts?filter=alertname%3D{alertname}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, alerts = client._request("GET", url)  # noqa: SLF001 - the same loopback JSON call
        if status == 200 and alerts:
            return
        time.sleep(1)
    raise IncidentError(f"{alertname} did not reach Alertmanager within {timeout:.0f}s")


def kill_scheduler(client: StackClient) -> dict[str, Any]:
    client.kill_program("airflow-scheduler")
    return {}


def kill_scheduler_while_dags_fail(client: StackClient) -> dict[str, Any]:
    client.kill_program("airflow-scheduler")
    # Only once the cause is firing: the DAG alerts that follow must be inhibited, not race it.
    _wait_alert_firing(client, "AirflowSchedulerDown")
    runs = {}
    for dag_id in MANY_DAGS:  # queued (nothing schedules them), then failed by hand, as an operator would
        run_id = client.trigger(dag_id)
        client.api("PATCH", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}", {"state": "failed"})
        runs[dag_id] = run_id
    return {"runs": runs, "dag_alerts": _wait_dag_alerts(client, "AirflowDagLastRunFailed", set(MANY_DAGS))}


def _wait_dag_alerts(client: StackClient, alertname: str, dag_ids: set[str], timeout: float = 120.0) -> dict:
    """Alertmanager's view ({dag_id: status}) once it holds `alertname` for every DAG: firing, or inhibited."""
    url = f"{client.settings.url('alertmanager')}/api/v2/alerts?filter=alertname%3D{alertname}"
    deadline = time.monotonic() + timeout
    while True:
        status, alerts = client._request("GET", url)  # noqa: SLF001 - the same loopback JSON call
        held = {alert["labels"].get("dag_id"): alert["status"] for alert in (alerts or [])} if status == 200 else {}
        if dag_ids <= set(held):
            return {dag_id: held[dag_id] for dag_id in dag_ids}
        if time.monotonic() > deadline:
            raise IncidentError(f"{alertname} for {sorted(dag_ids - set(held))} did not reach Alertmanager")
        time.sleep(1)


def start_scheduler(client: StackClient, _: dict[str, Any]) -> None:
    client.start_program("airflow-scheduler")
    client.wait_airflow_healthy()


def start_scheduler_and_heal_dags(client: StackClient, context: dict[str, Any]) -> None:
    client.start_program("airflow-scheduler")
    healing = {dag_id: client.trigger(dag_id) for dag_id in context.get("runs", {})}
    for dag_id, run_id in healing.items():
        if client.wait_for_run(dag_id, run_id) != "success":
            raise IncidentError(f"the healthy run {run_id} of {dag_id} did not succeed")


# --- the metadata DB stopped (PostgreSQL stacks) -------------------------------------------------------------
def stop_postgres(client: StackClient) -> dict[str, Any]:
    client.kill_program("postgres")
    return {}


def start_postgres(client: StackClient, _: dict[str, Any]) -> None:
    client.start_program("postgres")
    # Airflow's components may have given up while their DB was gone (supervisord retries a crash twice).
    client.start_stopped_programs()
    client.wait_airflow_healthy()


# --- a DAG file that no longer imports ----------------------------------------------------------------------
def break_a_dag_file(client: StackClient) -> dict[str, Any]:
    BROKEN_DAG_FILE.write_text(
        textwrap.dedent(
            '''\
            """Written by `make incident SCENARIO=import_error`; deleted when the scenario recovers."""
            from airflow.sdk import DAG

            raise ImportError("incident rehearsal: this DAG file is broken on purpose")
            '''
        )
    )
    return {"file": str(BROKEN_DAG_FILE)}


def remove_the_broken_file(client: StackClient, _: dict[str, Any]) -> None:
    BROKEN_DAG_FILE.unlink(missing_ok=True)


# --- tasks stuck in the queue: the executor's workers frozen -------------------------------------------------
def _executor_workers(client: StackClient) -> list[psutil.Process]:
    scheduler = psutil.Process(client.program_pid("airflow-scheduler"))
    return scheduler.children(recursive=True)


def freeze_workers(client: StackClient) -> dict[str, Any]:
    workers = _executor_workers(client)
    if not workers:
        raise IncidentError("the scheduler has no executor worker processes to freeze")
    for worker in workers:
        os.kill(worker.pid, signal.SIGSTOP)
    run_id = client.trigger(FAILING_DAG)  # its tasks are queued and no worker picks them up
    return {"pids": [worker.pid for worker in workers], "run_id": run_id}


def thaw_workers(client: StackClient, context: dict[str, Any]) -> None:
    for pid in context.get("pids", []):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            continue
    if context.get("run_id"):
        client.wait_for_run(FAILING_DAG, context["run_id"])


# --- a pool with no slot left while work waits ---------------------------------------------------------------
def empty_the_default_pool(client: StackClient) -> dict[str, Any]:
    before = client.set_pool_slots("default_pool", 0)
    run_id = client.trigger(FAILING_DAG)  # its tasks wait for a slot
    return {"slots": before, "run_id": run_id}


def refill_the_default_pool(client: StackClient, context: dict[str, Any]) -> None:
    client.set_pool_slots("default_pool", int(context.get("slots", 128)))
    if context.get("run_id"):
        client.wait_for_run(FAILING_DAG, context["run_id"])


# --- a DAG that stops getting its scheduled runs ------------------------------------------------------------
STALE_DAG, STALE_TASK = "monitoring_stack_health", "check_stack"  # every 5 minutes, max_active_runs=1


STALE_PERIOD = 300  # its schedule, */5, in seconds
# The hung run ends at the DAG's dagrun_timeout (4 min): start it when the next scheduled run is due 30 s to 3 min
# later, so that run is visibly late for a while before the timeout frees the slot.
STALE_DUE_WITHIN = (30, 180)


def hang_a_run(client: StackClient) -> dict[str, Any]:
    # A run that never ends holds the DAG's only active slot: the scheduler creates no scheduled run after it.
    due_at = _next_tick()
    if due_at - time.time() < STALE_DUE_WITHIN[0]:  # let that run be created and finish; the next is 5 min away
        time.sleep(due_at - time.time() + 10)
        due_at = _next_tick()
    time.sleep(max(0.0, due_at - time.time() - STALE_DUE_WITHIN[1]))
    run_id = client.trigger(STALE_DAG, {"demo_fault_task": STALE_TASK, "demo_fault_mode": "hang"})
    return {"run_id": run_id, "due_at": due_at}  # when the run the hung one keeps from being created was due


def _next_tick() -> float:
    return time.time() // STALE_PERIOD * STALE_PERIOD + STALE_PERIOD


def end_the_hung_run(client: StackClient, context: dict[str, Any]) -> None:
    run = quote(context["run_id"], safe="")
    client.api("PATCH", f"/dags/{STALE_DAG}/dagRuns/{run}/taskInstances/{STALE_TASK}", {"new_state": "success"})
    client.wait_for_run(STALE_DAG, context["run_id"])


# --- a run far over its learned duration ---------------------------------------------------------------------
# A one-task DAG whose runs take seconds. Its baseline is whatever the stack learned (p95 of the last runs: one slow
# run, such as a run waiting out a scheduler restart, raises it), so the slow run is sized from it.
BASELINE_DAG, BASELINE_TASK = "maintenance_log_cleanup", "delete_old_task_logs"
SLOW_RUN_FACTOR = 4  # the alert's default factor is 3: the run crosses it well before it ends


def slow_run_after_a_baseline(client: StackClient) -> dict[str, Any]:
    for _ in range(3):  # the baseline needs three successful runs
        run_id = client.trigger(BASELINE_DAG)
        if client.wait_for_run(BASELINE_DAG, run_id) != "success":
            raise IncidentError(f"the healthy run {run_id} of {BASELINE_DAG} did not succeed")
    # What the slow run will be measured against: fails here, clearly, if the exporter has not learned it.
    baseline = client.wait_for_value(f'max(airflow_dag_run_duration_baseline_p95_seconds{{dag_id="{BASELINE_DAG}"}})')
    slow_seconds = max(DEFAULT_SLOW_SECONDS, math.ceil(SLOW_RUN_FACTOR * baseline))
    client.set_variable(SLOW_SECONDS_VARIABLE, str(slow_seconds))  # what the fault switch's `slow` sleeps
    run_id = client.trigger(BASELINE_DAG, {"demo_fault_task": BASELINE_TASK, "demo_fault_mode": "slow"})
    return {"run_id": run_id, "baseline_p95_seconds": baseline, "slow_seconds": slow_seconds}


def let_the_slow_run_finish(client: StackClient, context: dict[str, Any]) -> None:
    client.wait_for_run(BASELINE_DAG, context["run_id"], timeout=context.get("slow_seconds", 90) + 300)
    client.api("DELETE", f"/variables/{SLOW_SECONDS_VARIABLE}", ok=(204, 404))
