"""maintenance_db_backup declares a Deadline Alert whose callback is the toolkit's: a miss pages on the alert path."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AsyncCallback
from airflow.sdk.definitions.deadline import AverageRuntimeDeadline
from airflow_obs.observability import deadlines
from airflow_obs.observability.notify import alerts

DAG_ID = "maintenance_db_backup"


def test_the_backup_must_succeed_within_its_average_runtime_plus_a_margin(dagbag) -> None:
    (deadline,) = dagbag.dags[DAG_ID].deadline

    assert isinstance(deadline.reference, AverageRuntimeDeadline)
    # Three finished runs before there is a deadline at all (a fresh stack stays quiet), ten at most in the average.
    assert (deadline.reference.min_runs, deadline.reference.max_runs) == (3, 10)
    assert deadline.interval == timedelta(seconds=90)


def test_its_callback_is_the_plugins_run_by_the_triggerer_with_the_dags_owner_and_team(dagbag) -> None:
    dag = dagbag.dags[DAG_ID]
    (deadline,) = dag.deadline

    assert isinstance(deadline.callback, AsyncCallback), "AsyncCallback: the triggerer runs it"
    assert deadline.callback.path == deadlines.CALLBACK_PATH
    team = next(tag.removeprefix("team:") for tag in dag.tags if tag.startswith("team:"))
    owner = {task.owner for task in dag.tasks}
    assert deadline.callback.kwargs == {"owner": owner.pop(), "team": team, "deadline": "usual duration"}
    assert not owner, "one owner for the DAG's tasks"


def test_the_callback_posts_the_plugins_deadline_alert() -> None:
    assert deadlines.deadline_missed.__module__ + ".deadline_missed" == deadlines.CALLBACK_PATH
    assert alerts.SEVERITY[alerts.DAG_RUN_DEADLINE_MISSED] == "warning"
