"""Exporter tests: a real Airflow metadata DB, emptied around each test, read through private registries.

Every `engine` test runs twice: on SQLite (migrated by Airflow) and on a throwaway PostgreSQL 15 cluster
(tables and indexes created from Airflow's models).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from airflow_obs.exporter.database import make_engine
from airflow_obs.exporter.instrumentation import GuardedCollectors
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, create_engine, delete, insert

from local_stack.throwaway_postgres import create_airflow_database, throwaway_cluster


@pytest.fixture(scope="session")
def postgres_metadata_url() -> Iterator[str]:
    with throwaway_cluster() as port:
        yield create_airflow_database(port, "airflow")


def _tables():
    from airflow.jobs.job import Job
    from airflow.models.callback import Callback
    from airflow.models.dag import DagModel, DagTag
    from airflow.models.dagrun import DagRun
    from airflow.models.deadline import Deadline
    from airflow.models.errors import ParseImportError
    from airflow.models.pool import Pool
    from airflow.models.taskinstance import TaskInstance

    # Children before parents, for PostgreSQL's foreign keys.
    return [
        ParseImportError.__table__,
        Deadline.__table__,
        Callback.__table__,
        TaskInstance.__table__,
        DagRun.__table__,
        DagTag.__table__,
        DagModel.__table__,
        Job.__table__,
        Pool.__table__,
    ]


_writers: dict[str, Engine] = {}


def writable(engine: Engine) -> Engine:
    """A read-write engine on the same DB: the exporter's own engine is read-only on PostgreSQL."""
    url = engine.url.render_as_string(hide_password=False)
    if url not in _writers:
        _writers[url] = create_engine(url)
    return _writers[url]


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, airflow_db) -> Iterator[Engine]:
    """The exporter's (read-only) engine on a freshly emptied DB; seed it through writable(engine)."""
    from airflow.models.dagbundle import DagBundleModel

    if request.param == "sqlite":
        url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    else:
        url = request.getfixturevalue("postgres_metadata_url")
    engine = make_engine(url)
    with writable(engine).begin() as connection:
        for table in _tables():
            connection.execute(delete(table))
        connection.execute(delete(DagBundleModel.__table__).where(DagBundleModel.__table__.c.name == "test-bundle"))
        connection.execute(insert(DagBundleModel.__table__).values(name="test-bundle", active=True))
    yield engine
    with writable(engine).begin() as connection:
        for table in _tables():
            connection.execute(delete(table))
    engine.dispose()


def seed_dag(
    engine,
    dag_id: str,
    *,
    paused: bool = False,
    stale: bool = False,
    owners: str = "data-eng",
    tags: tuple[str, ...] = (),
) -> None:
    from airflow.models.dag import DagModel, DagTag

    with writable(engine).begin() as connection:
        connection.execute(
            insert(DagModel.__table__).values(
                dag_id=dag_id,
                is_paused=paused,
                is_stale=stale,
                owners=owners,
                bundle_name="test-bundle",
                fileloc=f"/dags/{dag_id}.py",
                max_active_tasks=16,
                max_active_runs=1,
                max_consecutive_failed_dag_runs=0,
                has_task_concurrency_limits=False,
                has_import_errors=False,
            )
        )
        for tag in tags:
            connection.execute(insert(DagTag.__table__).values(dag_id=dag_id, name=tag))


def seed_run(engine, dag_id: str, run_id: str, state: str, *, run_after: datetime, start=None, end=None) -> int:
    """Insert a scheduled DAG run; returns its id."""
    from airflow.models.dagrun import DagRun

    with writable(engine).begin() as connection:
        return connection.execute(
            insert(DagRun.__table__)
            .values(
                dag_id=dag_id,
                run_id=run_id,
                state=state,
                run_after=run_after,
                run_type="scheduled",
                start_date=start,
                end_date=end,
                logical_date=run_after,
                clear_number=0,
                log_template_id=None,
                triggered_by="TIMETABLE",
            )
            .returning(DagRun.__table__.c.id)
        ).scalar_one()


def set_run(engine, run_id: int, **values) -> None:
    from airflow.models.dagrun import DagRun

    run = DagRun.__table__
    with writable(engine).begin() as connection:
        connection.execute(run.update().where(run.c.id == run_id).values(**values))


def registry_for(*collectors) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(GuardedCollectors(list(collectors)))
    return registry


def seed_ti(engine, dag_id: str, run_id: str, task_id: str, state: str | None, **values) -> uuid.UUID:
    """Insert a task instance (pool default_pool, queue default unless given); returns its id."""
    from airflow.models.taskinstance import TaskInstance

    ti = TaskInstance.__table__
    row = {"pool": "default_pool", "queue": "default", "try_number": 1, **values}
    with writable(engine).begin() as connection:
        return connection.execute(
            insert(ti).values(dag_id=dag_id, run_id=run_id, task_id=task_id, state=state, **row).returning(ti.c.id)
        ).scalar_one()


def set_ti(engine, ti_id: uuid.UUID, **values) -> None:
    from airflow.models.taskinstance import TaskInstance

    ti = TaskInstance.__table__
    with writable(engine).begin() as connection:
        connection.execute(ti.update().where(ti.c.id == ti_id).values(**values))
