"""How Alertmanager treats the plugin's alerts, proven by amtool and a real Alertmanager 0.25.

- a burst of task failures over several DAGs is one notification per sink, each task with its own log link;
- the plugin's alert about a DAG mutes the exporter's DAG-level alerts about the same DAG (and environment) only;
- the recovery marker notifies nobody.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from local_stack.alertmanager_config import ROUTING_FILE
from tests.integration.conftest import wait_for
from tests.running_alertmanager import RunningAlertmanager, unique
from tests.unit.stack_helpers import AMTOOL, run


def plugin_alert(alertname: str, dag_id: str, environment: str, **more: str) -> dict[str, Any]:
    labels = {"alertname": alertname, "dag_id": dag_id, "severity": "critical", "environment": environment, **more}
    log_url = f"http://airflow.example/dags/{dag_id}/runs/r1/tasks/{more.get('task_id', 'x')}?try_number=2"
    return {
        "labels": labels,
        "annotations": {
            "summary": f"Task {dag_id}.{more.get('task_id', '')} failed for good (try 2 of 2).",
            "description": "The last try failed.",
            "error": "ValueError: <b>bad</b> row & more ```quoted```",
            "log_url": log_url,
            "airflow_url": log_url,
            "runbook_url": "https://runbooks.example/AirflowTaskFailed.md",
        },
    }


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "AirflowTaskFailed", "severity": "critical", "team": "ml"}, "oncall-critical"),
        ({"alertname": "AirflowDagRunFailed", "severity": "critical", "team": "data-platform"}, "oncall-critical"),
        ({"alertname": "AirflowDagRecovered", "severity": "none", "team": "ml"}, "inhibit-only"),
    ],
)
def test_amtool_routes_the_plugins_alerts(labels: dict[str, str], receiver: str) -> None:
    args = [f"{name}={value}" for name, value in labels.items()]
    result = run(
        AMTOOL, "config", "routes", "test", f"--config.file={ROUTING_FILE}", f"--verify.receivers={receiver}", *args
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_one_cause_failing_tasks_in_three_dags_is_one_notification_per_sink_with_each_tasks_log_link(
    alertmanager: RunningAlertmanager,
) -> None:
    environment = unique("burst")
    dags = [unique("dag") for _ in range(3)]
    cause = unique("fingerprint")  # one cause (the same error fingerprint) in three DAGs
    alertmanager.post(
        *(plugin_alert("AirflowTaskFailed", dag, environment, task_id="load", error_fingerprint=cause) for dag in dags)
    )

    def delivered() -> dict[str, list[dict[str, Any]]] | None:
        found = {kind: alertmanager.records(kind, dags[0]) for kind in ("slack", "smtp", "webhook")}
        return found if all(found.values()) else None

    wait_for(delivered, 15, "the burst's notification on every sink", 0.2)
    time.sleep(3)  # a few group flushes: a second notification would be here by now
    found = delivered()
    assert {kind: len(records) for kind, records in found.items()} == {"slack": 1, "smtp": 1, "webhook": 1}
    (attachment,) = found["slack"][0]["body"]["attachments"]
    assert attachment["title"] == "[FIRING:3] AirflowTaskFailed"
    # The common cause, first: the fingerprint the group shares (and the console shows beside each alert).
    assert attachment["text"].startswith(f"*One cause*, error fingerprint `{cause}`: 3 failures, each below")
    assert f"error fingerprint <code>{cause}</code>" in found["smtp"][0]["html"]
    for dag in dags:
        assert f"<http://airflow.example/dags/{dag}/runs/r1/tasks/load?try_number=2|Task log>" in attachment["text"]
        assert f'href="http://airflow.example/dags/{dag}/runs/r1/tasks/load?try_number=2"' in found["smtp"][0]["html"]
    # The error, escaped for Slack and kept in one code block.
    assert "```ValueError: &lt;b&gt;bad&lt;/b&gt; row &amp; more '''quoted'''```" in attachment["text"]
    assert "ValueError: &lt;b&gt;bad&lt;/b&gt; row &amp; more" in found["smtp"][0]["html"]
    assert len(found["webhook"][0]["body"]["alerts"]) == 3


def inhibited_by(alertmanager: RunningAlertmanager, environment: str) -> dict[tuple[str, str], bool]:
    return {
        (alert["labels"]["alertname"], alert["labels"]["dag_id"]): bool(alert["status"]["inhibitedBy"])
        for alert in alertmanager.alerts(f'environment="{environment}"')
    }


@pytest.mark.parametrize("source", ["AirflowTaskFailed", "AirflowDagRunFailed", "AirflowDagRecovered"])
def test_the_plugins_alert_about_a_dag_mutes_the_exporters_dag_alerts_of_that_dag_only(
    alertmanager: RunningAlertmanager, source: str
) -> None:
    environment, other_environment = unique("env"), unique("env")
    dag, other_dag = unique("etl"), unique("report")
    extra = {"task_id": "load"} if source == "AirflowTaskFailed" else {}
    alertmanager.post(
        plugin_alert(source, dag, environment, **extra),
        *(
            {"labels": {"alertname": name, "dag_id": dag_id, "severity": "warning", "environment": env}}
            for name in ("AirflowDagLastRunFailed", "AirflowDagFailingForAnHour")
            for dag_id, env in ((dag, environment), (other_dag, environment), (dag, other_environment))
        ),
    )

    def settled() -> dict[tuple[str, str], bool] | None:
        found = inhibited_by(alertmanager, environment)
        return found if found.get(("AirflowDagLastRunFailed", dag)) else None

    assert wait_for(settled, 10, "the inhibition", 0.2) == {
        (source, dag): False,
        ("AirflowDagLastRunFailed", dag): True,
        ("AirflowDagFailingForAnHour", dag): True,
        ("AirflowDagLastRunFailed", other_dag): False,
        ("AirflowDagFailingForAnHour", other_dag): False,
    }
    assert not any(inhibited_by(alertmanager, other_environment).values()), "another environment's DAG alerts"


def test_a_task_alert_mutes_the_same_tasks_repeated_failures_alert_not_another_tasks(
    alertmanager: RunningAlertmanager,
) -> None:
    environment, dag = unique("env"), unique("etl")
    alertmanager.post(
        plugin_alert("AirflowTaskFailed", dag, environment, task_id="load"),
        *(
            {
                "labels": {
                    "alertname": "AirflowTaskFailingRepeatedly",
                    "dag_id": dag,
                    "task_id": task,
                    "severity": "warning",
                    "environment": environment,
                }
            }
            for task in ("load", "extract")
        ),  # fmt: skip
    )

    def statuses() -> dict[str, bool] | None:
        found = {
            a["labels"]["task_id"]: bool(a["status"]["inhibitedBy"])
            for a in alertmanager.alerts(f'environment="{environment}"', 'alertname="AirflowTaskFailingRepeatedly"')
        }
        return found if found.get("load") else None

    assert wait_for(statuses, 10, "the inhibition", 0.2) == {"load": True, "extract": False}


def test_the_recovery_marker_mutes_the_dags_repeated_failures_alerts_while_prometheus_catches_up(
    alertmanager: RunningAlertmanager,
) -> None:
    environment, dag, other_dag = unique("env"), unique("etl"), unique("ml")
    repeated = [
        {
            "labels": {
                "alertname": "AirflowTaskFailingRepeatedly",
                "dag_id": dag_id,
                "task_id": task,
                "severity": "warning",
                "environment": environment,
            }
        }
        for dag_id, task in ((dag, "load"), (dag, "extract"), (other_dag, "load"))
    ]
    alertmanager.post(plugin_alert("AirflowDagRecovered", dag, environment), *repeated)

    def statuses() -> dict[tuple[str, str], bool] | None:
        found = {
            (a["labels"]["dag_id"], a["labels"]["task_id"]): bool(a["status"]["inhibitedBy"])
            for a in alertmanager.alerts(f'environment="{environment}"', 'alertname="AirflowTaskFailingRepeatedly"')
        }
        return found if found.get((dag, "load")) else None

    assert wait_for(statuses, 10, "the inhibition", 0.2) == {
        (dag, "load"): True,
        (dag, "extract"): True,
        (other_dag, "load"): False,
    }


def test_the_recovery_marker_notifies_nobody(alertmanager: RunningAlertmanager) -> None:
    environment, dag = unique("env"), unique("etl")
    alertmanager.post(plugin_alert("AirflowDagRecovered", dag, environment))

    (marker,) = alertmanager.alerts(f'environment="{environment}"')
    assert [receiver["name"] for receiver in marker["receivers"]] == ["inhibit-only"]
    time.sleep(3)
    assert not any(alertmanager.records(kind, dag) for kind in ("slack", "smtp", "webhook"))


def test_two_causes_at_once_are_two_notifications(alertmanager: RunningAlertmanager) -> None:
    environment, dag = unique("env"), unique("etl")
    alertmanager.post(
        plugin_alert("AirflowTaskFailed", dag, environment, task_id="load", error_fingerprint=unique("a")),
        plugin_alert("AirflowTaskFailed", dag, environment, task_id="extract", error_fingerprint=unique("b")),
    )

    def both() -> list[dict[str, Any]] | None:
        found = alertmanager.records("webhook", dag)
        return found if len(found) >= 2 else None

    pages = wait_for(both, 15, "a notification per cause", 0.2)
    assert sorted(len(page["body"]["alerts"]) for page in pages) == [1, 1]
    # A failure alone in its group is not announced as "one cause" of several.
    slack = wait_for(lambda: alertmanager.records("slack", dag) or None, 15, "the Slack messages", 0.2)
    assert all("One cause" not in str(record["body"]) for record in slack)


@pytest.mark.parametrize("source", ["AirflowTaskFailed", "AirflowDagRunFailed"])
def test_a_dags_failure_page_mutes_the_deadline_its_failed_run_misses_later_not_another_dags(
    alertmanager: RunningAlertmanager, source: str
) -> None:
    environment = unique("late")
    dag, other_dag = unique("backup"), unique("report")
    extra = {"task_id": "backup"} if source == "AirflowTaskFailed" else {}
    alertmanager.post(
        plugin_alert(source, dag, environment, **extra),
        *(
            {"labels": {"alertname": name, "dag_id": dag_id, "severity": "warning", "environment": environment}}
            for name in ("AirflowDagRunDeadlineMissed", "AirflowDagDeadlineMissed")
            for dag_id in (dag, other_dag)
        ),
    )

    def settled() -> dict[tuple[str, str], bool] | None:
        found = inhibited_by(alertmanager, environment)
        return found if len(found) == 5 and found.get(("AirflowDagRunDeadlineMissed", dag)) else None

    found = wait_for(settled, 10, "the inhibition", 0.2)
    assert found[("AirflowDagDeadlineMissed", dag)] and not found[(source, dag)]
    # Another DAG's miss: its plugin alert mutes the exporter's, as always; nothing mutes its own.
    assert not found[("AirflowDagRunDeadlineMissed", other_dag)]
