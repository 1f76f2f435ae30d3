"""Root cause first, proven by Alertmanager itself: while a DAG upstream is failing, the DAGs downstream of it stay
quiet, and the upstream DAG's page says whom it affects.

The marker `AirflowDagUpstreamFailing{dag_id=<consumer>, upstream_dag_id=<producer>}` comes from the asset-impact
rules (alert_rules/tests/impact.test.yml proves when it fires); here a real Alertmanager, with the committed routing
and templates, decides what it holds back and what reaches the Slack, e-mail and webhook captures.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from local_stack.alertmanager_config import ROUTING_FILE
from tests.integration.conftest import wait_for
from tests.running_alertmanager import RunningAlertmanager, unique
from tests.unit.stack_helpers import AMTOOL, run

MARKER = "AirflowDagUpstreamFailing"
# Every alert about a DAG that an upstream failure explains (alertmanager.yml's inhibit rule lists them). Another
# task than the failed one repeats failing: AirflowTaskFailed would hold that task's alert back itself.
SYMPTOMS = [
    ("AirflowTaskFailed", "critical", {"task_id": "compute_drift", "error_fingerprint": "0123456789ab"}),
    ("AirflowDagRunFailed", "critical", {"error_fingerprint": "ba9876543210"}),
    ("AirflowDagLastRunFailed", "warning", {}),
    ("AirflowDagFailingForAnHour", "critical", {}),
    ("AirflowTaskFailingRepeatedly", "warning", {"task_id": "record_drift"}),
    ("AirflowDagMissedSchedule", "warning", {}),
    ("AirflowDagRunOverBaseline", "warning", {}),
    ("AirflowDagDeadlineMissed", "warning", {}),
]


def alert(alertname: str, severity: str, environment: str, dag_id: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": alertname, "severity": severity, "environment": environment, "dag_id": dag_id,
                   **labels},
        "annotations": {"summary": f"{alertname} about {dag_id}"},
    }  # fmt: skip


def marker(environment: str, consumer: str, producer: str, ends_in: timedelta | None = None) -> dict[str, Any]:
    body = alert(MARKER, "none", environment, consumer, upstream_dag_id=producer, asset="warehouse://orders")
    if ends_in is not None:
        body["endsAt"] = (datetime.now(UTC) + ends_in).isoformat()
    return body


def test_amtool_routes_the_marker_to_nobody() -> None:
    result = run(
        AMTOOL, "config", "routes", "test", f"--config.file={ROUTING_FILE}", "--verify.receivers=inhibit-only",
        f"alertname={MARKER}", "severity=none", "dag_id=ml_monitor_drift", "upstream_dag_id=etl_orders",
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_marker_holds_back_every_alert_about_the_waiting_dag_and_nothing_about_others(
    alertmanager: RunningAlertmanager,
) -> None:
    environment = unique("upstream")
    producer, bystander = unique("etl_orders"), unique("maintenance")
    # The plugin's pages mute the same DAG's exporter alerts themselves: one waiting DAG gets those, another the
    # exporter's, so every inhibition seen below is the marker's.
    plugin_symptoms, exporter_symptoms = SYMPTOMS[:2], SYMPTOMS[2:]
    waiting = {unique("ml_monitor_drift"): plugin_symptoms, unique("ml_train_return_model"): exporter_symptoms}
    producer_page = alert("AirflowTaskFailed", "critical", environment, producer, task_id="load",
                          error_fingerprint="feedc0ffee00")  # fmt: skip
    posted = [
        producer_page,
        *(marker(environment, consumer, producer) for consumer in waiting),
        *(alert(name, severity, environment, consumer, **labels)
          for consumer, symptoms in waiting.items() for name, severity, labels in symptoms),
        *(alert(name, severity, environment, bystander, **labels) for name, severity, labels in SYMPTOMS),
    ]  # fmt: skip
    alertmanager.post(*posted)

    def settled() -> list[dict[str, Any]] | None:
        alerts = alertmanager.alerts(f'environment="{environment}"')
        held = [a for a in alerts if a["labels"]["dag_id"] in waiting and a["labels"]["alertname"] != MARKER]
        return alerts if len(alerts) == len(posted) and all(a["status"]["inhibitedBy"] for a in held) else None

    alerts = wait_for(settled, 15, "the waiting DAGs' alerts to be held back", interval=0.2)
    markers = {a["labels"]["dag_id"]: a["fingerprint"] for a in alerts if a["labels"]["alertname"] == MARKER}
    assert set(markers) == set(waiting)
    for found in alerts:
        name, dag_id = found["labels"]["alertname"], found["labels"]["dag_id"]
        if dag_id in waiting and name != MARKER:
            assert found["status"]["inhibitedBy"] == [markers[dag_id]], name
        elif dag_id == producer or name == MARKER:
            assert found["status"]["inhibitedBy"] == [], (name, dag_id)
        else:  # the other DAG's: at most its own plugin page holds its exporter alerts back, as always
            assert not set(markers.values()) & set(found["status"]["inhibitedBy"]), (name, dag_id)


def test_the_waiting_dags_alert_notifies_on_its_own_once_the_upstream_dag_recovers(
    alertmanager: RunningAlertmanager,
) -> None:
    environment = unique("recovers")
    consumer, producer = unique("ml_monitor_drift"), unique("etl_orders")
    symptom = alert("AirflowDagLastRunFailed", "warning", environment, consumer)
    alertmanager.post(marker(environment, consumer, producer), symptom)

    def held() -> bool:
        found = alertmanager.alerts(f'dag_id="{consumer}"', 'alertname="AirflowDagLastRunFailed"')
        return bool(found and found[0]["status"]["inhibitedBy"])

    wait_for(held, 15, "the symptom to be held back", interval=0.2)
    assert alertmanager.records("slack", consumer) == []

    # The producer succeeds: the rule stops, Prometheus resolves the marker; the symptom still fires.
    alertmanager.post(marker(environment, consumer, producer, ends_in=timedelta(seconds=-1)))
    slack = wait_for(lambda: alertmanager.records("slack", consumer), 20, "the symptom in Slack", interval=0.2)

    text = str(slack[0]["body"])
    assert "AirflowDagLastRunFailed" in text
    assert MARKER not in text


def test_the_upstream_pages_slack_email_and_text_say_whom_it_affects_and_the_waiting_dags_name_its_cause(
    alertmanager: RunningAlertmanager,
) -> None:
    environment = unique("impact")
    producer = unique("etl_orders")
    affects = "warehouse://orders -> ml_monitor_drift (team ml, owner ml-eng); and 3 more"
    page = alert("AirflowDagLastRunFailed", "critical", environment, producer)
    page["annotations"].update(
        affects=affects, upstream_failing=f"{producer}_root, whose latest run failed (via s3://<x>)"
    )
    alertmanager.post(page)

    def delivered() -> tuple[list[dict[str, Any]], ...] | None:
        found = tuple(alertmanager.records(kind, producer) for kind in ("slack", "smtp", "webhook"))
        return found if all(found) else None

    slack, email, webhook = wait_for(delivered, 20, "the page in every capture", interval=0.2)
    (attachment,) = slack[0]["body"]["attachments"]
    # Slack's control characters in a value are escaped, as in every other line (Slack shows "->").
    assert "*Affects:* " + affects.replace(">", "&gt;") in attachment["text"]
    assert "*Upstream failing:* " in attachment["text"] and "s3://&lt;x&gt;" in attachment["text"]
    assert "Affects:" in str(email[0]) and "ml_monitor_drift (team ml, owner ml-eng)" in str(email[0])
    (sent,) = webhook[0]["body"]["alerts"]
    assert sent["annotations"]["affects"] == affects
