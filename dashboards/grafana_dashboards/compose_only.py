"""Panels whose data exists only in the compose stack, by (dashboard uid, panel title), each with the reason.

The local stack (`make up`) runs the exporter, node_exporter, Prometheus and Alertmanager; it has no
statsd_exporter, trace store or log store. `AIRFLOW_OBS_EXECUTOR=celery make up` adds PostgreSQL, Redis, Flower
and their exporters (CELERY_STACK_ONLY). These panels' queries are still checked with promtool and against the
known metric names (tests/unit/test_dashboards.py); the no-dead-panels test (tests/integration/
test_dashboard_panels.py) skips them by name and fails if an entry names no panel.
"""

from __future__ import annotations

from airflow_obs.observability.links import (
    DAG_DASHBOARD_UID,
    FRESHNESS_DASHBOARD_UID,
    INFRA_DASHBOARD_UID,
    OVERVIEW_DASHBOARD_UID,
)

_STATSD = "Airflow's StatsD metrics reach Prometheus through statsd_exporter, which only compose runs"

COMPOSE_ONLY: dict[tuple[str, str], str] = {
    (OVERVIEW_DASHBOARD_UID, "Task latency: queued to start (p95, StatsD)"): _STATSD,
    (DAG_DASHBOARD_UID, "Task duration (mean, StatsD)"): _STATSD,
    (DAG_DASHBOARD_UID, "Recent traces"): "the trace store (Tempo) runs only in compose; locally spans go to a file",
    (DAG_DASHBOARD_UID, "Logs"): "the log store (Loki and its shipper) runs only in compose",
    (INFRA_DASHBOARD_UID, "Heartbeats sent (StatsD)"): _STATSD,
    (INFRA_DASHBOARD_UID, "Executor slots (StatsD)"): _STATSD,
    (INFRA_DASHBOARD_UID, "Scheduler loop (StatsD)"): _STATSD,
    (INFRA_DASHBOARD_UID, "DAG parsing (StatsD)"): _STATSD,
    (FRESHNESS_DASHBOARD_UID, "Deadline outcomes (StatsD)"): _STATSD,
}

_CELERY = "Flower runs only with CeleryExecutor: on `AIRFLOW_OBS_EXECUTOR=celery make up` and compose"
_REDIS = "Redis (the Celery broker) and redis_exporter run on `AIRFLOW_OBS_EXECUTOR=celery make up` and compose"
_POSTGRES = "postgres_exporter runs on `AIRFLOW_OBS_EXECUTOR=celery make up` (which uses PostgreSQL) and compose"

# Panels whose data exists on the Celery local stack and compose but not on the default `make up` (LocalExecutor).
CELERY_STACK_ONLY: dict[tuple[str, str], str] = {
    (INFRA_DASHBOARD_UID, "Celery workers online"): _CELERY,
    (INFRA_DASHBOARD_UID, "Tasks executing per worker"): _CELERY,
    (INFRA_DASHBOARD_UID, "Tasks finished per worker"): _CELERY,
    (INFRA_DASHBOARD_UID, "Task runtime p95 per worker"): _CELERY,
    (INFRA_DASHBOARD_UID, "Broker queue depth"): _REDIS,
    (INFRA_DASHBOARD_UID, "PostgreSQL connections"): _POSTGRES,
    (INFRA_DASHBOARD_UID, "PostgreSQL transactions"): _POSTGRES,
    (INFRA_DASHBOARD_UID, "Redis (Celery broker)"): _REDIS,
    (INFRA_DASHBOARD_UID, "Redis memory"): _REDIS,
}

# Panels whose series only appear after a rare event, which a healthy stack does not produce on its own.
EVENT_ONLY: dict[tuple[str, str], str] = {
    (FRESHNESS_DASHBOARD_UID, "Deadline misses"): (
        "airflow_dag_deadline_misses_total appears with the first missed Deadline Alert: the deadline_missed scenario "
        "makes one (test_deadline_alert checks this panel's query then)"
    ),
}
