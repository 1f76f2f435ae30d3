"""The private PostgreSQL 15 cluster of `AIRFLOW_OBS_DB=postgres`: created once in the stack's folder."""

from __future__ import annotations

import os
import shutil
import subprocess

import psycopg2
from psycopg2 import sql

from local_stack.programs import POSTGRES_BIN, postgres_data_dir, postgres_socket_dir
from local_stack.secrets import postgres_password
from local_stack.settings import StackSettings


class PostgresError(RuntimeError):
    """The private PostgreSQL could not be created or reached."""


def _as_postgres(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def ensure_cluster(settings: StackSettings) -> bool:
    """Create the cluster if it does not exist yet; return True when it was created now."""
    data = postgres_data_dir(settings)
    if (data / "PG_VERSION").exists():
        return False
    sock = postgres_socket_dir(settings)
    for folder in (data, sock):
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
    data.chmod(0o700)
    result = subprocess.run(
        _as_postgres(
            [
                str(POSTGRES_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PostgresError(
            f"initdb failed for {data} (exit {result.returncode}): {result.stderr.strip()[-400:]}. "
            "Remove that folder or set AIRFLOW_OBS_HOME elsewhere and rerun."
        )
    return True


def superuser_connection(settings: StackSettings):
    """A connection as the cluster's superuser over its private Unix socket (trust auth, no password)."""
    return psycopg2.connect(
        host=str(postgres_socket_dir(settings)),
        port=settings.ports["postgres"],
        user="postgres",
        dbname="postgres",
        connect_timeout=3,
    )


def ensure_airflow_database(settings: StackSettings) -> None:
    """Create the `airflow` role and its databases if missing, and keep the role's password in sync."""
    password = postgres_password(settings)
    connection = superuser_connection(settings)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = 'airflow'")
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            # CREATEDB: the backup DAG verifies each dump by restoring it into a scratch database.
            cursor.execute(sql.SQL(verb + " ROLE airflow LOGIN CREATEDB PASSWORD {}").format(sql.Literal(password)))
            # Airflow's metadata DB, and the DAG suite's warehouse beside it.
            for database in ("airflow", "warehouse"):
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if not cursor.fetchone():
                    cursor.execute(sql.SQL("CREATE DATABASE {} OWNER airflow").format(sql.Identifier(database)))
    finally:
        connection.close()
