"""Alerts about CeleryExecutor workers, seen through Flower's /metrics (job CELERY_FLOWER_JOB).

Flower forgets a worker that sent no heartbeat for FLOWER_PURGE_OFFLINE_WORKERS seconds: its series vanish. A worker
stopped gracefully says goodbye first (worker-offline sets flower_worker_online to 0); a killed one (SIGKILL, OOM,
a lost node) does not, so "was online, now absent" is what tells a lost worker from a stopped one.
The broker (Redis) is infrastructure: RedisDown is in platform_alerts.py.
"""

from __future__ import annotations

from airflow_obs.alerting.catalogue import CELERY_FLOWER_JOB, INFRA, Alert


def celery_alerts(t: dict[str, str]) -> list[Alert]:
    flower_up = f'up{{job="{CELERY_FLOWER_JOB}"}}'
    window = t["celery_worker_lost_window"]
    return [
        Alert(
            name="AirflowCeleryWorkerLost",
            # `unless` and `and` bind equally and left to right: (last seen online, now absent) while Flower answers.
            # Flower down leaves every worker absent: that is AirflowCeleryMonitorDown, not lost workers.
            expr=(
                f"(max by (worker) (last_over_time(flower_worker_online[{window}])) == 1)\n"
                "unless on (worker) flower_worker_online\n"
                f"and on () ({flower_up} == 1)"
            ),
            for_=t["component_down_for"],
            severity="warning",
            summary="Celery worker {{ $labels.worker }} vanished without shutting down.",
            description=(
                "Celery worker {{ $labels.worker }} was online and stopped heartbeating without a worker-offline "
                "event (killed, out of memory or its host lost). Its running tasks are failed and retried by Airflow "
                "after task_instance_heartbeat_timeout; the other workers take the queue. The alert resolves when "
                f"the worker comes back, or {window} after it vanished."
            ),
            dashboard=INFRA,
        ),
        Alert(
            name="AirflowCeleryMonitorDown",
            # No absent(): a deployment without Celery has no Flower job and must stay quiet.
            expr=f"{flower_up} == 0",
            for_=t["exporter_down_for"],
            severity="warning",
            summary="Prometheus cannot scrape Celery Flower.",
            description=(
                f"The scrape of Flower {{{{ $labels.instance }}}} has failed for {t['exporter_down_for']}: the "
                "Celery worker alerts and panels are blind (a lost worker would not alert). Tasks still run."
            ),
            dashboard=INFRA,
        ),
    ]
