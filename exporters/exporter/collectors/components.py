"""Component liveness: the last heartbeat of the scheduler, triggerer and dag-processor jobs."""

from __future__ import annotations

from collections.abc import Iterator

from airflow_obs.exporter.database import airflow_table, utc_timestamp
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

# Airflow's job types -> the component names our alerts and dashboards use.
COMPONENTS = {"SchedulerJob": "scheduler", "TriggererJob": "triggerer", "DagProcessorJob": "dag_processor"}


class ComponentHeartbeatCollector:
    """Yields airflow_component_last_heartbeat_timestamp_seconds{component} for running jobs.

    A component with no running job yields no series: alerts use absent() for that case.
    """

    name = "components"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        job = airflow_table(self._engine, "job")
        # Index idx_job_state_heartbeat (state, latest_heartbeat): only running jobs are read.
        query = (
            select(job.c.job_type, func.max(job.c.latest_heartbeat))
            .where(job.c.state == "running", job.c.job_type.in_(COMPONENTS))
            .group_by(job.c.job_type)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        family = GaugeMetricFamily(
            "airflow_component_last_heartbeat_timestamp_seconds",
            "Unix time of the latest heartbeat of the component's running jobs (job table).",
            labels=["component"],
        )
        for job_type, heartbeat in rows:
            if heartbeat is not None:
                family.add_metric([COMPONENTS[job_type]], utc_timestamp(heartbeat))
        yield family
