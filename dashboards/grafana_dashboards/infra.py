"""airflow-infra: Airflow's components and what they stand on: scheduler, executor, Celery workers, parsing, host,
PostgreSQL, Redis."""

from __future__ import annotations

from airflow_obs.grafana_dashboards import panels as p
from airflow_obs.grafana_dashboards.celery_panels import celery_row
from airflow_obs.grafana_dashboards.overview import HEARTBEAT_STEPS
from airflow_obs.observability.links import INFRA_DASHBOARD_UID, OVERVIEW_DASHBOARD_UID
from grafana_foundation_sdk.builders import dashboard as db

REAL_FS = 'fstype!~"tmpfs|overlay|squashfs|ramfs|devtmpfs"'  # as the HostDiskSpaceLow alert


def _airflow(dashboard: db.Dashboard) -> db.Dashboard:
    return (
        dashboard.with_row(p.row("Airflow components"))
        .with_panel(
            p.graph(
                "Heartbeat age",
                "Seconds since each component's latest heartbeat in the metadata DB.",
                p.prom("airflow:component_heartbeat_age_seconds", "{{component}}"),
                unit="s",
            ).thresholds(p._thresholds(HEARTBEAT_STEPS))
        )
        .with_panel(
            p.graph(
                "Heartbeats sent (StatsD)",
                "Heartbeats per minute each component sent over StatsD.",
                p.prom("rate(airflow_scheduler_heartbeat_total[$__rate_interval]) * 60", "scheduler", ref="A"),
                p.prom("rate(airflow_dag_processor_heartbeat_total[$__rate_interval]) * 60", "dag-processor", ref="B"),
                p.prom("sum(rate(airflow_triggerer_heartbeat_total[$__rate_interval])) * 60", "triggerer", ref="C"),
            )
        )
        .with_panel(
            p.graph(
                "Executor slots (StatsD)",
                "Open, queued and running slots of the executor.",
                p.prom("sum(airflow_executor_open_slots)", "open", ref="A"),
                p.prom("sum(airflow_executor_queued_tasks)", "queued", ref="B"),
                p.prom("sum(airflow_executor_running_tasks)", "running", ref="C"),
            )
        )
        .with_panel(
            p.graph(
                "Scheduler loop (StatsD)",
                "p95 duration of the scheduler loop and of its critical section.",
                p.prom(
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(airflow_scheduler_scheduler_loop_duration_seconds_bucket[$__rate_interval])))",
                    "loop p95",
                    ref="A",
                ),
                p.prom(
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(airflow_scheduler_critical_section_duration_seconds_bucket[$__rate_interval])))",
                    "critical section p95",
                    ref="B",
                ),
                unit="s",
            )
        )
        .with_panel(
            p.graph(
                "DAG parsing (StatsD)",
                "Time to parse every DAG file once, and the DAGs found.",
                p.prom("max(airflow_dag_processing_total_parse_time_seconds)", "total parse time", ref="A"),
                p.prom("max(airflow_dagbag_size)", "DAGs", ref="B"),
            )
        )
        .with_panel(
            p.graph(
                "DAG files failing to import",
                "DAG files with import errors in the metadata DB (exporter).",
                p.prom("max(airflow_dag_import_error_files)", "files failing (exporter)", ref="A"),
            )
        )
        .with_panel(
            p.graph(
                "Exporter collectors",
                "Time each exporter collector takes; a collector at 0 success is failing.",
                p.prom("max by (collector) (airflow_exporter_collector_duration_seconds)", "{{collector}}", ref="A"),
                unit="s",
            )
        )
    )


def _host(dashboard: db.Dashboard) -> db.Dashboard:
    return (
        dashboard.with_row(p.row("Host (node_exporter)"))
        .with_panel(
            p.graph(
                "CPU busy",
                "Share of CPU time not idle, per host.",
                p.prom(
                    '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval]))',
                    "{{instance}}",
                ),
                unit="percentunit",
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Memory available",
                "Share of memory still available, per host.",
                p.prom("node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "{{instance}}"),
                unit="percentunit",
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Disk free",
                "Share of each real filesystem still free.",
                p.prom(
                    f"node_filesystem_avail_bytes{{{REAL_FS}}} / node_filesystem_size_bytes{{{REAL_FS}}}",
                    "{{instance}} {{mountpoint}}",
                ),
                unit="percentunit",
                width=8,
            )
        )
    )


def _datastores(dashboard: db.Dashboard) -> db.Dashboard:
    return (
        dashboard.with_row(p.row("PostgreSQL and Redis"))
        .with_panel(
            p.graph(
                "PostgreSQL connections",
                "Connections in use against max_connections (the PostgresConnectionsNearLimit alert's ratio).",
                p.prom("sum by (instance) (pg_stat_activity_count)", "{{instance}} in use", ref="A"),
                p.prom("max by (instance) (pg_settings_max_connections)", "{{instance}} max", ref="B"),
                p.prom("min by (instance) (pg_up)", "{{instance}} up", ref="C"),
            )
        )
        .with_panel(
            p.graph(
                "PostgreSQL transactions",
                "Commits and rollbacks per second on the metadata DB.",
                p.prom(
                    "sum by (instance) (rate(pg_stat_database_xact_commit[$__rate_interval]))",
                    "{{instance}} commit",
                    ref="A",
                ),
                p.prom(
                    "sum by (instance) (rate(pg_stat_database_xact_rollback[$__rate_interval]))",
                    "{{instance}} rollback",
                    ref="B",
                ),
                unit="ops",
            )
        )
        .with_panel(
            p.graph(
                "Redis (Celery broker)",
                "Connected clients and memory of the Celery broker.",
                p.prom("max by (instance) (redis_up)", "{{instance}} up", ref="A"),
                p.prom("max by (instance) (redis_connected_clients)", "{{instance}} clients", ref="B"),
            )
        )
        .with_panel(
            p.graph(
                "Redis memory",
                "Memory used by the broker.",
                p.prom("max by (instance) (redis_memory_used_bytes)", "{{instance}}"),
                unit="bytes",
            )
        )
    )


def build() -> db.Dashboard:
    dashboard = (
        db.Dashboard("Airflow scheduler and infrastructure")
        .uid(INFRA_DASHBOARD_UID)
        .tags(["airflow", "airflow-obs"])
        .time("now-6h", "now")
        .refresh("1m")
        .with_variable(p.datasource_variables()[0])
        .links([p.dashboard_link("Overview", OVERVIEW_DASHBOARD_UID)])
    )
    return _datastores(_host(celery_row(_airflow(dashboard)))).build()
