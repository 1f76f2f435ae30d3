"""PostgreSQL metadata DB: `pg_dump -Fc`, restore into a scratch database, compare, drop the scratch database.

The source counts come from the very snapshot pg_dump copies (an exported snapshot held open while it runs), so a
busy scheduler writing meanwhile cannot make a good backup look bad. The scratch database needs the CREATEDB
privilege for the metadata DB's role (`ALTER ROLE airflow CREATEDB`).
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import URL

from dag_suite.maintenance.backups import VERIFY_TABLES, BackupVerificationFailed, compare_snapshots

log = logging.getLogger(__name__)

PG_BIN = Path(os.environ.get("AIRFLOW_OBS_PG_BIN", "/usr/lib/postgresql/15/bin"))
COMMAND_TIMEOUT_SECONDS = 10 * 60
SCRATCH_MARK = "_restore_check_"


def _params(url: URL, database: str | None = None) -> dict[str, Any]:
    host = url.host or url.query.get("host") or "localhost"
    return {
        "host": host,
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "dbname": database or url.database,
    }


def _cli_args(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump & co; the password travels in PGPASSWORD, never on the command line."""
    p = _params(url)
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if p["password"]:
        env["PGPASSWORD"] = str(p["password"])
    args = ["-h", str(p["host"]), "-p", str(p["port"])] + (["-U", p["user"]] if p["user"] else [])
    return args, env


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{Path(command[0]).name} did not finish within {COMMAND_TIMEOUT_SECONDS} s") from exc
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} exited {result.returncode}: {result.stderr.strip()[-1500:]}")


def connect(url: URL, database: str | None = None):
    return psycopg2.connect(connect_timeout=10, **_params(url, database))


def snapshot(cursor) -> dict[str, Any]:
    counts = {}
    for table in VERIFY_TABLES:
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        counts[table] = cursor.fetchone()[0]
    cursor.execute("SELECT version_num FROM alembic_version ORDER BY 1")
    return {"counts": counts, "alembic_version": [r[0] for r in cursor.fetchall()]}


def backup_postgres(url: URL, target: Path) -> dict[str, Any]:
    """pg_dump -Fc of the metadata DB; return the counts of the exact snapshot it dumped."""
    args, env = _cli_args(url)
    partial = target.with_name(target.name + ".partial")
    connection = connect(url)
    try:
        connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot_id = cursor.fetchone()[0]
            expected = snapshot(cursor)
            _run(
                [
                    str(PG_BIN / "pg_dump"),
                    *args,
                    "-Fc",
                    f"--snapshot={snapshot_id}",
                    "-f",
                    str(partial),
                    "-d",
                    url.database,
                ],
                env,
            )
        connection.rollback()
    finally:
        connection.close()
    partial.rename(target)
    log.info("pg_dump of %s to %s (%d bytes): %s", url.database, target, target.stat().st_size, expected)
    return expected


def scratch_database_name(url: URL) -> str:
    return f"{url.database}{SCRATCH_MARK}{secrets.token_hex(4)}"[-63:]


def restore_and_verify_postgres(url: URL, backup: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """createdb + pg_restore into a scratch database, compare with the source snapshot, always drop the scratch DB."""
    args, env = _cli_args(url)
    scratch = scratch_database_name(url)
    _run([str(PG_BIN / "createdb"), *args, "-T", "template0", scratch], env)
    try:
        try:
            _run(
                [
                    str(PG_BIN / "pg_restore"),
                    *args,
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "-d",
                    scratch,
                    str(backup),
                ],
                env,
            )
        except RuntimeError as exc:
            raise BackupVerificationFailed(f"backup {backup} cannot be restored: {exc}") from exc
        connection = connect(url, scratch)
        try:
            with connection.cursor() as cursor:
                restored = snapshot(cursor)
        except psycopg2.Error as exc:
            raise BackupVerificationFailed(f"restored copy of {backup} cannot be read: {exc}") from exc
        finally:
            connection.close()
    finally:
        _run([str(PG_BIN / "dropdb"), *args, "--if-exists", "--force", scratch], env)
    problems = compare_snapshots(expected, restored)
    if problems:
        raise BackupVerificationFailed(f"backup {backup} failed verification: " + " | ".join(problems))
    log.info("restored %s into scratch database %s (dropped): %s", backup, scratch, restored)
    return {"scratch_database": scratch, **restored}
