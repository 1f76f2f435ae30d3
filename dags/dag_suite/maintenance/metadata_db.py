"""Where a maintenance task finds Airflow's metadata DB, and how it hands it to an `airflow` CLI subprocess.

Verified in Airflow 3.3.2 (`airflow/sdk/execution_time/supervisor.py`, `block_orm_access`): a task forked by a
real executor (LocalExecutor, Celery, ...) starts with the ORM blocked. Its `[database] sql_alchemy_conn`, through
`airflow.configuration.conf` and `airflow.sdk.conf` alike, and its AIRFLOW__DATABASE__SQL_ALCHEMY_CONN environment
variable are replaced by "airflow-db-not-allowed:///", so an `airflow db clean` subprocess would inherit the
placeholder, not the real URL. Under dag.test() / `airflow dags test` the task runs in-process without that block and
the configuration still holds the real URL. Seen live (api-server + scheduler + dag-processor, LocalExecutor): without
the connection below the cleanup task fails with MetadataDbNotConfigured; with it, cleanup and backup succeed.

So the URL comes from, in order:
1. the connection `airflow_metadata_db` (e.g. AIRFLOW_CONN_AIRFLOW_METADATA_DB='postgresql://user:pw@host:5432/airflow'
   or a secrets backend): what a deployment with a real executor must define for these DAGs;
2. `[database] sql_alchemy_conn`, when it is not the placeholder (in-process runs, tests).
(Not `airflow_db`: `airflow connections create-default-connections` defines that one as mysql://root@mysql/airflow.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from airflow.sdk import BaseHook, conf
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret
from sqlalchemy.engine import URL, make_url

from dag_suite import connections

METADATA_DB_CONN_ID = connections.METADATA_DB
BLOCKED_URL_PREFIX = "airflow-db-not-allowed"
# Variables that could point a subprocess at another DB than the one we pass (the task runner sets some of them).
_OVERRIDDEN_ENV = (
    "AIRFLOW__CORE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET",
)


class MetadataDbNotConfigured(RuntimeError):
    """The task cannot tell where the metadata DB is."""


def _url_from_connection(conn_id: str) -> URL | None:
    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:  # other errors (API server down...) must not pass for "not configured"
        return None
    conn_type = (connection.conn_type or "").lower()
    if conn_type in ("postgres", "postgresql"):
        return URL.create(
            "postgresql",
            username=connection.login or None,
            password=connection.password or None,
            host=connection.host or None,
            port=connection.port or None,
            database=connection.schema or None,
        )
    if conn_type == "sqlite":
        # sqlite:////abs/path.db arrives as schema="/abs/path.db" (Task SDK) or host="/abs/path.db" (other parsers)
        path = connection.host or connection.schema or ""
        if not path.startswith("/"):
            raise MetadataDbNotConfigured(f"connection {conn_id!r}: SQLite needs an absolute path, got {path!r}")
        return URL.create("sqlite", database=path)
    raise MetadataDbNotConfigured(f"connection {conn_id!r} has type {conn_type!r}: expected postgres or sqlite")


def metadata_db_url() -> URL:
    """The metadata DB's SQLAlchemy URL (see the module docstring); its password is masked in task logs."""
    url = _url_from_connection(METADATA_DB_CONN_ID)
    if url is None:
        configured = conf.get("database", "sql_alchemy_conn", fallback="") or ""
        if configured and not configured.startswith(BLOCKED_URL_PREFIX):
            url = make_url(configured)
    if url is None:
        raise MetadataDbNotConfigured(
            "this task runs with Airflow's DB access blocked ([database] sql_alchemy_conn is a placeholder in task "
            f"processes): define the connection {METADATA_DB_CONN_ID!r}, e.g. "
            f"AIRFLOW_CONN_{METADATA_DB_CONN_ID.upper()}='postgresql://user:password@host:5432/airflow' "
            f"or 'sqlite:////absolute/path/airflow.db'"
        )
    if url.password:
        mask_secret(str(url.password))
    return url


def backend(url: URL) -> str:
    """'postgresql' or 'sqlite'; anything else is refused by the maintenance DAGs."""
    name = url.get_backend_name()
    if name not in ("postgresql", "sqlite"):
        raise MetadataDbNotConfigured(f"metadata DB backend {name!r} is not supported: expected postgresql or sqlite")
    return name


def sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise MetadataDbNotConfigured(f"SQLite metadata DB URL has no file: {url!r}")
    return Path(url.database)


def airflow_cli() -> str:
    """The `airflow` executable of the interpreter running the task (the venv's), else the one on PATH."""
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def airflow_cli_env(url: URL) -> dict[str, str]:
    """The task's environment with the metadata DB URL set, for an `airflow ...` subprocess."""
    env = {k: v for k, v in os.environ.items() if k not in _OVERRIDDEN_ENV}
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url.render_as_string(hide_password=False)
    return env
