"""A DAG's Deadline Alert callback: the miss becomes one plugin alert on the router's path, never lost.

Against a real Alertmanager 0.25 with the committed routing (tests/running_alertmanager.py): the alert's labels,
annotations and links; it mutes the exporter's AirflowDagDeadlineMissed about the same DAG; with Alertmanager
unreachable it goes to the sinks directly, or, with none, waits in the spool for Alertmanager.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import AsyncCallback
from airflow_obs.alerting.thresholds import THRESHOLDS, seconds
from airflow_obs.observability import deadlines
from airflow_obs.observability.notify import alerts, router
from airflow_obs.observability.notify.spool import Spool
from airflow_obs.observability.settings import settings

from tests.conftest import free_port
from tests.integration.conftest import wait_for
from tests.running_alertmanager import RunningAlertmanager, running_alertmanager
from tests.running_prometheus import running_prometheus
from tests.unit.test_paging import direct_messages, point_plugin

AIRFLOW = "http://127.0.0.1:8080"


@pytest.fixture
def am(tmp_path: Path) -> Iterator[RunningAlertmanager]:
    with running_alertmanager(tmp_path / "alertmanager") as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    settings.cache_clear()
    yield
    settings.cache_clear()


def miss_context(dag_id: str, late: timedelta = timedelta(seconds=42), state: str = "running") -> dict[str, Any]:
    """What the scheduler hands the callback (Deadline.handle_miss): the run as the REST API shows it, the deadline."""
    deadline_at = datetime.now(UTC) - late
    return {
        "dag_run": {
            "dag_run_id": "manual__2026-12-04T10:00:00+00:00",
            "dag_id": dag_id,
            "state": state,
            "run_type": "manual",
            "queued_at": (deadline_at - timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
            "start_date": (deadline_at - timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
            "end_date": None,
        },
        "deadline": {"id": str(uuid.uuid4()), "deadline_time": deadline_at},
    }


def unique_dag() -> str:
    return f"deadline_{uuid.uuid4().hex[:8]}"


def miss(dag_id: str, **changes: Any) -> str:
    """Run the callback as the triggerer does: awaited, with the DAG's kwargs and the context."""
    return asyncio.run(
        deadlines.deadline_missed(
            context=miss_context(dag_id, **changes), owner="platform-oncall", team="data-platform",
            deadline="usual duration",
        )
    )  # fmt: skip


def test_the_callback_is_one_airflow_accepts_as_an_async_deadline_callback() -> None:
    callback = AsyncCallback(deadlines.deadline_missed, kwargs={"owner": "o", "team": "t"})

    assert callback.path == deadlines.CALLBACK_PATH


def test_a_missed_deadline_is_one_warning_with_the_run_the_dashboard_and_the_runbook(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, am.url)
    dag_id = unique_dag()

    assert miss(dag_id) == router.ALERTMANAGER

    (alert,) = am.alerts(f"dag_id={dag_id}")
    assert alert["labels"] == {
        "alertname": "AirflowDagRunDeadlineMissed",
        "dag_id": dag_id,
        "severity": "warning",
        "owner": "platform-oncall",
        "team": "data-platform",
        "environment": "local",
    }
    notes = alert["annotations"]
    run = f"{AIRFLOW}/dags/{dag_id}/runs/manual__2026-12-04T10%3A00%3A00%2B00%3A00"
    assert notes["airflow_url"] == run == alert["generatorURL"]
    assert notes["runbook_url"] == f"{AIRFLOW}/observability/runbooks/AirflowDagRunDeadlineMissed.md"
    assert notes["dashboard_url"] == f"{AIRFLOW}/observability/console", "no Grafana: the console's page"
    assert notes["summary"] == f"A run of DAG {dag_id} missed deadline 'usual duration' by 42s."
    assert "had to succeed by" in notes["description"] and "2m 00s after it was queued" in notes["description"]
    assert "it is still running" in notes["description"]
    assert notes["run_id"] == "manual__2026-12-04T10:00:00+00:00" and notes["deadline_at"].endswith("Z")
    # It outlives the exporter's alert about the same miss, which it mutes.
    lasting = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00")) - datetime.now(UTC)
    window = timedelta(seconds=float(seconds(THRESHOLDS["deadline_window"].default)))
    assert window < lasting <= window + deadlines.MISS_MARGIN
    # The warning reaches the team's Slack channel once.
    pages = wait_for(lambda: [r for r in am.records("slack", dag_id) if "attachments" in r["body"]], 15, "Slack")
    assert len(pages) == 1 and "#data-platform-alerts" in str(pages[0]["body"])


def test_it_mutes_the_exporters_alert_about_the_same_dag_only(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, am.url)
    dag_id, other = unique_dag(), unique_dag()
    miss(dag_id)

    def exporter(dag: str) -> dict[str, Any]:
        labels = {"alertname": "AirflowDagDeadlineMissed", "dag_id": dag, "severity": "warning", "environment": "local"}
        return {"labels": labels, "annotations": {"summary": "missed"}}

    am.post(exporter(dag_id), exporter(other))

    def muted() -> dict[str, bool] | None:
        found = {a["labels"]["dag_id"]: bool(a["status"]["inhibitedBy"]) for a in am.alerts(
            "alertname=AirflowDagDeadlineMissed")}  # fmt: skip
        return found if {dag_id, other} <= set(found) else None

    found = wait_for(muted, 10, "the exporter's alerts")
    assert (found[dag_id], found[other]) == (True, False)


def test_alertmanager_unreachable_sends_it_to_the_sinks_directly(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    point_plugin(monkeypatch, am, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    dag_id = unique_dag()

    with caplog.at_level(logging.WARNING, logger="airflow_obs.notify"):
        assert miss(dag_id) == router.DIRECT

    sent = direct_messages(am, dag_id)
    sent["email"] = [r for r in am.records("smtp", dag_id) if "[Airflow LATE]" in (r.get("subject") or "")]
    assert {sink: len(found) for sink, found in sent.items()} == {"slack": 1, "webhook": 1, "email": 1}
    (hook,) = sent["webhook"]
    assert hook["body"]["kind"] == "deadline_missed" and hook["body"]["severity"] == "warning"
    assert set(hook["body"]["links"]) == {"run", "dashboard", "runbook"}
    assert "Alertmanager did not take alerts AirflowDagRunDeadlineMissed" in caplog.text
    assert Spool(settings().spool_path).waiting() == [], "not queued for Alertmanager too: it would page twice"


def test_alertmanager_unreachable_and_no_sink_keeps_it_in_the_spool_for_alertmanager(
    am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_plugin(monkeypatch, am, f"http://127.0.0.1:{free_port()}", direct=False)
    dag_id = unique_dag()

    assert miss(dag_id) == router.SPOOLED

    (waiting,) = Spool(settings().spool_path).waiting()
    assert dag_id in waiting.read_text() and "AirflowDagRunDeadlineMissed" in waiting.read_text()


def test_the_same_miss_reported_twice_is_raised_once(am: RunningAlertmanager, monkeypatch: pytest.MonkeyPatch) -> None:
    point_plugin(monkeypatch, am, am.url)
    context = miss_context(unique_dag())

    first = deadlines.page_deadline_miss(context, "o", "data-platform")
    again = deadlines.page_deadline_miss(context, "o", "data-platform")

    assert (first, again) == (router.ALERTMANAGER, router.DUPLICATE)


def test_a_damaged_context_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="airflow_obs.notify"):
        assert deadlines.page_deadline_miss({"dag_run": "not a run"}) == router.NOWHERE

    assert "missed deadline" in caplog.text


def test_the_alert_lasts_the_exporters_window_of_this_deployment_plus_the_margin() -> None:
    assert deadlines.alert_lifetime({"AIRFLOW_OBS_ALERT_DEADLINE_WINDOW": "2m"}) == timedelta(minutes=7)
    assert deadlines.alert_lifetime({"AIRFLOW_OBS_ALERT_DEADLINE_WINDOW": "soon"}) == timedelta(minutes=20)
    assert deadlines.alert_lifetime({}) == timedelta(minutes=20)
    assert alerts.SEVERITY[alerts.DAG_RUN_DEADLINE_MISSED] == "warning"
    assert alerts.DAG_RUN_DEADLINE_MISSED not in alerts.PLUGIN_ALERTS, "the reconciler must not end it early"


def test_the_alert_says_who_waits_downstream_for_the_late_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_prometheus(tmp_path) as prometheus:
        monkeypatch.setenv("AIRFLOW__OBSERVABILITY__PROMETHEUS_URL", prometheus.url)
        settings.cache_clear()
        alert, _, _ = deadlines.build_alert(settings(), miss_context("ml_monitor_drift"), "ml-eng", "ml")

    # The asset graph of tests/running_prometheus.py: the drift monitor feeds the training DAG, and waits on the ETL.
    assert alert.annotations["affects"] == "model://return_model/drift -> ml_train_return_model (team ml, owner ml-eng)"
    assert alert.annotations["upstream_failing"] == "etl_orders, whose latest run failed (via warehouse://orders)"
