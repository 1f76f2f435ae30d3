"""Load: the warehouse tables (created if missing) and idempotent writes; SQL that runs on SQLite and PostgreSQL.

customers   key customer_id       upserted: a rerun replaces the row, never duplicates it
orders      key order_id          upserted; `ds` is the run date that last wrote the row
quarantine  key (ds, source, row_number)   the date's rows are replaced as a whole on every run
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

from dag_suite.connections import WAREHOUSE
from dag_suite.etl import landing
from dag_suite.warehouse import dialect, placeholder, run_script, upsert_rows, warehouse_hook

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from dag_suite.etl.transform import Quarantined

log = logging.getLogger(__name__)

# Updated by the ETL's load task; DAGs that consume the orders schedule on it (Airflow stores "warehouse://orders/").
ORDERS_ASSET = Asset("warehouse://orders")

CUSTOMER_COLUMNS = ("customer_id", "name", "email", "country", "signup_date", "ds", "loaded_at")
ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "ordered_at",
    "order_date",
    "amount",
    "currency",
    "amount_usd",
    "status",
    "ds",
    "loaded_at",
)
QUARANTINE_COLUMNS = ("ds", "source", "row_number", "reason", "raw")
TABLES = ("customers", "orders", "quarantine")

DDL = (
    """CREATE TABLE IF NOT EXISTS customers (
        customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, country TEXT, signup_date TEXT,
        ds TEXT NOT NULL, loaded_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS orders (
        order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, ordered_at TEXT NOT NULL, order_date TEXT NOT NULL,
        amount NUMERIC(14, 2) NOT NULL, currency TEXT NOT NULL, amount_usd NUMERIC(14, 2) NOT NULL,
        status TEXT NOT NULL, ds TEXT NOT NULL, loaded_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ix_orders_ds ON orders (ds)",
    "CREATE INDEX IF NOT EXISTS ix_orders_order_date ON orders (order_date)",
    """CREATE TABLE IF NOT EXISTS quarantine (
        ds TEXT NOT NULL, source TEXT NOT NULL, row_number INTEGER NOT NULL, reason TEXT NOT NULL, raw TEXT NOT NULL,
        PRIMARY KEY (ds, source, row_number))""",
)


def ensure_tables(hook: DbApiHook) -> None:
    run_script(hook, DDL)


def check_warehouse(conn_id: str = WAREHOUSE) -> dict[str, Any]:
    """Fail early (WarehouseNotConfigured) if the warehouse connection is missing; create the tables."""
    hook = warehouse_hook(conn_id)
    ensure_tables(hook)
    log.info("warehouse %r (%s) is reachable; tables %s exist", conn_id, dialect(hook), ", ".join(TABLES))
    return {"conn_id": conn_id, "dialect": dialect(hook), "tables": list(TABLES)}


def replace_quarantine(hook: DbApiHook, ds: str, rows: Sequence[Quarantined]) -> int:
    """Replace the date's quarantine rows in one transaction."""
    ensure_tables(hook)
    mark = placeholder(hook)
    connection = hook.get_conn()
    try:
        cursor = connection.cursor()
        cursor.execute(f"DELETE FROM quarantine WHERE ds = {mark}", (ds,))  # noqa: S608 (placeholder, not data)
        if rows:
            columns, marks = ", ".join(QUARANTINE_COLUMNS), ", ".join([mark] * len(QUARANTINE_COLUMNS))
            cursor.executemany(
                f"INSERT INTO quarantine ({columns}) VALUES ({marks})",  # noqa: S608 (placeholders, not data)
                [(ds, q.source, q.row_number, q.reason, q.raw) for q in rows],
            )
        connection.commit()
    except Exception:
        connection.rollback()
        raise
    finally:
        connection.close()
    log.info("quarantine for %s: %d rows", ds, len(rows))
    return len(rows)


def count_rows(hook: DbApiHook, table: str, ds: str | None = None) -> int:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}: expected one of {TABLES}")
    if ds is None:
        return int(hook.get_first(f"SELECT COUNT(*) FROM {table}")[0])  # noqa: S608 (table from TABLES)
    sql = f"SELECT COUNT(*) FROM {table} WHERE ds = {placeholder(hook)}"  # noqa: S608 (table from TABLES)
    return int(hook.get_first(sql, parameters=(ds,))[0])


def customer_ids(hook: DbApiHook) -> set[str]:
    return {row[0] for row in hook.get_records("SELECT customer_id FROM customers")}


def load_day(ds: str) -> dict[str, Any]:
    """Upsert the clean customers and orders of staging/<ds>/ into the warehouse; the counts after loading."""
    hook = warehouse_hook()
    ensure_tables(hook)
    staging = landing.staging_dir(ds)
    customers = landing.read_json(staging / landing.CLEAN_CUSTOMERS_FILE, "transform")
    orders = landing.read_json(staging / landing.CLEAN_ORDERS_FILE, "transform")
    loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
    stamp = {"ds": ds, "loaded_at": loaded_at}
    upsert_rows(
        hook,
        "customers",
        CUSTOMER_COLUMNS,
        ("customer_id",),
        ([{**row, **stamp}[c] for c in CUSTOMER_COLUMNS] for row in customers),
    )
    upsert_rows(
        hook, "orders", ORDER_COLUMNS, ("order_id",), ([{**row, **stamp}[c] for c in ORDER_COLUMNS] for row in orders)
    )
    in_warehouse = count_rows(hook, "orders", ds)
    if in_warehouse != len(orders):  # an earlier run of this date loaded orders this one no longer has
        log.warning("orders for %s: %d in the warehouse, %d in this batch", ds, in_warehouse, len(orders))
    counts = {"ds": ds, "customers": len(customers), "orders": len(orders), "orders_in_warehouse": in_warehouse}
    log.info("loaded %s", counts)
    return counts
