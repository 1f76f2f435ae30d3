"""Pages through a real Alertmanager from real DAG runs (dag.test()), ended by the reconciler from the real metadata DB.

The probe DAG (tests/dags/notify_probe.py) fails `broken` and `mapped_work[1]` for good, and `flaky` once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from airflow_obs.observability import reconciler
from airflow_obs.observability.notify import alerts
from airflow_obs.observability.settings import settings

from tests.dags.notify_probe import DAG_ID, run_probe
from tests.integration.conftest import wait_for
from tests.running_alertmanager import RunningAlertmanager, running_alertmanager

AIRFLOW_URL = "http://127.0.0.1:8080"


@pytest.fixture
def am(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningAlertmanager]:
    """Alertmanager routing the plugin's alerts (the local stack's routing); no direct sink is needed."""
    with running_alertmanager(tmp_path / "alertmanager") as running:
        monkeypatch.setenv("AIRFLOW__OBSERVABILITY__ALERTMANAGER_API_URL", running.url)
        monkeypatch.setenv("AIRFLOW__OBSERVABILITY__ENVIRONMENT", "local")
        monkeypatch.setenv("AIRFLOW__OBSERVABILITY__AIRFLOW_URL", AIRFLOW_URL)
        monkeypatch.setenv("AIRFLOW__OBSERVABILITY__SPOOL_DIR", str(tmp_path / "spool"))
        for sink in ("SLACK", "SMTP", "WEBHOOK"):
            monkeypatch.setenv(f"AIRFLOW_OBS_{sink}_CONN_ID", "")
        settings.cache_clear()
        yield running
        silence_everything(running)
        settings.cache_clear()


def silence_everything(am: RunningAlertmanager) -> None:
    """End the test's alerts, so the next test's group starts empty."""
    for document in am.alerts(f'dag_id="{DAG_ID}"'):
        alert = alerts.from_alertmanager(document)
        if alert is not None:
            am.post(alert.ended().body())


def task_alerts(am: RunningAlertmanager) -> dict[str, dict[str, Any]]:
    return {a["labels"]["task_id"]: a for a in am.alerts('alertname="AirflowTaskFailed"', f'dag_id="{DAG_ID}"')}


def slack_titles(am: RunningAlertmanager) -> list[str]:
    return [r["body"]["attachments"][0]["title"] for r in am.records("slack", DAG_ID) if "attachments" in r["body"]]


def test_a_failing_run_raises_one_alert_per_task_that_failed_for_good_with_the_log_of_that_try(
    probe_dag, am: RunningAlertmanager
) -> None:
    dag_run = run_probe(probe_dag)

    found = task_alerts(am)
    assert set(found) == {"broken", "mapped_work"}, "flaky succeeded on its retry: no alert"
    run_path = f"{AIRFLOW_URL}/dags/{DAG_ID}/runs/{quote(dag_run.run_id, safe='')}/tasks"
    assert found["broken"]["annotations"]["log_url"] == f"{run_path}/broken?try_number=2"
    assert found["mapped_work"]["annotations"]["log_url"] == f"{run_path}/mapped_work/mapped/1?try_number=2"
    assert found["mapped_work"]["annotations"]["error"] == "RuntimeError: item 1 always fails"
    assert found["broken"]["labels"]["team"] == "data-platform"
    assert am.alerts('alertname="AirflowDagRunFailed"', f'dag_id="{DAG_ID}"') == [], "a task failure explains the run"
    # Two errors, two causes: a notification each.
    two = wait_for(lambda: len(slack_titles(am)) >= 2 and slack_titles(am), 15, "the pages", 0.2)
    assert two == ["[FIRING:1] AirflowTaskFailed · notify_probe"] * 2


def test_a_later_successful_run_ends_the_alerts_at_once_and_holds_the_exporters_alerts_back(
    probe_dag, am: RunningAlertmanager
) -> None:
    run_probe(probe_dag)
    wait_for(lambda: slack_titles(am), 15, "the page", 0.2)

    run_probe(probe_dag, healthy=True)  # its success listener runs the reconciler for the DAG

    assert task_alerts(am) == {}
    (marker,) = am.alerts('alertname="AirflowDagRecovered"', f'dag_id="{DAG_ID}"')
    assert marker["labels"]["team"] == "data-platform"

    def resolutions() -> list[str]:
        found = [title for title in slack_titles(am) if title.startswith("[RESOLVED")]
        return found if len(found) >= 2 else []

    assert wait_for(resolutions, 15, "the resolutions", 0.2) == ["[RESOLVED:1] AirflowTaskFailed · notify_probe"] * 2


def test_a_task_set_to_success_by_hand_ends_its_own_alert_at_the_schedulers_next_pass(
    probe_dag, am: RunningAlertmanager
) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    dag_run = run_probe(probe_dag)
    assert set(task_alerts(am)) == {"broken", "mapped_work"}
    with create_session() as session:  # what "mark success" on broken writes
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == dag_run.run_id)
            .where(TaskInstance.task_id == "broken")
            .values(state="success", end_date=datetime.now(UTC))
        )

    posted = reconciler.reconcile_now(settings())

    assert [(alert.name, alert.resolved) for alert in posted] == [
        (alerts.TASK_FAILED, True),
        (alerts.DAG_RECOVERED, False),
    ]
    assert set(task_alerts(am)) == {"mapped_work"}, "the other task still failed"


def test_a_run_that_times_out_raises_the_run_alert_with_the_run_link(probe_dag, am: RunningAlertmanager) -> None:
    from airflow_obs.observability.notify.outbox import OUTBOX

    dag_run = run_probe(probe_dag, healthy=True)
    dag_run.set_state("failed")
    dag_run.notify_dagrun_state_changed(msg="timed_out")  # what the scheduler's dagrun_timeout path does
    assert OUTBOX.drain(timeout=30)

    (alert,) = am.alerts('alertname="AirflowDagRunFailed"', f'dag_id="{DAG_ID}"')
    assert alert["annotations"]["airflow_url"] == f"{AIRFLOW_URL}/dags/{DAG_ID}/runs/{quote(dag_run.run_id, safe='')}"
    assert "dagrun_timeout" in alert["annotations"]["description"]
    assert alert["labels"]["severity"] == "critical"


def test_the_sweep_finds_final_failures_no_page_covers_and_skips_the_covered_and_the_retried(
    probe_dag, am: RunningAlertmanager
) -> None:
    from airflow.utils.session import create_session
    from airflow_obs.observability.failure_sweep import FailureSweep
    from airflow_obs.observability.notify.state import PagedTries, paged_dir

    sweep = FailureSweep()
    paged = PagedTries(paged_dir(settings()))
    later = datetime.now(UTC) + timedelta(minutes=1)  # past the grace of every row this test writes
    with create_session() as session:
        assert sweep.unreported(session, [], paged, later) == [], "the first pass only sets the baseline"

    dag_run = run_probe(probe_dag)  # broken and mapped_work[1] fail for good (paged); flaky is retried, then succeeds

    firing = [alert for alert in map(alerts.from_alertmanager, am.alerts(f'dag_id="{DAG_ID}"')) if alert]
    with create_session() as session:
        assert sweep.unreported(session, firing, paged, later) == [], "the listener's pages cover both"
    sweep.last_id = 0  # read the same rows again, as if the listener's pages had never reached Alertmanager
    with create_session() as session:
        found = sweep.unreported(session, [], paged, later)

    ours = [event for event in found if event.run_id == dag_run.run_id]  # other tests' DAGs share this database
    assert sorted((event.task_id, event.map_index, event.try_number) for event in ours) == [
        ("broken", -1, 2),
        ("mapped_work", 1, 2),
    ], "flaky's failed first try was retried: not a page"
    assert all(event.owner == "data-platform" and event.team == "data-platform" for event in ours)
