"""The ETL fails for good while the DAGs downstream of it fail too: one page, the ETL's, naming whom it affects.

`etl_orders` produces `warehouse://orders`; `ml_monitor_drift` is scheduled on it and `ml_train_return_model` on the
drift monitor's asset, so both are downstream of the ETL in Airflow's asset graph. The ETL's first task fails every
try (its fault switch), so nothing is loaded; once Prometheus marks both DAGs as waiting on the failing ETL
(`AirflowDagUpstreamFailing`), a run of the drift monitor fails too (its own fault switch standing in for a DAG that
chokes on stale input). The ETL's page names both DAGs and their team; the drift monitor's page is held back by
Alertmanager. Recovery: a healthy drift run while the ETL still fails (its alert resolves unseen), then a healthy
ETL run, whose load triggers the drift monitor again through the asset.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from local_stack.incidents.client import IncidentError, StackClient
from local_stack.incidents.task_failures import healthy_runs, wait_task

PRODUCER, PRODUCER_TASK = "etl_orders", "check_warehouse"
CONSUMER, CONSUMER_TASK = "ml_monitor_drift", "find_current_model"
DOWNSTREAM = (CONSUMER, "ml_train_return_model")  # the DAGs the ETL's page must name
MARKER = "AirflowDagUpstreamFailing"
WAIT_SECONDS = 180.0


def _alerts(client: StackClient, *matchers: str) -> list[dict[str, Any]]:
    query = "&".join(f"filter={quote(matcher)}" for matcher in matchers)
    status, found = client._request("GET", f"{client.settings.url('alertmanager')}/api/v2/alerts?{query}")  # noqa: SLF001 - the same loopback JSON call
    if status != 200:
        raise IncidentError(f"Alertmanager answered {status} to the alerts query {matchers}")
    return found


def _wait_alert(client: StackClient, what: str, *matchers: str, held: bool = False) -> dict[str, Any]:
    """Until Alertmanager holds an alert matching `matchers` (and, if `held`, inhibited); returns it."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = [a for a in _alerts(client, *matchers) if not held or a["status"]["inhibitedBy"]]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise IncidentError(f"after {WAIT_SECONDS:.0f}s Alertmanager still holds no {what} ({', '.join(matchers)})")
        time.sleep(2)


def fail_the_etl_and_a_dag_downstream(client: StackClient) -> dict[str, Any]:
    producer_run = client.trigger(PRODUCER, {"demo_fault_task": PRODUCER_TASK, "demo_fault_mode": "fail"})
    if client.wait_for_run(PRODUCER, producer_run) != "failed":
        raise IncidentError(f"{PRODUCER} run {producer_run} did not fail; its fault switch should fail it")
    markers = {
        dag_id: _wait_alert(client, f"{MARKER} for {dag_id}", f'alertname="{MARKER}"', f'dag_id="{dag_id}"')
        for dag_id in DOWNSTREAM
    }
    consumer_run = client.trigger(CONSUMER, {"demo_fault_task": CONSUMER_TASK, "demo_fault_mode": "fail"})
    wait_task(client, CONSUMER, consumer_run, CONSUMER_TASK, ("failed",))
    held = _wait_alert(
        client, f"held-back AirflowTaskFailed of {CONSUMER}", 'alertname="AirflowTaskFailed"', f'dag_id="{CONSUMER}"',
        held=True,
    )  # fmt: skip
    return {
        # As Airflow stores it (it normalises URIs: warehouse://orders/), which is how the alerts name it.
        "asset_uri": markers[CONSUMER]["labels"]["asset"],
        "producer_run": producer_run,
        "consumer_run": consumer_run,
        "markers": {dag_id: alert["labels"] for dag_id, alert in markers.items()},
        "held": {"status": held["status"], "annotations": held["annotations"]},
    }


def heal_downstream_then_the_etl(client: StackClient, _: dict[str, Any]) -> None:
    healthy_runs(client, [CONSUMER])
    healthy_runs(client, [PRODUCER])
