"""The "Celery workers" row of airflow-infra: per-worker liveness and work (Flower) and the broker's queue (Redis).

Flower's series carry the Celery hostname (`worker`): a handful of long-lived workers, not a label per task.
Empty on LocalExecutor; compose_only.CELERY_STACK_ONLY lists these panels.
"""

from __future__ import annotations

from airflow_obs.grafana_dashboards import panels as p
from grafana_foundation_sdk.builders import dashboard as db

# Celery's queue in Redis is a list named after the queue; redis_exporter reports its length with
# --check-single-keys=db0=default (compose: REDIS_EXPORTER_CHECK_SINGLE_KEYS).
BROKER_QUEUE = 'redis_key_size{db="db0", key="default"}'
FINISHED = 'flower_events_total{type=~"task-succeeded|task-failed"}'


def celery_row(dashboard: db.Dashboard) -> db.Dashboard:
    return (
        dashboard.with_row(p.row("Celery workers"))
        .with_panel(
            p.graph(
                "Celery workers online",
                "1 per worker Flower hears from. A worker stopped cleanly drops to 0; a killed one vanishes "
                "(AirflowCeleryWorkerLost).",
                p.prom("max by (worker) (flower_worker_online)", "{{worker}}"),
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Tasks executing per worker",
                "Airflow task tries each Celery worker is running now.",
                p.prom("max by (worker) (flower_worker_number_of_currently_executing_tasks)", "{{worker}}"),
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Tasks finished per worker",
                "Task tries per minute each worker finished, succeeded or failed (Celery's view: a task whose "
                "Airflow try failed may still count as succeeded here).",
                p.prom(
                    f"sum by (worker, type) (rate({FINISHED}[$__rate_interval])) * 60",
                    "{{worker}} {{type}}",
                ),
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Task runtime p95 per worker",
                "95th percentile of how long a task try took on each worker.",
                p.prom(
                    "histogram_quantile(0.95, sum by (worker, le) "
                    "(rate(flower_task_runtime_seconds_bucket[$__rate_interval])))",
                    "{{worker}}",
                ),
                unit="s",
            )
        )
        .with_panel(
            p.graph(
                "Broker queue depth",
                "Tasks waiting in the Redis queue `default` for a worker, next to the task instances Airflow "
                "holds as queued (sent to the executor, not started).",
                p.prom(f"max({BROKER_QUEUE})", "in the broker (Redis)", ref="A"),
                # The exporter has no queued series while nothing is queued; `or vector(0)` draws that as 0.
                p.prom(
                    'sum(airflow:task_instances:by_state{state="queued"}) or on () vector(0)',
                    "queued in Airflow",
                    ref="B",
                ),
            )
        )
    )
