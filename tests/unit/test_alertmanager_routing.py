"""Alertmanager routing and inhibition of the toolkit, proven by Alertmanager 0.25 itself.

amtool checks the config and resolves routes; a real Alertmanager on a free loopback port decides what is
inhibited. What the notifications say: test_alertmanager_delivery.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_stack.alertmanager_config import ROUTING_FILE, render_alertmanager_config, write_alertmanager_config
from tests.integration.conftest import wait_for
from tests.running_alertmanager import RunningAlertmanager, alert, unique
from tests.unit.stack_helpers import AMTOOL, run, settings_for

ROUTING = yaml.safe_load(ROUTING_FILE.read_text())
# Fields that would hold a secret in the config itself; each has a *_file twin that must be used instead.
SECRET_FIELDS = {
    "slack_api_url",
    "api_url",
    "smtp_auth_password",
    "auth_password",
    "smtp_auth_secret",
    "auth_secret",
    "password",
    "bearer_token",
    "credentials",
    "routing_key",
    "service_key",
    "api_key",
}


def keys_of(node: Any) -> Iterator[str]:
    """Every mapping key of a loaded YAML document, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from keys_of(value)
    elif isinstance(node, list):
        for item in node:
            yield from keys_of(item)


# --- The config is valid -------------------------------------------------------------------------------


def test_amtool_finds_the_committed_routing_valid_with_its_receivers_templates_and_inhibitions() -> None:
    result = run(AMTOOL, "check-config", str(ROUTING_FILE))

    assert result.returncode == 0, result.stdout + result.stderr
    for found in ("8 inhibit rules", "7 receivers", "1 templates"):
        assert found in result.stdout, result.stdout


def test_amtool_finds_the_local_stacks_rendered_config_valid_with_its_generated_template(tmp_path: Path) -> None:
    result = run(AMTOOL, "check-config", str(write_alertmanager_config(settings_for(tmp_path))))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 receivers" in result.stdout and "2 templates" in result.stdout, result.stdout


# --- Where each severity and team goes -----------------------------------------------------------------

ROUTES = [
    pytest.param({"severity": "critical", "team": "ml"}, "oncall-critical", id="critical-ml"),
    pytest.param({"severity": "critical", "team": "data-platform"}, "oncall-critical", id="critical-data-platform"),
    pytest.param({"alertname": "AirflowSchedulerDown", "severity": "critical"}, "oncall-critical", id="critical"),
    pytest.param({"severity": "warning", "team": "ml", "dag_id": "ml_train"}, "slack-ml-alerts", id="warning-ml"),
    pytest.param(
        {"severity": "warning", "team": "data-platform"}, "slack-data-platform-alerts", id="warning-data-platform"
    ),
    pytest.param({"severity": "warning"}, "slack-alerts", id="warning-without-team"),
    pytest.param({"severity": "warning", "team": "finance"}, "slack-alerts", id="warning-unknown-team"),
    pytest.param({"severity": "info"}, "email-digest", id="info"),
    pytest.param({"severity": "info", "team": "ml"}, "email-digest", id="info-ml"),
    pytest.param({"alertname": "Watchdog", "severity": "none"}, "heartbeat", id="watchdog"),
    pytest.param({"alertname": "SomethingNew"}, "slack-alerts", id="no-severity"),
]


def routes_test(labels: dict[str, str], receiver: str) -> subprocess.CompletedProcess[str]:
    return run(
        AMTOOL,
        "config",
        "routes",
        "test",
        f"--config.file={ROUTING_FILE}",
        f"--verify.receivers={receiver}",
        *(f"{name}={value}" for name, value in labels.items()),
    )


@pytest.mark.parametrize(("labels", "receiver"), ROUTES)
def test_amtool_routes_an_alert_to_the_receiver_of_its_severity_and_team(labels: dict[str, str], receiver: str) -> None:
    result = routes_test({"alertname": "AirflowDagLastRunFailed", **labels}, receiver)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


@pytest.mark.parametrize(
    ("alertname", "receiver"),
    [("RedisDown", "oncall-critical"), ("AirflowCeleryWorkerLost", "slack-alerts"),
     ("AirflowCeleryMonitorDown", "slack-alerts")],
)  # fmt: skip
def test_the_celery_and_broker_alerts_route_by_the_severity_their_rules_give(alertname: str, receiver: str) -> None:
    rule = next(
        rule
        for path in sorted(ROUTING_FILE.parent.glob("*.rules.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if rule.get("alert") == alertname
    )
    result = routes_test({"alertname": alertname, **rule["labels"]}, receiver)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_amtool_routes_test_fails_when_the_expected_receiver_is_wrong() -> None:
    # Guards the table above: --verify.receivers really is checked.
    result = routes_test({"alertname": "AirflowSchedulerDown", "severity": "critical"}, "slack-alerts")

    assert result.returncode != 0
    assert result.stdout.splitlines()[0] == "oncall-critical"


def test_critical_repeats_hourly_warnings_every_four_hours_info_daily_and_the_heartbeat_every_minute() -> None:
    routes = {route["receiver"]: route for route in ROUTING["route"]["routes"]}

    assert routes["oncall-critical"]["repeat_interval"] == "1h"
    assert routes["slack-alerts"]["repeat_interval"] == "4h"
    assert routes["email-digest"]["group_by"] == ["severity"]
    assert routes["email-digest"]["group_interval"] == "24h"
    assert routes["heartbeat"]["repeat_interval"] == "1m"
    assert ROUTING["route"]["group_by"][:2] == ["alertname", "dag_id"]
    assert "..." not in ROUTING["route"]["group_by"]


# The plugin's recovery marker's receiver: no notifier at all (tested below).
INHIBIT_ONLY = "inhibit-only"


@pytest.mark.parametrize(
    "receiver",
    [receiver["name"] for receiver in ROUTING["receivers"] if receiver["name"] != INHIBIT_ONLY],
    ids=lambda name: str(name),
)
def test_every_notifier_sends_resolved_messages_except_the_heartbeat_and_the_digest(receiver: str) -> None:
    (config,) = (r for r in ROUTING["receivers"] if r["name"] == receiver)
    notifiers = [n for key, value in config.items() if key.endswith("_configs") for n in value]

    assert notifiers
    assert {n.get("send_resolved") for n in notifiers} == {receiver not in ("heartbeat", "email-digest")}


# --- No secret is committed or rendered ----------------------------------------------------------------


def test_the_committed_routing_names_secret_files_and_holds_no_secret() -> None:
    text = ROUTING_FILE.read_text()

    assert not set(keys_of(ROUTING)) & SECRET_FIELDS
    assert ROUTING["global"]["slack_api_url_file"].startswith("/")
    assert ROUTING["global"]["smtp_auth_password_file"].startswith("/")
    assert "hooks.slack.com" not in text


def test_the_rendered_config_reads_the_smtp_password_from_the_configured_file(tmp_path: Path) -> None:
    password_file = tmp_path / "smtp_password"
    password_file.write_text("Sm7pPassw0rdProbe\n")
    settings = settings_for(
        tmp_path / "home",
        AIRFLOW_OBS_SMTP_SMARTHOST="smtp.example:587",
        AIRFLOW_OBS_SMTP_USERNAME="airflow-alerts",
        AIRFLOW_OBS_SMTP_PASSWORD_FILE=str(password_file),
    )

    path = write_alertmanager_config(settings)
    config = yaml.safe_load(path.read_text())

    assert config["global"]["smtp_auth_username"] == "airflow-alerts"
    assert config["global"]["smtp_auth_password_file"] == str(password_file)
    assert "Sm7pPassw0rdProbe" not in path.read_text()
    assert not set(keys_of(config)) & SECRET_FIELDS
    assert run(AMTOOL, "check-config", str(path)).returncode == 0


def test_without_smtp_credentials_the_rendered_config_does_not_log_in_to_the_capture(tmp_path: Path) -> None:
    config = render_alertmanager_config(settings_for(tmp_path))

    assert "smtp_auth_username" not in config["global"]
    assert "smtp_auth_password_file" not in config["global"]


# --- A real Alertmanager -------------------------------------------------------------------------------


CAUSES = ["AirflowSchedulerDown", "AirflowMetadataDBUnreachable", "AirflowExporterDown", "PostgresDown"]
# What a cause explains: every alert about a DAG, and the task, pool and queue alerts.
SYMPTOMS = [
    ("AirflowDagLastRunFailed", "warning", {"dag_id": "etl_orders", "team": "data-platform"}),
    ("AirflowDagLastRunFailed", "warning", {"dag_id": "ml_training", "team": "ml"}),
    ("AirflowDagLastRunFailed", "critical", {"dag_id": "finance_close"}),
    ("AirflowTaskFailingRepeatedly", "warning", {"dag_id": "etl_orders", "task_id": "load"}),
    ("AirflowTaskRetriesElevated", "info", {"dag_id": "etl_orders", "task_id": "extract"}),
    ("AirflowTasksQueuedTooLong", "warning", {"queue": "default"}),
    ("AirflowPoolSaturated", "warning", {"pool": "default_pool"}),
    ("AirflowTaskHeartbeatLost", "warning", {}),
    ("AirflowDagMissedSchedule", "warning", {}),
]
# What no cause explains: these must keep paging during an outage.
BYSTANDERS = [
    ("AirflowDagProcessorDown", "critical", {}),
    ("AirflowTriggererDown", "critical", {}),
    ("AirflowDagImportErrors", "warning", {"file": "dags/broken.py"}),
    ("PostgresConnectionsNearLimit", "warning", {"instance": "db:9187"}),
    ("HostHighCpu", "warning", {"instance": "host:9100"}),
    ("AlertmanagerFailingToSend", "critical", {"integration": "slack"}),
    ("RedisDown", "critical", {"instance": "redis-exporter:9121"}),
    ("AirflowCeleryWorkerLost", "warning", {"worker": "celery-worker-1@host"}),
    ("AirflowCeleryMonitorDown", "warning", {"instance": "flower:5555"}),
]


def key(alertname: str, labels: dict[str, str]) -> tuple[str, ...]:
    """What tells the alerts of these tests apart: alertname and the labels of its incident."""
    return (alertname, *(labels.get(k, "") for k in ("dag_id", "task_id", "pool", "queue")))


def by_name(alerts: list[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    """Alerts from the API keyed by `key`."""
    return {key(a["labels"]["alertname"], a["labels"]): a for a in alerts}


@pytest.mark.parametrize("cause", CAUSES)
def test_a_cause_mutes_every_dag_task_pool_and_queue_alert_and_nothing_else(
    alertmanager: RunningAlertmanager, cause: str
) -> None:
    environment = unique(cause)
    everything = [(cause, "critical", {}), *SYMPTOMS, *BYSTANDERS]
    alertmanager.post(*(alert(name, environment, severity, **labels) for name, severity, labels in everything))

    def all_symptoms_inhibited() -> dict[tuple[str, ...], dict[str, Any]] | None:
        alerts = by_name(alertmanager.alerts(f'environment="{environment}"'))
        done = len(alerts) == len(everything)
        return (
            alerts
            if done and all(alerts[key(n, labels)]["status"]["inhibitedBy"] for n, _, labels in SYMPTOMS)
            else None
        )

    alerts = wait_for(all_symptoms_inhibited, 15, f"the symptoms of {cause} to be inhibited", interval=0.2)
    source = alerts[key(cause, {})]
    assert source["status"] == {"state": "active", "inhibitedBy": [], "silencedBy": []}
    for name, _, labels in SYMPTOMS:
        status = alerts[key(name, labels)]["status"]
        assert status["state"] == "suppressed"
        assert status["inhibitedBy"] == [source["fingerprint"]], name
    for name, _, labels in BYSTANDERS:
        assert alerts[key(name, labels)]["status"]["inhibitedBy"] == [], name


def test_the_causes_never_mute_one_another(alertmanager: RunningAlertmanager) -> None:
    environment = unique("all-causes")
    alertmanager.post(
        *(alert(name, environment, "critical") for name in CAUSES),
        alert("AirflowDagLastRunFailed", environment, dag_id="etl_orders"),
    )

    def dag_alert_inhibited() -> dict[tuple[str, ...], dict[str, Any]] | None:
        alerts = by_name(alertmanager.alerts(f'environment="{environment}"'))
        dag_alert = alerts.get(key("AirflowDagLastRunFailed", {"dag_id": "etl_orders"}))
        return alerts if len(alerts) == len(CAUSES) + 1 and dag_alert["status"]["inhibitedBy"] else None

    alerts = wait_for(dag_alert_inhibited, 15, "the DAG alert to be inhibited", interval=0.2)
    for cause in CAUSES:
        assert alerts[key(cause, {})]["status"]["inhibitedBy"] == [], cause


def test_a_scheduler_down_in_one_environment_leaves_another_environments_dag_alerts_alone(
    alertmanager: RunningAlertmanager,
) -> None:
    down, healthy = unique("down"), unique("healthy")
    dag_id = unique("dag")
    alertmanager.post(
        alert("AirflowSchedulerDown", down, "critical"),
        alert("AirflowDagLastRunFailed", down, dag_id=dag_id),
        alert("AirflowDagLastRunFailed", healthy, dag_id=dag_id),
    )

    def statuses() -> dict[str, list[str]] | None:
        found = {
            a["labels"]["environment"]: a["status"]["inhibitedBy"] for a in alertmanager.alerts(f'dag_id="{dag_id}"')
        }
        return found if len(found) == 2 and found[down] else None

    found = wait_for(statuses, 15, "the DAG alert of the broken environment to be inhibited", interval=0.2)
    assert found[healthy] == []
