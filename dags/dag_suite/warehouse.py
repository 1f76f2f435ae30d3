"""The warehouse behind one connection id: PostgreSQL (postgres provider) or SQLite (sqlite provider)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import BaseHook

WAREHOUSE_CONN_ID = "warehouse"
SUPPORTED_CONN_TYPES = ("sqlite", "postgres")


class WarehouseNotConfigured(RuntimeError):
    """The warehouse connection is missing or of a kind the suite cannot use."""


def sqlite_conn_uri(path: str | os.PathLike[str]) -> str:
    """An Airflow connection URI for a SQLite file: the path goes in the host, percent-encoded.

    (`sqlite:////abs/path.db` parses into a URI that the sqlite provider's hook cannot open.)
    """
    return "sqlite://" + quote(str(Path(path).resolve()), safe="")


def _how_to_configure(conn_id: str) -> str:
    env = f"AIRFLOW_CONN_{conn_id.upper()}"
    return (
        f"configure it with {env}='{sqlite_conn_uri('/absolute/path/warehouse.db')}' or "
        f"{env}='postgresql://user:password@host:5432/warehouse', or in the UI under Admin > Connections"
    )


def warehouse_hook(conn_id: str = WAREHOUSE_CONN_ID) -> DbApiHook:
    """The warehouse's DB-API hook; fails with a message naming the connection id and how to set it up."""
    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception as exc:  # the Task SDK raises its own "not found" error type
        raise WarehouseNotConfigured(f"connection {conn_id!r} is not defined: {_how_to_configure(conn_id)}") from exc
    if connection.conn_type not in SUPPORTED_CONN_TYPES:
        raise WarehouseNotConfigured(
            f"connection {conn_id!r} has type {connection.conn_type!r}: expected one of "
            f"{', '.join(SUPPORTED_CONN_TYPES)}; {_how_to_configure(conn_id)}"
        )
    return connection.get_hook()


def dialect(hook: DbApiHook) -> str:
    return "postgres" if hook.conn_type == "postgres" else "sqlite"


def placeholder(hook: DbApiHook) -> str:
    return "%s" if dialect(hook) == "postgres" else "?"


def upsert_rows(
    hook: DbApiHook, table: str, columns: Sequence[str], key: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert rows, replacing any with the same key: reruns of a date never duplicate (SQLite and PostgreSQL)."""
    rows = list(rows)
    if not rows:
        return 0
    mark = placeholder(hook)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    # Table and column names come from the suite's code; every value is a bound parameter.
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) "
        f"ON CONFLICT ({', '.join(key)}) {conflict}"
    )
    connection = hook.get_conn()
    try:
        cursor = connection.cursor()
        cursor.executemany(sql, rows)
        connection.commit()
    finally:
        connection.close()
    return len(rows)


def run_script(hook: DbApiHook, statements: Sequence[str]) -> None:
    """Run DDL/DML statements in one transaction."""
    connection = hook.get_conn()
    try:
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        connection.commit()
    finally:
        connection.close()
