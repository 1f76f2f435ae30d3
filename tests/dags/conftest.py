"""DAG tests: a real metadata DB (SQLite, migrated once per session) and the suite's DagBag."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


@pytest.fixture
def warehouse_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SQLite warehouse for one test, behind the `warehouse` connection id."""
    path = tmp_path / "warehouse.db"
    from dag_suite.warehouse import sqlite_conn_uri

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", sqlite_conn_uri(path))
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data folder (landing files, model registry, reports) for one test."""
    path = tmp_path / "data"
    monkeypatch.setenv("AIRFLOW_OBS_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="module")
def probe_dag(airflow_db):
    """The paging tests' probe DAG (tests/dags/notify_probe.py), known to the metadata DB."""
    from tests.dags.notify_probe import register_probe_dag

    return register_probe_dag()


def run_dag(dagbag, dag_id: str, logical_date=None, **conf):
    """Run one DAG end to end with dag.test() against the real metadata DB; return the DagRun.

    Runs a copy: dag.test() resolves the run's conf into the DAG's own Param objects, which would
    otherwise leak one test's params (a fault switch, a threshold) into the next run of that DAG.
    """
    dag = dagbag.get_dag(dag_id)
    assert dag is not None, f"{dag_id} not in the DagBag; import errors: {dagbag.import_errors}"
    return without_deadlines(copy.deepcopy(dag)).test(logical_date=logical_date, run_conf=conf or None)


def without_deadlines(dag):
    """The DAG without its Deadline Alerts. Airflow 3.3's dag.test() cannot end a run of a DAG that has one: the
    run's success looks its alerts up by id (DagRun.update_state), but dag.test() hands it the DAG serialized in
    memory, whose alerts are still definitions ("'dict' object has no attribute 'hex'"). Deadlines are tested on the
    stack (tests/integration/test_deadline_alert.py), where the scheduler runs them from the DAG the dag-processor
    stored."""
    dag.deadline = None
    return dag


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


@pytest.fixture
def plugin_env(monkeypatch: pytest.MonkeyPatch):
    """Set AIRFLOW_OBS_* variables the plugin reads for one test (its settings are read once, then cached)."""
    from airflow_obs.observability.settings import settings

    def apply(**environ: str) -> None:
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        settings.cache_clear()

    yield apply
    monkeypatch.undo()
    settings.cache_clear()


def xcom(dag_run, task_id: str) -> Any:
    """A task's return value, read from the metadata DB (tests may use the ORM, tasks may not)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
        ).one()
        return XComModel.deserialize_value(row)
