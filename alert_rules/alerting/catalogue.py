"""Every alert and recording rule of the toolkit, as data. `render.py` turns them into Prometheus rule files.

An alert here says what is wrong (expr, for), how bad (severity) and what to tell the engineer (summary,
description with the values). Links are not written here: the renderer adds `runbook_url` (runbooks/<alert>.md),
`dashboard_url` and, for alerts about a DAG, `airflow_url` to every alert the same way.

Thresholds come in as `t` (thresholds.resolve()), so the committed files and a deployment's render differ only
in numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_obs.alerting.thresholds import seconds
from airflow_obs.observability import links

# Where an alert's dashboard_url points: the dashboard uid, and whether it takes the alert's dag_id.
OVERVIEW = links.OVERVIEW_DASHBOARD_UID
INFRA = links.INFRA_DASHBOARD_UID
FRESHNESS = links.FRESHNESS_DASHBOARD_UID
DAG = links.DAG_DASHBOARD_UID

EXPORTER_JOB = "airflow-exporter"
# Prometheus job of Celery Flower (CeleryExecutor only): the worker alerts, the local stack and compose scrape it.
CELERY_FLOWER_JOB = "celery-flower"
COMPONENTS = {"scheduler": "critical", "dag_processor": "critical", "triggerer": "warning"}
COMPONENT_ALERTS = {"scheduler": "AirflowSchedulerDown", "dag_processor": "AirflowDagProcessorDown",
                    "triggerer": "AirflowTriggererDown"}  # fmt: skip
COMPONENT_IMPACT = {
    "scheduler": "No task is scheduled and no DAG run starts or finishes",
    "dag_processor": "DAG files are not parsed and DAG-level callbacks (run failure and recovery messages) do not run",
    "triggerer": "Deferred tasks (sensors in deferrable mode, Deadline Alerts) never resume",
}


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str
    summary: str
    description: str
    dashboard: str  # a dashboard uid; DAG means the DAG dashboard with the alert's dag_id
    for_: str = "0s"
    about_dag: bool = False  # the alert has a dag_id label: link the DAG in the Airflow UI
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    name: str
    expr: str


@dataclass(frozen=True)
class Group:
    name: str
    file: str  # the rule file it is written to
    rules: list[Alert | Record]


def _with_owner(expr: str) -> str:
    """Adds the DAG's owner and team labels (airflow_dag_info is 1, so the value is kept) to a per-DAG expression.

    A DAG the exporter has no info for (deleted, not parsed yet) still alerts, without owner and team.
    """
    # topk: two exporters disagreeing on a DAG's owner must not make the join fail for every DAG.
    owner = "topk by (dag_id) (1, airflow:dag_owner_team:info)"
    return f"({expr})\n* on (dag_id) group_left (owner, team) {owner}\nor on (dag_id) ({expr})"


def new_since(metric: str, window: str, by: str) -> str:
    """How much a counter grew within `window`, counting a series born inside it from zero (the alerts and the
    dashboards' event panels share it).

    increase() needs two samples, so a series that appears with its first failure would show no increase.
    A counter reset (exporter restart) gives a negative difference, clamped to 0: the window then undercounts.
    """
    return f"clamp_min(sum by ({by}) ({metric}) - sum by ({by}) (({metric} offset {window}) or ({metric} * 0)), 0)"


def _component_alert(component: str, severity: str, t: dict[str, str]) -> Alert:
    metric = f'airflow_component_last_heartbeat_timestamp_seconds{{component="{component}"}}'
    return Alert(
        name=COMPONENT_ALERTS[component],
        # Stale: its job row still says running (a killed process). Absent: no running job at all (stopped).
        # Absent only counts while the exporter's components query works; otherwise the DB or exporter alert (or
        # the collector's own failure) explains it, and paging "scheduler down" would send people the wrong way.
        expr=(
            f'airflow:component_heartbeat_age_seconds{{component="{component}"}} > {seconds(t["component_heartbeat_stale"])}\n'
            f'or (absent({metric}) and on () airflow_exporter_collector_success{{collector="components"}} == 1)'
        ),
        for_=t["component_down_for"],
        severity=severity,
        labels={"component": component},
        summary=f"The Airflow {component.replace('_', '-')} is down.",
        description=(
            f"No {component.replace('_', '-')} has heartbeated for more than {t['component_heartbeat_stale']} "
            f"(or none is running). {COMPONENT_IMPACT[component]}."
        ),
        dashboard=INFRA,
    )


def recording_rules() -> list[Record]:
    """What alerts and dashboards share ([6/7] dashboards query the same names)."""
    return [
        Record("airflow:dag_owner_team:info", "max by (dag_id, owner, team) (airflow_dag_info)"),
        Record(
            "airflow:component_heartbeat_age_seconds",
            "time() - max by (component) (airflow_component_last_heartbeat_timestamp_seconds)",
        ),
        Record(
            "airflow:dag_runs_completed:rate1h", "sum by (dag_id, state) (rate(airflow_dag_runs_completed_total[1h]))"
        ),
        Record(
            "airflow:dag_run_success_ratio:1h",
            'sum by (dag_id) (rate(airflow_dag_runs_completed_total{state="success"}[1h]))\n'
            "/ sum by (dag_id) (rate(airflow_dag_runs_completed_total[1h]))",
        ),
        Record(
            "airflow:dag_run_baseline_ratio",
            "max by (dag_id) (airflow_dag_run_oldest_running_age_seconds)\n"
            "/ on (dag_id) max by (dag_id) (airflow_dag_run_duration_baseline_p95_seconds)",
        ),
        Record("airflow:task_instances:by_state", "sum by (state) (airflow_task_instances)"),
    ]


def airflow_alerts(t: dict[str, str]) -> list[Alert]:
    failed = 'airflow_task_instances_finished_total{state="failed"}'
    failures = new_since(failed, t["task_failures_window"], "dag_id, task_id")
    retries = new_since("airflow_task_instance_retries_total", t["task_retries_window"], "dag_id")
    deadlines = new_since("airflow_dag_deadline_misses_total", t["deadline_window"], "dag_id")
    return [
        *(_component_alert(component, severity, t) for component, severity in COMPONENTS.items()),
        Alert(
            name="AirflowDagLastRunFailed",
            expr=_with_owner("max by (dag_id) (airflow_dag_last_run_failed) == 1"),
            for_=t["dag_failed_for"],
            severity="warning",
            about_dag=True,
            summary="The latest run of DAG {{ $labels.dag_id }} failed.",
            description=(
                "The latest finished run of {{ $labels.dag_id }} (owner {{ $labels.owner }}, team {{ $labels.team }}) "
                "failed, and no page of the plugin's explains it (a task's AirflowTaskFailed mutes this alert)."
            ),
            dashboard=DAG,
        ),
        Alert(
            name="AirflowDagFailingForAnHour",
            expr=_with_owner(
                "max by (dag_id) (airflow_dag_last_run_failed) == 1\nunless on (dag_id) "
                f"(time() - max by (dag_id) (airflow_dag_last_success_timestamp_seconds) < {seconds(t['dag_success_grace'])})"
            ),
            for_=t["dag_failing_window"],
            severity="critical",
            about_dag=True,
            summary="DAG {{ $labels.dag_id }} has been failing for over "
            + t["dag_failing_window"]
            + " with no success.",
            description=(
                "The latest run of {{ $labels.dag_id }} (owner {{ $labels.owner }}, team {{ $labels.team }}) has been "
                f"failed for {t['dag_failing_window']} and no run succeeded in that time: its data is going stale."
            ),
            dashboard=DAG,
        ),
        Alert(
            name="AirflowTaskFailingRepeatedly",
            # Not once the DAG's latest run succeeded: a recovered DAG must not page for failures still in the
            # window (a DAG the exporter no longer knows, with no such series, still warns).
            expr=_with_owner(
                f"{failures} >= {t['task_failures_count']}\n"
                "unless on (dag_id) (max by (dag_id) (airflow_dag_last_run_failed) == 0)"
            ),
            severity="warning",
            about_dag=True,
            summary="Task {{ $labels.dag_id }}.{{ $labels.task_id }} failed {{ $value }} times in "
            + t["task_failures_window"]
            + ".",
            description=(
                "{{ $labels.dag_id }}.{{ $labels.task_id }} ended failed {{ $value }} times in the last "
                f"{t['task_failures_window']} (threshold {t['task_failures_count']}): not a one-off. It stops once a "
                "run of the DAG succeeds."
            ),
            dashboard=DAG,
        ),
        Alert(
            name="AirflowTaskRetriesElevated",
            expr=_with_owner(f"{retries} >= {t['task_retries_count']}"),
            severity="info",
            about_dag=True,
            summary="DAG {{ $labels.dag_id }} retried {{ $value }} tries in " + t["task_retries_window"] + ".",
            description=(
                "Tasks of {{ $labels.dag_id }} were retried {{ $value }} times in the last "
                f"{t['task_retries_window']} (threshold {t['task_retries_count']}): they succeed, but something is flaky."
            ),
            dashboard=DAG,
        ),
        Alert(
            name="AirflowDagMissedSchedule",
            expr=_with_owner(
                f"max by (dag_id) (airflow_dag_schedule_lateness_seconds) > {seconds(t['schedule_lateness'])}"
            ),
            severity="warning",
            about_dag=True,
            summary="DAG {{ $labels.dag_id }} missed its schedule by {{ $value | humanizeDuration }}.",
            description=(
                "The timetable of {{ $labels.dag_id }} expected a run {{ $value | humanizeDuration }} ago and none was "
                f"created (threshold {t['schedule_lateness']}): the DAG is stale."
            ),
            dashboard=FRESHNESS,
        ),
        Alert(
            name="AirflowDagRunOverBaseline",
            expr=_with_owner(
                f"airflow:dag_run_baseline_ratio > {t['baseline_factor']}\nand on (dag_id) "
                f"max by (dag_id) (airflow_dag_run_oldest_running_age_seconds) > {seconds(t['baseline_min_runtime'])}"
            ),
            severity="warning",
            about_dag=True,
            summary='A run of DAG {{ $labels.dag_id }} is {{ $value | printf "%.1f" }}x its usual duration.',
            description=(
                'The oldest running run of {{ $labels.dag_id }} has run {{ $value | printf "%.1f" }} times its '
                f"learned p95 duration (threshold {t['baseline_factor']}x, at least {t['baseline_min_runtime']}) "
                "and is still running."
            ),
            dashboard=DAG,
        ),
        Alert(
            name="AirflowDagDeadlineMissed",
            expr=_with_owner(f"{deadlines} > 0"),
            severity="warning",
            about_dag=True,
            summary="DAG {{ $labels.dag_id }} missed {{ $value }} deadline(s).",
            description=(
                "{{ $value }} Deadline Alert(s) of {{ $labels.dag_id }} passed in the last "
                f"{t['deadline_window']} before the run finished."
            ),
            dashboard=FRESHNESS,
        ),
        Alert(
            name="AirflowTaskHeartbeatLost",
            expr=_with_owner("max by (dag_id) (airflow_task_instances_heartbeat_lost) > 0"),
            for_=t["heartbeat_lost_for"],
            severity="warning",
            about_dag=True,
            summary="{{ $value }} running task(s) of DAG {{ $labels.dag_id }} lost their heartbeat.",
            description=(
                "{{ $value }} task instance(s) of {{ $labels.dag_id }} are running but silent for longer than "
                "Airflow's task_instance_heartbeat_timeout: their worker probably died."
            ),
            dashboard=DAG,
        ),
        Alert(
            name="AirflowTasksQueuedTooLong",
            expr=f"max by (pool, queue) (airflow_task_instance_oldest_queued_age_seconds) > {seconds(t['queued_too_long'])}",
            severity="warning",
            summary="Tasks in queue {{ $labels.queue }} (pool {{ $labels.pool }}) wait for {{ $value | humanizeDuration }}.",
            description=(
                "The oldest queued task of pool {{ $labels.pool }}, queue {{ $labels.queue }} has waited "
                f"{{{{ $value | humanizeDuration }}}} for a worker (threshold {t['queued_too_long']})."
            ),
            dashboard=OVERVIEW,
        ),
        Alert(
            name="AirflowPoolSaturated",
            expr=(
                'max by (pool) (airflow_pool_slots{state="open"}) <= 0\n'
                # Queued tasks already hold their slots (they wait for a worker); scheduled ones wait for a slot.
                'and on (pool) sum by (pool) (airflow_pool_slots{state="scheduled"}) > 0'
            ),
            for_=t["pool_saturated_for"],
            severity="warning",
            summary="Pool {{ $labels.pool }} has no open slot and work is waiting.",
            description=(
                f"Pool {{{{ $labels.pool }}}} has had no open slot for {t['pool_saturated_for']} while tasks wait "
                "for it: they start late."
            ),
            dashboard=OVERVIEW,
        ),
        Alert(
            name="AirflowDagImportErrors",
            expr="max by (file) (airflow_dag_import_errors) > 0",
            for_=t["import_errors_for"],
            severity="warning",
            summary="DAG file {{ $labels.file }} fails to import.",
            description=(
                "{{ $labels.file }} has {{ $value }} import error(s): its DAGs are not updated (new ones do not "
                "appear). The error text is in the Airflow UI's import errors."
            ),
            dashboard=OVERVIEW,
        ),
    ]


def groups(t: dict[str, str]) -> list[Group]:
    # They build on this module's types.
    from airflow_obs.alerting.asset_impact import impact_alerts, impact_records
    from airflow_obs.alerting.celery_alerts import celery_alerts
    from airflow_obs.alerting.platform_alerts import infrastructure_alerts, meta_alerts

    return [
        Group("airflow-obs.meta", "meta.rules.yml", [*meta_alerts(t)]),
        Group("airflow-obs.recording", "airflow.rules.yml", [*recording_rules()]),
        Group("airflow-obs.airflow", "airflow.rules.yml", [*airflow_alerts(t)]),
        Group("airflow-obs.impact", "airflow.rules.yml", [*impact_records(), *impact_alerts()]),
        Group("airflow-obs.celery", "airflow.rules.yml", [*celery_alerts(t)]),
        Group("airflow-obs.infrastructure", "infrastructure.rules.yml", [*infrastructure_alerts(t)]),
    ]
