"""What the scheduler's reconciler decides from the database facts: end, renew, or leave each of the plugin's alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_obs.observability.notify import alerts
from airflow_obs.observability.reconciler import DagFacts, Facts, decide
from airflow_obs.observability.settings import read_settings

SETTINGS = read_settings({"AIRFLOW__OBSERVABILITY__ENVIRONMENT": "local"})
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
FAILED_AT = NOW - timedelta(minutes=10)


def firing(name: str = alerts.TASK_FAILED, dag_id: str = "etl", task_id: str = "load", **times) -> alerts.Alert:
    labels = {"alertname": name, "dag_id": dag_id, "owner": "data-eng", "team": "data-platform"}
    if name == alerts.TASK_FAILED:
        labels["task_id"] = task_id
    starts = times.get("starts", FAILED_AT)
    return alerts.Alert(
        labels,
        {alerts.FAILED_AT: alerts.iso(times.get("failed_at", starts))},
        starts,
        times.get("ends", NOW + alerts.FIRING_TTL - timedelta(minutes=10)),
    )


def posts(alerts_: list[alerts.Alert], facts: Facts) -> list[tuple[str, str, str]]:
    """(alertname, dag_id, what happened) for each post."""
    out = []
    for alert in decide(alerts_, facts, SETTINGS, NOW):
        what = "ended" if alert.ends_at <= NOW else "until " + str(alert.ends_at - NOW)
        out.append((alert.name, alert.labels["dag_id"], what))
    return out


def test_a_task_alert_ends_when_the_task_succeeded_after_it_failed_and_the_dag_gets_the_recovery_marker() -> None:
    facts = Facts(task_success={("etl", "load"): FAILED_AT + timedelta(minutes=1)})

    assert posts([firing()], facts) == [
        (alerts.TASK_FAILED, "etl", "ended"),
        (alerts.DAG_RECOVERED, "etl", "until " + str(alerts.RECOVERY_HOLD)),
    ]


def test_a_success_of_the_task_before_it_failed_ends_nothing() -> None:
    facts = Facts(task_success={("etl", "load"): FAILED_AT - timedelta(minutes=1)})

    assert posts([firing()], facts) == []


def test_a_later_failure_moves_the_bar_an_earlier_success_does_not_end_it() -> None:
    # The same task failed again at 11:58 (the annotation follows the latest failure); it succeeded at 11:55.
    alert = firing(failed_at=NOW - timedelta(minutes=2))
    facts = Facts(task_success={("etl", "load"): NOW - timedelta(minutes=5)})

    assert posts([alert], facts) == []


def test_a_later_successful_run_of_the_dag_ends_its_task_and_run_alerts() -> None:
    facts = Facts(dags={"etl": DagFacts(last_success=NOW - timedelta(minutes=1))})

    assert posts([firing(), firing(alerts.DAG_RUN_FAILED)], facts) == [
        (alerts.TASK_FAILED, "etl", "ended"),
        (alerts.DAG_RUN_FAILED, "etl", "ended"),
        (alerts.DAG_RECOVERED, "etl", "until " + str(alerts.RECOVERY_HOLD)),
    ]


def test_another_tasks_success_does_not_end_a_task_alert() -> None:
    facts = Facts(task_success={("etl", "extract"): NOW})

    assert posts([firing()], facts) == []


def test_a_still_failing_alert_is_renewed_only_past_half_its_lifetime() -> None:
    young = firing(dag_id="young", ends=NOW + alerts.FIRING_TTL - timedelta(minutes=1))
    old = firing(dag_id="old", ends=NOW + alerts.FIRING_TTL / 2 - timedelta(minutes=1))

    assert posts([young, old], Facts()) == [(alerts.TASK_FAILED, "old", "until " + str(alerts.FIRING_TTL))]


def test_a_dag_that_already_has_a_marker_does_not_get_a_second() -> None:
    marker = alerts.dag_recovered(SETTINGS, "etl", "data-eng", "data-platform", "")
    marker = alerts.Alert(marker.labels, marker.annotations, NOW - timedelta(minutes=1), NOW + timedelta(minutes=9))
    facts = Facts(dags={"etl": DagFacts(last_success=NOW)})

    assert posts([firing(), marker], facts) == [(alerts.TASK_FAILED, "etl", "ended")]


def test_the_marker_ends_when_the_dag_fails_again_and_holds_while_a_run_is_active() -> None:
    def marker(dag_id: str) -> alerts.Alert:
        made = alerts.dag_recovered(SETTINGS, dag_id, "", "", "")
        return alerts.Alert(made.labels, made.annotations, NOW - timedelta(minutes=8), NOW + timedelta(minutes=2))

    facts = Facts(
        dags={
            "failed_again": DagFacts(last_failure=NOW - timedelta(minutes=1)),
            "running": DagFacts(active=True),
            "quiet": DagFacts(last_success=NOW - timedelta(minutes=8)),
        }
    )

    assert posts([marker("failed_again"), marker("running"), marker("quiet")], facts) == [
        (alerts.DAG_RECOVERED, "failed_again", "ended"),
        (alerts.DAG_RECOVERED, "running", "until " + str(alerts.RECOVERY_HOLD)),
    ]


def test_alerts_that_are_not_the_plugins_are_not_read_back() -> None:
    document = {
        "labels": {"alertname": "AirflowDagLastRunFailed", "dag_id": "etl"},
        "startsAt": "2026-12-05T11:00:00.000Z",
        "endsAt": "2026-12-05T13:00:00.000Z",
    }

    assert alerts.from_alertmanager(document) is None
    assert alerts.from_alertmanager({**document, "labels": {"alertname": alerts.TASK_FAILED, "dag_id": "etl"}})


def test_a_try_killed_before_reporting_has_the_same_fingerprint_whoever_found_it() -> None:
    from types import SimpleNamespace

    from airflow_obs.observability.events import TaskEvent
    from airflow_obs.observability.failure_sweep import UNREPORTED_ERROR, cause_of

    def killed(dag_id: str, error: str) -> alerts.Alert:
        ti = SimpleNamespace(dag_id=dag_id, run_id="r", task_id="t", map_index=-1, try_number=2, max_tries=1,
                             state="failed", task=None)  # fmt: skip
        event = TaskEvent.from_task_instance(ti, error=error)
        return alerts.task_failed(SETTINGS, event, "", cause=cause_of(event.error))

    mismatch = (
        "Executor LocalExecutor(parallelism=8) reported that the task instance <TaskInstance: etl.t r [running]> "
        "finished with state success, but the task instance's state attribute is running."
    )
    by_scheduler = killed("etl", mismatch)
    by_sweep = killed("report", UNREPORTED_ERROR)

    assert by_scheduler.labels["error_fingerprint"] == by_sweep.labels["error_fingerprint"]
    assert killed("etl", "ValueError: bad").labels["error_fingerprint"] != by_sweep.labels["error_fingerprint"]


def test_the_sweep_waits_while_a_burst_of_failures_goes_on_but_not_past_its_hold() -> None:
    from types import SimpleNamespace

    from airflow_obs.observability.failure_sweep import GRACE, MAX_HOLD, _burst_still_going

    def rows(*ages: timedelta) -> list:
        return [SimpleNamespace(dttm=NOW - age) for age in ages]

    assert _burst_still_going(rows(timedelta(seconds=9), GRACE / 2), NOW), "one failed a moment ago: more may come"
    assert not _burst_still_going(rows(timedelta(seconds=9), GRACE * 1.5), NOW), "quiet for GRACE: page them"
    assert not _burst_still_going(rows(MAX_HOLD * 1.1, GRACE / 2), NOW), "held long enough: page what is ready"
    assert not _burst_still_going([], NOW)
