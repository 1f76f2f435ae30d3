"""The failure modes the harness can cause, each with the alert it must raise and how to undo it.

A scenario's `inject` breaks the running stack the way production breaks (a task failing for good, a killed
scheduler, a broken DAG file...) using the DAG suite's fault switches ([2/7]), Airflow's REST API and
supervisord; `recover` puts it back, after which the alert must resolve. Both wait, boundedly, for what they
caused, so a caller can time the alert from the moment `inject` returns.

Time-based alerts ("failing for an hour") are compressed by rendering the rules with shorter thresholds
(AIRFLOW_OBS_ALERT_*; `COMPRESSED_THRESHOLDS` is what the tests use).
"""

from __future__ import annotations

import math
import os
import signal
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
from airflow_obs.alerting.thresholds import env_var
from dag_suite.faults import DEFAULT_SLOW_SECONDS, SLOW_SECONDS_VARIABLE

from local_stack.incidents import deadlines, task_failures, upstream_failure, warehouse_outage, worker_loss
from local_stack.incidents.client import IncidentError, StackClient
from local_stack.settings import REPO_ROOT

FAILING_DAG, FAILING_TASK = task_failures.FAILING_DAG, task_failures.FAILING_TASK  # retries=1: two tries, ~40 s
FAULT_FAIL = {"demo_fault_task": FAILING_TASK, "demo_fault_mode": "fail"}
# Fast DAGs whose runs the "many DAGs fail while the scheduler is down" scenario fails by hand.
MANY_DAGS = ("maintenance_log_cleanup", "maintenance_db_cleanup", "maintenance_db_backup")
# A file the dag-processor finds beside the suite's DAGs; .gitignore'd, and removed by `recover`.
BROKEN_DAG_FILE = REPO_ROOT / "dags" / "zz_incident_broken_dag.py"

# Thresholds (and Alertmanager timings) that make each scenario's alert fire within seconds to a minute.
COMPRESSED_THRESHOLDS = {
    env_var("component_heartbeat_stale"): "30s",  # jobs heartbeat every 5 s, seen through a 5 s snapshot
    env_var("component_down_for"): "4s",
    env_var("metadata_db_down_for"): "4s",
    env_var("dag_failed_for"): "4s",
    env_var("dag_failing_window"): "45s",
    env_var("dag_success_grace"): "5s",
    env_var("task_failures_count"): "2",
    env_var("task_failures_window"): "2m",  # the alert resolves once the failures leave the window
    env_var("queued_too_long"): "15s",
    env_var("pool_saturated_for"): "10s",
    env_var("import_errors_for"): "4s",
    env_var("baseline_min_runtime"): "20s",
    env_var("schedule_lateness"): "10s",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    alerts: tuple[str, ...]  # what must fire (and resolve after recover)
    summary: str
    inject: Callable[[StackClient], dict[str, Any]]
    recover: Callable[[StackClient, dict[str, Any]], None]
    dag_id: str = ""  # the DAG the alerts are about, if any
    dag_ids: tuple[str, ...] = ()  # or the DAGs, when there are several
    postgres_only: bool = False
    celery_only: bool = False
    minutes: float = 2.0  # how long it usually takes to fire, for the rehearsal's patience
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def dags(self) -> tuple[str, ...]:
        """The DAGs its alerts are about (empty: alerts about no DAG, such as a component's)."""
        return self.dag_ids or ((self.dag_id,) if self.dag_id else ())


# --- a task failing for good (and again: repeatedly, and for "an hour") -------------------------------------
def _failing_runs(count: int) -> Callable[[StackClient], dict[str, Any]]:
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


def _failing_runs_then_exporter_alerts(count: int) -> Callable[[StackClient], dict[str, Any]]:
    """Fail the DAG, then wait until Alertmanager holds the exporter's alerts about it (they must stay muted)."""

    def inject(client: StackClient) -> dict[str, Any]:
        context = _failing_runs(count)(client)
        context["exporter_alerts"] = {
            alertname: _wait_dag_alerts(client, alertname, {FAILING_DAG})[FAILING_DAG]
            for alertname in ("AirflowDagLastRunFailed", "AirflowTaskFailingRepeatedly", "AirflowDagFailingForAnHour")
        }
        return context

    return inject


def _healthy_run(client: StackClient, _: dict[str, Any]) -> None:
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


def _kill_scheduler(client: StackClient) -> dict[str, Any]:
    client.kill_program("airflow-scheduler")
    return {}


def _kill_scheduler_while_dags_fail(client: StackClient) -> dict[str, Any]:
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


def _start_scheduler(client: StackClient, _: dict[str, Any]) -> None:
    client.start_program("airflow-scheduler")
    client.wait_airflow_healthy()


def _start_scheduler_and_heal_dags(client: StackClient, context: dict[str, Any]) -> None:
    client.start_program("airflow-scheduler")
    healing = {dag_id: client.trigger(dag_id) for dag_id in context.get("runs", {})}
    for dag_id, run_id in healing.items():
        if client.wait_for_run(dag_id, run_id) != "success":
            raise IncidentError(f"the healthy run {run_id} of {dag_id} did not succeed")


# --- the metadata DB stopped (PostgreSQL stacks) -------------------------------------------------------------
def _stop_postgres(client: StackClient) -> dict[str, Any]:
    client.kill_program("postgres")
    return {}


def _start_postgres(client: StackClient, _: dict[str, Any]) -> None:
    client.start_program("postgres")
    # Airflow's components may have given up while their DB was gone (supervisord retries a crash twice).
    client.start_stopped_programs()
    client.wait_airflow_healthy()


# --- a DAG file that no longer imports ----------------------------------------------------------------------
def _break_a_dag_file(client: StackClient) -> dict[str, Any]:
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


def _remove_the_broken_file(client: StackClient, _: dict[str, Any]) -> None:
    BROKEN_DAG_FILE.unlink(missing_ok=True)


# --- tasks stuck in the queue: the executor's workers frozen -------------------------------------------------
def _executor_workers(client: StackClient) -> list[psutil.Process]:
    scheduler = psutil.Process(client.program_pid("airflow-scheduler"))
    return scheduler.children(recursive=True)


def _freeze_workers(client: StackClient) -> dict[str, Any]:
    workers = _executor_workers(client)
    if not workers:
        raise IncidentError("the scheduler has no executor worker processes to freeze")
    for worker in workers:
        os.kill(worker.pid, signal.SIGSTOP)
    run_id = client.trigger(FAILING_DAG)  # its tasks are queued and no worker picks them up
    return {"pids": [worker.pid for worker in workers], "run_id": run_id}


def _thaw_workers(client: StackClient, context: dict[str, Any]) -> None:
    for pid in context.get("pids", []):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            continue
    if context.get("run_id"):
        client.wait_for_run(FAILING_DAG, context["run_id"])


# --- a pool with no slot left while work waits ---------------------------------------------------------------
def _empty_the_default_pool(client: StackClient) -> dict[str, Any]:
    before = client.set_pool_slots("default_pool", 0)
    run_id = client.trigger(FAILING_DAG)  # its tasks wait for a slot
    return {"slots": before, "run_id": run_id}


def _refill_the_default_pool(client: StackClient, context: dict[str, Any]) -> None:
    client.set_pool_slots("default_pool", int(context.get("slots", 128)))
    if context.get("run_id"):
        client.wait_for_run(FAILING_DAG, context["run_id"])


# --- a DAG that stops getting its scheduled runs ------------------------------------------------------------
STALE_DAG, STALE_TASK = "monitoring_stack_health", "check_stack"  # every 5 minutes, max_active_runs=1


STALE_PERIOD = 300  # its schedule, */5, in seconds
# The hung run ends at the DAG's dagrun_timeout (4 min): start it when the next scheduled run is due 30 s to 3 min
# later, so that run is visibly late for a while before the timeout frees the slot.
STALE_DUE_WITHIN = (30, 180)


def _hang_a_run(client: StackClient) -> dict[str, Any]:
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


def _end_the_hung_run(client: StackClient, context: dict[str, Any]) -> None:
    run = quote(context["run_id"], safe="")
    client.api("PATCH", f"/dags/{STALE_DAG}/dagRuns/{run}/taskInstances/{STALE_TASK}", {"new_state": "success"})
    client.wait_for_run(STALE_DAG, context["run_id"])


# --- a run far over its learned duration ---------------------------------------------------------------------
# A one-task DAG whose runs take seconds. Its baseline is whatever the stack learned (p95 of the last runs: one slow
# run, such as a run waiting out a scheduler restart, raises it), so the slow run is sized from it.
BASELINE_DAG, BASELINE_TASK = "maintenance_log_cleanup", "delete_old_task_logs"
SLOW_RUN_FACTOR = 4  # the alert's default factor is 3: the run crosses it well before it ends


def _slow_run_after_a_baseline(client: StackClient) -> dict[str, Any]:
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


def _let_the_slow_run_finish(client: StackClient, context: dict[str, Any]) -> None:
    client.wait_for_run(BASELINE_DAG, context["run_id"], timeout=context.get("slow_seconds", 90) + 300)
    client.api("DELETE", f"/variables/{SLOW_SECONDS_VARIABLE}", ok=(204, 404))


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "task_fails_for_good",
            ("AirflowTaskFailed",),
            f"{FAILING_DAG}.{FAILING_TASK} fails both tries (demo fault switch): the plugin pages through "
            "Alertmanager; a healthy run resolves it",
            _failing_runs(1),
            _healthy_run,
            dag_id=FAILING_DAG,
        ),
        Scenario(
            "repeated_task_failures",
            ("AirflowTaskFailed",),
            f"{FAILING_DAG}.{FAILING_TASK} fails for good in two runs in a row: one page, the exporter's DAG alerts "
            "about it muted",
            _failing_runs_then_exporter_alerts(2),
            _healthy_run,
            dag_id=FAILING_DAG,
            minutes=3,
        ),
        Scenario(
            "task_marked_failed",
            ("AirflowTaskFailed",),
            f"a running {FAILING_DAG}.{FAILING_TASK} is set to failed through the REST API, as 'mark failed' does",
            task_failures.mark_running_task_failed,
            task_failures.healthy_failing_dag_run,
            dag_id=FAILING_DAG,
        ),
        Scenario(
            "tasks_killed",
            ("AirflowTaskFailed",),
            f"the task processes of {', '.join(task_failures.KILLED_TASKS)} are SIGKILLed at once, on their first try "
            "(retried: no page) and their last (one page for the three)",
            task_failures.kill_tasks_in_three_dags,
            task_failures.healthy_runs_of_the_three,
            dag_ids=tuple(task_failures.KILLED_TASKS),
            minutes=3,
        ),
        Scenario(
            "task_heartbeat_lost",
            ("AirflowTaskFailed",),
            f"the worker running {FAILING_DAG}.{FAILING_TASK} is killed on each try, so its heartbeat stops "
            "(needs a short [scheduler] task_instance_heartbeat_timeout; 300 s by default)",
            task_failures.lose_a_tasks_heartbeat,
            task_failures.healthy_failing_dag_run,
            dag_id=FAILING_DAG,
            minutes=12,
        ),
        Scenario(
            "run_timed_out",
            ("AirflowDagRunFailed",),
            f"a run of {task_failures.TIMEOUT_DAG} hangs past its 4-minute dagrun_timeout",
            task_failures.time_out_a_run,
            task_failures.healthy_timeout_dag_run,
            dag_id=task_failures.TIMEOUT_DAG,
            minutes=6,
        ),
        Scenario(
            "failure_cleared_to_success",
            ("AirflowTaskFailed",),
            f"{FAILING_DAG}.{FAILING_TASK} fails for good, then is cleared and succeeds at once: one page, one "
            "resolution",
            task_failures.fail_for_good_until_cleared,
            task_failures.clear_to_success,
            dag_id=FAILING_DAG,
        ),
        Scenario(
            "warehouse_unavailable",
            ("AirflowTaskFailed",),
            f"the warehouse database refuses connections, so {', '.join(warehouse_outage.WAREHOUSE_TASKS)} fail for "
            "good with one error: one group per route, with their common fingerprint (AIRFLOW_OBS_DB=postgres only)",
            warehouse_outage.close_the_warehouse,
            warehouse_outage.reopen_the_warehouse,
            dag_ids=tuple(warehouse_outage.WAREHOUSE_TASKS),
            postgres_only=True,
            minutes=3,
        ),
        Scenario(
            "upstream_dag_fails",
            ("AirflowTaskFailed",),
            f"{upstream_failure.PRODUCER} fails for good, then {upstream_failure.CONSUMER} (downstream of it through "
            "warehouse://orders) fails too: one page, the ETL's, naming every DAG and team it affects; the drift "
            "monitor's page held back while the ETL fails",
            upstream_failure.fail_the_etl_and_a_dag_downstream,
            upstream_failure.heal_downstream_then_the_etl,
            dag_ids=(upstream_failure.PRODUCER, upstream_failure.CONSUMER),
            minutes=4,
        ),
        Scenario(
            "scheduler_killed",
            ("AirflowSchedulerDown",),
            "the scheduler is SIGKILLed and kept down; it is started again to recover",
            _kill_scheduler,
            _start_scheduler,
        ),
        Scenario(
            "scheduler_killed_while_dags_fail",
            ("AirflowSchedulerDown",),
            f"the scheduler is killed, then runs of {', '.join(MANY_DAGS)} fail: one page, the DAG alerts inhibited",
            _kill_scheduler_while_dags_fail,
            _start_scheduler_and_heal_dags,
            minutes=3,
        ),
        Scenario(
            "metadata_db_stopped",
            ("AirflowMetadataDBUnreachable",),
            "the stack's PostgreSQL is killed (AIRFLOW_OBS_DB=postgres stacks only); it is started again",
            _stop_postgres,
            _start_postgres,
            postgres_only=True,
        ),
        Scenario(
            "import_error",
            ("AirflowDagImportErrors",),
            f"a DAG file that raises on import appears in dags/ ({BROKEN_DAG_FILE.name}); it is deleted to recover",
            _break_a_dag_file,
            _remove_the_broken_file,
        ),
        Scenario(
            "tasks_stuck_queued",
            ("AirflowTasksQueuedTooLong",),
            "the executor's worker processes are frozen (SIGSTOP) while a run is triggered; SIGCONT recovers",
            _freeze_workers,
            _thaw_workers,
        ),
        Scenario(
            "pool_saturated",
            ("AirflowPoolSaturated",),
            "default_pool is set to 0 slots while a run waits for it; its slots are restored to recover",
            _empty_the_default_pool,
            _refill_the_default_pool,
        ),
        Scenario(
            "missed_schedule",
            ("AirflowDagMissedSchedule",),
            f"a run of {STALE_DAG} hangs, so its next 5-minute run is never created; the hung task is set to success",
            _hang_a_run,
            _end_the_hung_run,
            dag_id=STALE_DAG,
            minutes=6,
        ),
        Scenario(
            "run_far_over_baseline",
            ("AirflowDagRunOverBaseline",),
            f"{BASELINE_DAG} learns a baseline from three healthy runs, then one runs {SLOW_RUN_FACTOR}x as long",
            _slow_run_after_a_baseline,
            _let_the_slow_run_finish,
            dag_id=BASELINE_DAG,
            minutes=5,
        ),
        Scenario(
            "deadline_missed",
            ("AirflowDagRunDeadlineMissed",),
            f"{deadlines.DEADLINE_DAG} runs three times, then once far past its Deadline Alert (average runtime + "
            "margin): its callback warns through Alertmanager, the exporter's AirflowDagDeadlineMissed muted; the "
            "alert ends by itself deadline_window + 5m after the miss",
            deadlines.miss_the_deadline,
            deadlines.let_the_late_run_finish,
            dag_id=deadlines.DEADLINE_DAG,
            minutes=4,
        ),
        Scenario(
            "celery_worker_killed",
            ("AirflowCeleryWorkerLost",),
            f"the Celery worker running {worker_loss.ETL_DAG}.{worker_loss.LONG_TASK} is SIGKILLed with its tasks "
            "(AIRFLOW_OBS_EXECUTOR=celery only); the retry finishes on the other worker, then it is started again",
            worker_loss.kill_the_worker_running_the_load,
            worker_loss.let_the_retry_finish_then_restart_the_worker,
            celery_only=True,
            minutes=8,
        ),
    )
}


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise IncidentError(f"scenario {name!r} is unknown: expected one of {', '.join(SCENARIOS)}") from None


def cleanup_paths() -> list[Path]:
    """Files a scenario may leave if it is interrupted before recovering."""
    return [BROKEN_DAG_FILE]
