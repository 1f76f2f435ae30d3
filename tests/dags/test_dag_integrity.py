"""Every DAG file imports cleanly in a real DagBag and every DAG follows the suite's policy."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from airflow.sdk import DAG, task
from dag_suite.defaults import suite_dag_args
from dag_suite.policy import dag_violations

from tests.conftest import REPO_ROOT

DAG_FILES = sorted(path.name for path in (REPO_ROOT / "dags").glob("*.py"))


def test_every_dag_file_imports_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


@pytest.mark.parametrize("filename", DAG_FILES)
def test_every_dag_file_defines_at_least_one_dag(dagbag, filename: str) -> None:
    defined = [dag_id for dag_id, dag in dagbag.dags.items() if dag.fileloc.endswith(f"/dags/{filename}")]
    assert defined, f"{filename} defines no DAG"


def test_the_suite_covers_etl_ml_monitoring_and_maintenance(dagbag) -> None:
    prefixes = {dag_id.split("_")[0] for dag_id in dagbag.dag_ids}
    assert {"etl", "ml", "monitoring", "maintenance"} <= prefixes


def test_every_dag_follows_the_suite_policy(dagbag) -> None:
    problems = [problem for dag in dagbag.dags.values() for problem in dag_violations(dag)]
    assert problems == []


def test_the_policy_names_the_dag_and_task_of_every_breach() -> None:
    with DAG("policy_breaker", schedule=None, start_date=datetime(2026, 1, 1), tags=[]) as dag:

        @task(retries=0)
        def untimed() -> None: ...

        untimed()

    problems = dag_violations(dag)

    assert "policy_breaker: doc_md is missing: say what the DAG does and what a failure means" in problems
    assert any(p.startswith("policy_breaker: needs exactly one team tag") for p in problems)
    assert "policy_breaker: has no schedule: the suite's DAGs run on cron, Assets or a timetable" in problems
    assert "policy_breaker.untimed: retries is 0: expected at least 1" in problems
    assert any(p.startswith("policy_breaker.untimed: execution_timeout is missing") for p in problems)
    assert "policy_breaker.untimed: owner is 'airflow': set a real owner" in problems


def test_a_dag_built_with_the_shared_factory_passes_the_policy() -> None:
    with DAG(
        "policy_follower",
        schedule="@daily",
        start_date=datetime(2026, 1, 1),
        **suite_dag_args(owner="data-eng", team="analytics", tags=["example"], doc_md="Example."),
    ) as dag:

        @task
        def step() -> None: ...

        step()

    assert dag_violations(dag) == []
    assert dag.default_args["max_retry_delay"] == timedelta(minutes=5)
