"""Read-only access to Airflow's metadata DB, without importing Airflow.

Importing Airflow costs the exporter about 70 MB of memory and seconds of start-up, so it does not:
the tables are reflected from the live database on first use (which also follows the schema of
whichever Airflow version wrote it), and the few settings it needs from Airflow's configuration are
read once, at start, by a short-lived `python -c` child that does import Airflow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import MetaData, Table, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

DB_URL_ENV = "AIRFLOW_OBS_EXPORTER_DB_URL"
AIRFLOW_SETTINGS_TIMEOUT_SECONDS = 120

_READ_AIRFLOW_SETTINGS = """
import json
from airflow.configuration import conf
print(json.dumps({
    "sql_alchemy_conn": conf.get("database", "sql_alchemy_conn"),
    "task_instance_heartbeat_timeout": conf.getfloat("scheduler", "task_instance_heartbeat_timeout"),
}))
"""


@dataclass(frozen=True)
class AirflowSettings:
    sql_alchemy_conn: str
    task_instance_heartbeat_timeout: float


class AirflowSettingsError(RuntimeError):
    """Airflow's configuration could not be read."""


def read_airflow_settings() -> AirflowSettings:
    """The settings the exporter shares with Airflow, resolved by Airflow itself (env, airflow.cfg, _cmd, _secret)."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", _READ_AIRFLOW_SETTINGS],
            capture_output=True,
            text=True,
            timeout=AIRFLOW_SETTINGS_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise AirflowSettingsError(f"reading Airflow's configuration took over {error.timeout:.0f}s") from None
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise AirflowSettingsError(
            f"could not read Airflow's configuration ({last_line}); set {DB_URL_ENV} or db_url instead"
        )
    # Only the last line: Airflow may log to stdout while it loads.
    values = json.loads(result.stdout.strip().splitlines()[-1])
    return AirflowSettings(values["sql_alchemy_conn"], float(values["task_instance_heartbeat_timeout"]))


def make_engine(url: str) -> Engine:
    """A small pool: scrapes are serial and must not compete with the scheduler for connections."""
    connect_args: dict[str, object] = {}
    if url.startswith("sqlite"):
        connect_args = {"timeout": 5}
    elif url.startswith("postgresql"):
        # Fail fast instead of stalling; the statement timeout bounds any one query, and every
        # transaction is read-only, so the exporter cannot write even by mistake.
        connect_args = {
            "connect_timeout": 5,
            "options": "-c statement_timeout=10000 -c default_transaction_read_only=on",
        }
    # QueuePool named: SQLAlchemy 1.4 (Airflow 3.1) gives SQLite files a NullPool, which takes no pool size.
    return create_engine(
        url, poolclass=QueuePool, pool_size=2, max_overflow=0, pool_pre_ping=True, connect_args=connect_args
    )


_metadata: weakref.WeakKeyDictionary[Engine, MetaData] = weakref.WeakKeyDictionary()
_reflect_lock = threading.Lock()


def airflow_table(engine: Engine, name: str) -> Table:
    """Airflow's table `name`, reflected from `engine`'s database once (columns and indexes as deployed)."""
    with _reflect_lock:
        metadata = _metadata.setdefault(engine, MetaData())
        if name not in metadata.tables:
            Table(name, metadata, autoload_with=engine)
        return metadata.tables[name]


def utc_timestamp(moment: datetime) -> float:
    """Unix time of a DB datetime: PostgreSQL returns aware values, SQLite naive ones that Airflow wrote in UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
