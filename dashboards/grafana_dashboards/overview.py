"""airflow-overview: is Airflow healthy, what is failing, since when, and where to click next."""

from __future__ import annotations

from airflow_obs.grafana_dashboards import panels as p
from airflow_obs.observability.links import FRESHNESS_DASHBOARD_UID, INFRA_DASHBOARD_UID, OVERVIEW_DASHBOARD_UID
from grafana_foundation_sdk.builders import dashboard as db

# Same staleness as the component-down alerts' default (thresholds.py: component_heartbeat_stale 60s).
HEARTBEAT_STEPS = [(None, "green"), (30, "orange"), (60, "red")]


def _failing_and_late():
    table = p.grid(
        "Failing and late DAGs",
        "DAGs whose latest run failed or whose next scheduled run is overdue. Click a DAG to open it in Airflow.",
        p.prom("max by (dag_id) (airflow_dag_last_run_failed)", ref="A", instant=True),
        p.prom("max by (dag_id) (airflow_dag_schedule_lateness_seconds)", ref="B", instant=True),
        p.prom("airflow:dag_run_success_ratio:1h", ref="C", instant=True),
    )
    # The queries return every DAG (so the panel is never silently empty because a name broke); the table keeps
    # only the failing or late ones.
    keep = {
        "filters": [
            {"fieldName": "Value #A", "config": {"id": "equal", "options": {"value": 1}}},
            {"fieldName": "Value #B", "config": {"id": "greater", "options": {"value": 0}}},
        ],
        "match": "any",
        "type": "include",
    }
    names = {"Value #A": "Last run failed", "Value #B": "Late by (s)", "Value #C": "Success ratio (1h)"}
    return (
        table.with_transformation(p.transform("merge", {}))
        .with_transformation(p.transform("filterByValue", keep))
        .with_transformation(p.transform("organize", {"excludeByName": {"Time": True}, "renameByName": names}))
        .data_links([p.link("Open ${__data.fields.dag_id} in Airflow", p.airflow_dag_link("${__data.fields.dag_id}"))])
    )


def build() -> db.Dashboard:
    return (
        db.Dashboard("Airflow overview")
        .uid(OVERVIEW_DASHBOARD_UID)
        .tags(["airflow", "airflow-obs"])
        .time("now-24h", "now")
        .refresh("1m")
        .with_variable(p.datasource_variables()[0])
        .with_variable(p.airflow_url_variable())
        .links(
            [
                p.dashboard_link("Infrastructure", INFRA_DASHBOARD_UID),
                p.dashboard_link("Freshness", FRESHNESS_DASHBOARD_UID),
                p.link("Airflow UI", p.AIRFLOW_BASE),
            ]
        )
        .with_row(p.row("Liveness"))
        .with_panel(
            p.single(
                "Component heartbeat age",
                "Seconds since the scheduler, dag-processor and triggerer last heartbeated (from the metadata DB).",
                p.prom("airflow:component_heartbeat_age_seconds", "{{component}}"),
                unit="s",
                width=12,
                steps=HEARTBEAT_STEPS,
            )
        )
        .with_panel(
            p.single(
                "Metadata DB reachable",
                "1 when the exporter's last query on the metadata DB succeeded.",
                p.prom("min(airflow_up)"),
                steps=[(None, "red"), (1, "green")],
            )
        )
        .with_panel(
            p.single(
                "Files failing to import",
                "DAG files with import errors: their DAGs are not updated. Details in Airflow's import errors.",
                p.prom("max(airflow_dag_import_error_files)"),
                steps=[(None, "green"), (1, "red")],
            )
        )
        .with_row(p.row("Runs"))
        .with_panel(
            p.graph(
                "DAG runs per hour",
                "Finished DAG runs per hour, by final state (recording rule airflow:dag_runs_completed:rate1h).",
                p.prom("sum by (state) (airflow:dag_runs_completed:rate1h) * 3600", "{{state}}"),
            )
        )
        .with_panel(
            p.single(
                "DAG runs in the last day",
                "Finished DAG runs in the last 24 hours, by final state.",
                p.prom("sum by (state) (increase(airflow_dag_runs_completed_total[1d]))", "{{state}}"),
                width=6,
            )
        )
        .with_panel(
            p.single(
                "Run success rate (1h)",
                "Share of the last hour's finished runs that succeeded, over all DAGs.",
                p.prom(
                    'sum(airflow:dag_runs_completed:rate1h{state="success"}) / sum(airflow:dag_runs_completed:rate1h)'
                ),
                unit="percentunit",
                steps=[(None, "red"), (0.9, "orange"), (0.99, "green")],
            )
        )
        .with_panel(_failing_and_late())
        .with_row(p.row("Tasks"))
        .with_panel(
            p.graph(
                "Task throughput",
                "Task tries finishing per second, by final state.",
                p.prom("sum by (state) (rate(airflow_task_instances_finished_total[$__rate_interval]))", "{{state}}"),
                unit="ops",
            )
        )
        .with_panel(
            p.graph(
                "Task latency: oldest queued task",
                "How long the oldest queued task has waited for a worker, per pool and queue (queued to start).",
                # The exporter has a series only while a task is queued; `or vector(0)` draws "nothing waits" as 0.
                p.prom(
                    "max by (pool, queue) (airflow_task_instance_oldest_queued_age_seconds) or on () vector(0)",
                    "{{pool}} {{queue}}",
                ),
                unit="s",
            )
        )
        .with_panel(
            p.graph(
                "Task latency: queued to start (p95, StatsD)",
                "95th percentile of the time task tries spent queued before starting (Airflow's task.queued_duration).",
                p.prom(
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(airflow_task_queued_duration_seconds_bucket[$__rate_interval])))",
                    "p95",
                ),
                unit="s",
            )
        )
        .with_panel(
            p.graph(
                "Task instances by state",
                "Live task instances (queued, running, deferred...): queue pressure.",
                p.prom("airflow:task_instances:by_state", "{{state}}"),
            )
        )
        .with_panel(
            p.graph(
                "Pool slots",
                "Slots of each pool by state; no open slot while tasks wait means the pool is saturated.",
                p.prom("sum by (pool, state) (airflow_pool_slots)", "{{pool}} {{state}}"),
            )
        )
        .with_row(p.row("Alerts"))
        .with_panel(
            p.grid(
                "Firing alerts",
                "Alerts Prometheus is firing now (Alertmanager decides who is notified).",
                p.prom('ALERTS{alertstate="firing"}', instant=True),
            ).with_transformation(p.transform("organize", {"excludeByName": {"Time": True, "Value": True}}))
        )
        .build()
    )
