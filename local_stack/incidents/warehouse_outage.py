"""The DAG suite's PostgreSQL warehouse refusing connections: tasks in three DAGs fail for good with one error.

The warehouse database is closed to new connections (`ALLOW_CONNECTIONS false`) and its open sessions are ended,
while Airflow's own database beside it in the same cluster keeps working: what a warehouse outage or a revoked
login looks like to the DAGs. Each DAG's warehouse task fails every try with `database "warehouse" is not
currently accepting connections`, so their pages share one error fingerprint and Alertmanager sends them as one
group per route (updated, not repeated, as later tasks join it). Reopening the warehouse and running each DAG
again resolves them.
"""

from __future__ import annotations

import time
from contextlib import closing
from typing import Any

from local_stack.incidents.client import IncidentError, StackClient
from local_stack.incidents.task_failures import healthy_runs, wait_task
from local_stack.postgres import superuser_connection
from local_stack.settings import StackSettings

WAREHOUSE_DATABASE = "warehouse"  # local_stack.postgres creates it beside Airflow's
# The first task of each DAG that opens the warehouse; the tasks before them do not touch it.
WAREHOUSE_TASKS = {
    "etl_orders": "check_warehouse",
    "monitoring_daily_report": "summarise_stack_health",
    "monitoring_stack_health": "record_health",
}


def _allow_connections(settings: StackSettings, allowed: bool) -> None:
    with closing(superuser_connection(settings)) as connection:
        connection.autocommit = True  # ALTER DATABASE cannot run in a transaction block
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER DATABASE {WAREHOUSE_DATABASE} WITH ALLOW_CONNECTIONS {str(allowed).lower()}")
            if not allowed:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (WAREHOUSE_DATABASE,),
                )


def _wait_for_other_runs_to_end(client: StackClient, timeout: float = 300.0) -> None:
    """Until no other DAG has a run in flight: one that reached the warehouse during the outage would join the
    incident (rightly), and a fresh stack's first scheduled runs may not be able to end well (a model with no
    training data yet), so its alert would keep the group from resolving."""
    deadline = time.monotonic() + timeout
    while True:
        active = client.api("GET", "/dags/~/dagRuns?state=running&state=queued&limit=100")["dag_runs"]
        others = sorted({run["dag_id"] for run in active} - set(WAREHOUSE_TASKS))
        if not others:
            return
        if time.monotonic() > deadline:
            raise IncidentError(f"runs of {others} still in flight after {timeout:.0f}s, before closing the warehouse")
        time.sleep(2)


def close_the_warehouse(client: StackClient) -> dict[str, Any]:
    """Close the warehouse, run the three DAGs, and wait until each warehouse task has failed its last try."""
    _wait_for_other_runs_to_end(client)
    _allow_connections(client.settings, allowed=False)
    runs = {dag_id: client.trigger(dag_id) for dag_id in WAREHOUSE_TASKS}
    tries = {
        dag_id: wait_task(client, dag_id, runs[dag_id], task_id, ("failed",))["try_number"]
        for dag_id, task_id in WAREHOUSE_TASKS.items()
    }
    return {"runs": runs, "tries": tries}


def reopen_the_warehouse(client: StackClient, _: dict[str, Any]) -> None:
    _allow_connections(client.settings, allowed=True)
    healthy_runs(client, list(WAREHOUSE_TASKS))
