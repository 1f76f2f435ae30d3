"""A run that misses its DAG's Deadline Alert: `maintenance_db_backup` runs far longer than its average.

The DAG's deadline is the average duration of its last runs plus a margin (dags/maintenance_db_backup.py), and
exists only once three runs have finished. The scenario gives it three healthy runs, computes the average the
scheduler will use (from the same runs, through the REST API), reads the margin from the deadline Airflow holds
(the UI's deadline-alerts endpoint), and triggers a run whose backup task sleeps
(the fault switch's `slow` mode) past average + margin: it misses the deadline about two minutes after it is
queued, and succeeds half a minute later. The DAG's callback pages `AirflowDagRunDeadlineMissed`.

Recovery lets the late run finish and removes the slow-down. The alert resolves by itself when the exporter's
alert about the same miss has ended (observability/deadlines.py): `AIRFLOW_OBS_ALERT_DEADLINE_WINDOW` (15m by
default) plus 5 minutes after the miss.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from dag_suite.faults import SLOW_SECONDS_VARIABLE

from local_stack.incidents.client import IncidentError, StackClient

DEADLINE_DAG, SLOW_TASK = "maintenance_db_backup", "backup_metadata_db"
HEALTHY_RUNS = 3  # the deadline's min_runs: with fewer finished runs Airflow sets no deadline
AVERAGE_OVER = 10  # its max_runs: the average the scheduler takes is over this many latest runs
PAST_THE_DEADLINE = 30  # seconds the slow run keeps going after its deadline, so the miss happens while it runs
RUN_TIMEOUT = 300.0


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def average_runtime(client: StackClient, dag_id: str = DEADLINE_DAG, runs: int = AVERAGE_OVER) -> float:
    """The DAG's average run duration in seconds, as AverageRuntimeDeadline computes it: its latest `runs` runs by
    logical date that have started and ended."""
    found = client.api("GET", f"/dags/{dag_id}/dagRuns?order_by=-logical_date&limit=100")["dag_runs"]
    durations = []
    for run in found:
        start, end = _moment(run.get("start_date")), _moment(run.get("end_date"))
        if start is not None and end is not None:
            durations.append((end - start).total_seconds())
    if len(durations) < HEALTHY_RUNS:
        raise IncidentError(f"{dag_id} has {len(durations)} finished runs; its deadline needs {HEALTHY_RUNS}")
    latest = durations[:runs]
    return sum(latest) / len(latest)


def average_runtime_margin(client: StackClient, dag_id: str = DEADLINE_DAG) -> float:
    """The interval, in seconds, of the DAG's average-runtime Deadline Alert, as the scheduler reads it."""
    url = f"{client.settings.url('airflow')}/ui/dags/{dag_id}/deadlineAlerts"
    status, body = client.signed_in_get(url)
    found = [
        alert["interval"]
        for alert in (body or {}).get("deadline_alerts", [])
        if status == 200 and alert.get("reference_type") == "AverageRuntimeDeadline" and alert.get("interval")
    ]
    if not found:
        raise IncidentError(f"{dag_id} has no average-runtime Deadline Alert in Airflow (GET {url}: HTTP {status})")
    return float(found[0])


def miss_the_deadline(client: StackClient) -> dict[str, Any]:
    """Three healthy runs, then one that runs past average + margin."""
    for _ in range(HEALTHY_RUNS):
        run_id = client.trigger(DEADLINE_DAG)
        if client.wait_for_run(DEADLINE_DAG, run_id, timeout=RUN_TIMEOUT) != "success":
            raise IncidentError(f"the healthy run {run_id} of {DEADLINE_DAG} did not succeed")
    average = average_runtime(client)
    margin = average_runtime_margin(client)
    slow_seconds = math.ceil(average + margin + PAST_THE_DEADLINE)
    client.set_variable(SLOW_SECONDS_VARIABLE, str(slow_seconds))  # what the fault switch's `slow` sleeps
    run_id = client.trigger(DEADLINE_DAG, {"demo_fault_task": SLOW_TASK, "demo_fault_mode": "slow"})
    return {"run_id": run_id, "average_seconds": average, "margin_seconds": margin, "slow_seconds": slow_seconds}


def let_the_late_run_finish(client: StackClient, context: dict[str, Any]) -> None:
    try:
        if context.get("run_id"):
            timeout = context.get("slow_seconds", 0) + RUN_TIMEOUT
            client.wait_for_run(DEADLINE_DAG, context["run_id"], timeout=timeout)
    finally:
        client.api("DELETE", f"/variables/{SLOW_SECONDS_VARIABLE}", ok=(204, 404))
