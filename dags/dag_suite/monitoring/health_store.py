"""The warehouse table `stack_health`: one row per component per check, read back by the daily report.

`checked_at` is an ISO-8601 UTC timestamp with seconds (`2026-01-02T06:05:00+00:00`), stored as text so SQLite and
PostgreSQL compare it the same way; `healthy` is 1/0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from dag_suite.warehouse import placeholder, run_script, upsert_rows

TABLE = "stack_health"
COLUMNS = ("checked_at", "component", "healthy", "latency_ms", "detail")
KEY = ("checked_at", "component")
DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "checked_at VARCHAR(32) NOT NULL, component VARCHAR(64) NOT NULL, healthy INTEGER NOT NULL, "
    "latency_ms DOUBLE PRECISION, detail TEXT NOT NULL, PRIMARY KEY (checked_at, component))"
)

# `{mark}` is the dialect's parameter placeholder: values are always bound parameters.
WINDOW_SQL = (
    "SELECT component, COUNT(*), SUM(1 - healthy), AVG(latency_ms) FROM stack_health "
    "WHERE checked_at >= {mark} AND checked_at < {mark} GROUP BY component"
)
LATEST_SQL = (
    "SELECT s.component, s.checked_at, s.healthy, s.detail FROM stack_health s JOIN ("
    "SELECT component, MAX(checked_at) AS last_at FROM stack_health WHERE checked_at < {mark} GROUP BY component"
    ") l ON s.component = l.component AND s.checked_at = l.last_at"
)


def timestamp(moment: datetime) -> str:
    """The text form of `checked_at` and of the bounds it is compared with."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no timezone: stack_health timestamps are UTC")
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def ensure_table(hook: DbApiHook) -> None:
    run_script(hook, [DDL])


def record(hook: DbApiHook, checked_at: datetime, results: Iterable[Mapping[str, Any]]) -> int:
    """Store one check of every component (CheckResult.as_dict() rows); a rerun of the same instant replaces it."""
    ensure_table(hook)
    at = timestamp(checked_at)
    rows = [(at, r["component"], 1 if r["healthy"] else 0, r.get("latency_ms"), r.get("detail") or "") for r in results]
    return upsert_rows(hook, TABLE, COLUMNS, KEY, rows)


def _query(hook: DbApiHook, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    connection = hook.get_conn()
    try:
        cursor = connection.cursor()
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        connection.close()


def summarise(hook: DbApiHook, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per component: checks and unhealthy checks in [start, end), mean latency, and its latest check before end."""
    ensure_table(hook)
    mark = placeholder(hook)
    lo, hi = timestamp(start), timestamp(end)
    window = _query(hook, WINDOW_SQL.format(mark=mark), (lo, hi))
    latest = _query(hook, LATEST_SQL.format(mark=mark), (hi,))
    counts = {row[0]: row[1:] for row in window}
    summary = []
    for component, checked_at, healthy, detail in sorted(latest):
        checks, unhealthy, mean_latency = counts.get(component, (0, 0, None))
        summary.append(
            {
                "component": component,
                "checks": int(checks),
                "unhealthy_checks": int(unhealthy or 0),
                "availability": round(1 - int(unhealthy or 0) / checks, 4) if checks else None,
                "mean_latency_ms": None if mean_latency is None else round(float(mean_latency), 1),
                "latest": {"checked_at": str(checked_at), "healthy": bool(healthy), "detail": detail},
            }
        )
    return summary
