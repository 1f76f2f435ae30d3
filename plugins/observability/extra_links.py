"""Task-level extra links on every task instance: its run's trace, and the DAG dashboard narrowed to the task.

Registered as global operator extra links, so the api-server builds them on request (GET .../links) from the
task instance's key: nothing is computed or stored by the task itself. The URL formats live in `links`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink
from airflow_obs.observability import links
from airflow_obs.observability.settings import settings
from airflow_obs.observability.trace_context import hex_trace_id, trace_id_of_run


class TraceLink(BaseOperatorLink):
    """The trace of the task instance's DAG run (one trace per run: the try's span is in it)."""

    name = "Trace"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        trace_id = trace_id_of_run(ti_key.dag_id, ti_key.run_id)
        return links.trace_url(settings(), hex_trace_id(trace_id))


class DashboardLink(BaseOperatorLink):
    """The DAG dashboard with the task's dag_id and task_id variables set (the console's DAG page without Grafana)."""

    name = "Dashboard"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return links.task_dashboard_url(settings(), ti_key.dag_id, ti_key.task_id)


TASK_LINKS = [TraceLink(), DashboardLink()]
