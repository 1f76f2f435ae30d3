"""The time window a report covers: the run's data interval, or the 24 h before the run when it has none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_SPAN = timedelta(hours=24)


def report_window(context: dict[str, Any], span: timedelta = DEFAULT_SPAN) -> tuple[datetime, datetime]:
    """[start, end) in UTC. A manual run whose data interval is empty (start == end) covers the `span` before it."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if end is None:
        dag_run = context.get("dag_run")
        end = context.get("logical_date") or getattr(dag_run, "run_after", None) or datetime.now(UTC)
    if start is None or start >= end:
        start = end - span
    return start.astimezone(UTC), end.astimezone(UTC)
