"""Read-only access to Airflow's metadata DB, with the URL taken from Airflow's own configuration."""

from __future__ import annotations

import os

from sqlalchemy import Engine, create_engine

DB_URL_ENV = "AIRFLOW_OBS_EXPORTER_DB_URL"


def metadata_db_url() -> str:
    """The exporter's DB URL: AIRFLOW_OBS_EXPORTER_DB_URL if set, else Airflow's [database] sql_alchemy_conn."""
    if url := os.environ.get(DB_URL_ENV):
        return url
    from airflow.configuration import conf  # imported late: it costs a second and reads airflow.cfg

    return conf.get("database", "sql_alchemy_conn")


def make_engine(url: str) -> Engine:
    """A small pool: scrapes are serial and must not compete with the scheduler for connections."""
    connect_args: dict[str, object] = {}
    if url.startswith("sqlite"):
        connect_args = {"timeout": 5}
    elif url.startswith("postgresql"):
        # Fail a scrape fast instead of stalling it; the statement timeout bounds any one query.
        connect_args = {
            "connect_timeout": 5,
            "options": "-c statement_timeout=10000 -c default_transaction_read_only=on",
        }
    return create_engine(url, pool_size=2, max_overflow=0, pool_pre_ping=True, connect_args=connect_args)


def import_airflow_models() -> None:
    """Import the Airflow models the collectors read, at start rather than inside the first scrape.

    Importing them costs seconds (it loads Airflow's configuration and ORM), which would otherwise blow
    the first scrape's deadline.
    """
    import airflow.jobs.job
    import airflow.models.dag
    import airflow.models.dagrun
    import airflow.models.deadline
    import airflow.models.errors
    import airflow.models.pool
    import airflow.models.taskinstance  # noqa: F401
