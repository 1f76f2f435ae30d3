"""Exporter tests: a real, migrated Airflow metadata DB (SQLite) emptied around each test, private registries."""

from __future__ import annotations

import os

import pytest
from airflow_exporter.database import make_engine
from airflow_exporter.instrumentation import GuardedCollectors
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, insert


@pytest.fixture
def engine(airflow_db):
    from airflow.jobs.job import Job
    from airflow.models.dag import DagModel, DagTag
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.errors import ParseImportError

    engine = make_engine(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    from airflow.models.dagrun import DagRun

    tables = [ParseImportError.__table__, DagRun.__table__, DagTag.__table__, DagModel.__table__, Job.__table__]
    with engine.begin() as connection:
        for table in tables:
            connection.execute(delete(table))
        connection.execute(delete(DagBundleModel.__table__).where(DagBundleModel.__table__.c.name == "test-bundle"))
        connection.execute(insert(DagBundleModel.__table__).values(name="test-bundle", active=True))
    yield engine
    with engine.begin() as connection:
        for table in tables:
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

    with engine.begin() as connection:
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


def registry_for(*collectors) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(GuardedCollectors(list(collectors)))
    return registry
