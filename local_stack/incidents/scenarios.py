"""The failure modes the harness can cause, each with the alert it must raise and how to undo it.

A scenario's `inject` breaks the running stack the way production breaks (a task failing for good, a killed
scheduler, a broken DAG file...) using the DAG suite's fault switches, Airflow's REST API and supervisord (the
faults themselves: stack_faults.py and the modules beside it); `recover` puts it back, after which the alert must
resolve. Both wait, boundedly, for what they caused, so a caller can time the alert from the moment `inject` returns.

Time-based alerts ("failing for an hour") are compressed by rendering the rules with shorter thresholds
(AIRFLOW_OBS_ALERT_*; `COMPRESSED_THRESHOLDS` is what the tests use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_obs.alerting.thresholds import env_var

from local_stack.incidents import (
    deadlines,
    stack_faults,
    task_failures,
    upstream_failure,
    warehouse_outage,
    worker_loss,
)
from local_stack.incidents.client import IncidentError, StackClient
from local_stack.incidents.stack_faults import (
    BASELINE_DAG,
    BROKEN_DAG_FILE,
    FAILING_DAG,
    FAILING_TASK,
    MANY_DAGS,
    SLOW_RUN_FACTOR,
    STALE_DAG,
)

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


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "task_fails_for_good",
            ("AirflowTaskFailed",),
            f"{FAILING_DAG}.{FAILING_TASK} fails both tries (demo fault switch): the plugin pages through "
            "Alertmanager; a healthy run resolves it",
            stack_faults.failing_runs(1),
            stack_faults.healthy_run,
            dag_id=FAILING_DAG,
        ),
        Scenario(
            "repeated_task_failures",
            ("AirflowTaskFailed",),
            f"{FAILING_DAG}.{FAILING_TASK} fails for good in two runs in a row: one page, the exporter's DAG alerts "
            "about it muted",
            stack_faults.failing_runs_then_exporter_alerts(2),
            stack_faults.healthy_run,
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
            stack_faults.kill_scheduler,
            stack_faults.start_scheduler,
        ),
        Scenario(
            "scheduler_killed_while_dags_fail",
            ("AirflowSchedulerDown",),
            f"the scheduler is killed, then runs of {', '.join(MANY_DAGS)} fail: one page, the DAG alerts inhibited",
            stack_faults.kill_scheduler_while_dags_fail,
            stack_faults.start_scheduler_and_heal_dags,
            minutes=3,
        ),
        Scenario(
            "metadata_db_stopped",
            ("AirflowMetadataDBUnreachable",),
            "the stack's PostgreSQL is killed (AIRFLOW_OBS_DB=postgres stacks only); it is started again",
            stack_faults.stop_postgres,
            stack_faults.start_postgres,
            postgres_only=True,
        ),
        Scenario(
            "import_error",
            ("AirflowDagImportErrors",),
            f"a DAG file that raises on import appears in dags/ ({BROKEN_DAG_FILE.name}); it is deleted to recover",
            stack_faults.break_a_dag_file,
            stack_faults.remove_the_broken_file,
        ),
        Scenario(
            "tasks_stuck_queued",
            ("AirflowTasksQueuedTooLong",),
            "the executor's worker processes are frozen (SIGSTOP) while a run is triggered; SIGCONT recovers",
            stack_faults.freeze_workers,
            stack_faults.thaw_workers,
        ),
        Scenario(
            "pool_saturated",
            ("AirflowPoolSaturated",),
            "default_pool is set to 0 slots while a run waits for it; its slots are restored to recover",
            stack_faults.empty_the_default_pool,
            stack_faults.refill_the_default_pool,
        ),
        Scenario(
            "missed_schedule",
            ("AirflowDagMissedSchedule",),
            f"a run of {STALE_DAG} hangs, so its next 5-minute run is never created; the hung task is set to success",
            stack_faults.hang_a_run,
            stack_faults.end_the_hung_run,
            dag_id=STALE_DAG,
            minutes=6,
        ),
        Scenario(
            "run_far_over_baseline",
            ("AirflowDagRunOverBaseline",),
            f"{BASELINE_DAG} learns a baseline from three healthy runs, then one runs {SLOW_RUN_FACTOR}x as long",
            stack_faults.slow_run_after_a_baseline,
            stack_faults.let_the_slow_run_finish,
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
