"""Alerts about what Airflow stands on: the toolkit's own pipeline (Watchdog, exporter, metadata DB reachability,
Alertmanager) and the infrastructure (PostgreSQL, the Redis broker, the host). Airflow's own alerts are in catalogue.py."""

from __future__ import annotations

from airflow_obs.alerting.catalogue import EXPORTER_JOB, INFRA, OVERVIEW, Alert


def meta_alerts(t: dict[str, str]) -> list[Alert]:
    return [
        Alert(
            name="Watchdog",
            expr="vector(1)",
            severity="none",
            summary="Alerting pipeline heartbeat; always firing.",
            description=(
                "This alert always fires so that the heartbeat receiver can page when it stops arriving: that means "
                "Prometheus, Alertmanager or the route between them is down."
            ),
            dashboard=OVERVIEW,
        ),
        Alert(
            name="AirflowExporterDown",
            expr=f'up{{job="{EXPORTER_JOB}"}} == 0 or absent(up{{job="{EXPORTER_JOB}"}})',
            for_=t["exporter_down_for"],
            severity="critical",
            summary="Prometheus cannot scrape the Airflow exporter.",
            description=(
                f"The scrape of {{{{ $labels.instance }}}} has failed for {t['exporter_down_for']} (or the job has no "
                "target). Every alert built on the exporter's metrics (DAG failures, late DAGs, stuck tasks) is blind."
            ),
            dashboard=OVERVIEW,
        ),
        Alert(
            name="AirflowMetadataDBUnreachable",
            expr="airflow_up == 0",
            for_=t["metadata_db_down_for"],
            severity="critical",
            summary="The Airflow metadata database is unreachable from the exporter.",
            description=(
                f"airflow_up has been 0 for {t['metadata_db_down_for']} on {{{{ $labels.instance }}}}: the exporter "
                "cannot run a query on the metadata database. The scheduler and UI are probably failing too."
            ),
            dashboard=OVERVIEW,
        ),
        Alert(
            name="AlertmanagerFailingToSend",
            expr="sum by (instance, integration) (rate(alertmanager_notifications_failed_total[5m])) > 0",
            for_=t["alertmanager_failing_for"],
            severity="critical",
            summary="Alertmanager fails to deliver {{ $labels.integration }} notifications.",
            description=(
                "Alertmanager {{ $labels.instance }} has failed to send {{ $labels.integration }} notifications "
                f'for {t["alertmanager_failing_for"]} ({{{{ $value | printf "%.2f" }}}}/s): alerts are not reaching people.'
            ),
            dashboard=OVERVIEW,
        ),
    ]


def infrastructure_alerts(t: dict[str, str]) -> list[Alert]:
    real_fs = 'fstype!~"tmpfs|overlay|squashfs|ramfs|devtmpfs"'
    return [
        Alert(
            name="PostgresDown",
            expr="pg_up == 0",
            for_="1m",
            severity="critical",
            summary="PostgreSQL {{ $labels.instance }} is down.",
            description="postgres_exporter cannot connect to {{ $labels.instance }}: the metadata DB is gone.",
            dashboard=INFRA,
        ),
        Alert(
            name="RedisDown",
            expr="redis_up == 0",
            for_="1m",
            severity="critical",
            summary="Redis (the Celery broker) behind {{ $labels.instance }} is down.",
            description=(
                "redis_exporter {{ $labels.instance }} cannot reach its Redis: the Celery broker, so no task "
                "reaches a worker and queued tasks pile up."
            ),
            dashboard=INFRA,
        ),
        Alert(
            name="PostgresConnectionsNearLimit",
            expr=(
                "sum by (instance) (pg_stat_activity_count)\n/ on (instance) max by (instance) "
                f"(pg_settings_max_connections) > {t['postgres_connections_ratio']}"
            ),
            for_="5m",
            severity="warning",
            summary="PostgreSQL {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its connections.",
            description=(
                "{{ $value | humanizePercentage }} of max_connections are in use on {{ $labels.instance }} "
                f"(threshold {t['postgres_connections_ratio']}): new Airflow connections will soon be refused."
            ),
            dashboard=INFRA,
        ),
        Alert(
            name="HostHighCpu",
            expr=f'1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[5m])) > {t["host_cpu_busy_ratio"]}',
            for_=t["host_for"],
            severity="warning",
            summary="Host {{ $labels.instance }} CPU is {{ $value | humanizePercentage }} busy.",
            description=(
                f"CPU on {{{{ $labels.instance }}}} has been over {t['host_cpu_busy_ratio']} busy for {t['host_for']}: "
                "tasks and the scheduler slow down."
            ),
            dashboard=INFRA,
        ),
        Alert(
            name="HostLowMemory",
            expr=(f"node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < {t['host_memory_available_ratio']}"),
            for_=t["host_for"],
            severity="warning",
            summary="Host {{ $labels.instance }} has {{ $value | humanizePercentage }} of its memory left.",
            description=(
                "Available memory on {{ $labels.instance }} is {{ $value | humanizePercentage }} "
                f"(threshold {t['host_memory_available_ratio']}): the OOM killer may stop tasks or the scheduler."
            ),
            dashboard=INFRA,
        ),
        Alert(
            name="HostDiskSpaceLow",
            expr=(
                f"node_filesystem_avail_bytes{{{real_fs}}} / node_filesystem_size_bytes{{{real_fs}}} "
                f"< {t['host_disk_available_ratio']}\nand node_filesystem_readonly == 0"
            ),
            for_=t["host_for"],
            severity="warning",
            summary="Filesystem {{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | humanizePercentage }} free.",
            description=(
                "{{ $labels.mountpoint }} ({{ $labels.device }}) on {{ $labels.instance }} is nearly full "
                f"(threshold {t['host_disk_available_ratio']} free). Task logs and the metadata DB live on disk: "
                "writes will fail."
            ),
            dashboard=INFRA,
        ),
    ]
