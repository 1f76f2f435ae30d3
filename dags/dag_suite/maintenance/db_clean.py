"""`airflow db clean` in a subprocess: the CLI's own semantics (cascades, keeps each DAG's latest scheduled run).

The CLI is a fresh process with its own settings, so it may use the ORM; the task only hands it the DB URL.
"""

from __future__ import annotations

import logging
import re
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import URL

from dag_suite.maintenance.metadata_db import airflow_cli, airflow_cli_env

log = logging.getLogger(__name__)

CLEAN_TIMEOUT_SECONDS = 15 * 60  # below the suite's 20-minute execution_timeout, so the task reports it itself
_CHECKING = re.compile(r"^Checking table (\S+)")
_FOUND = re.compile(r"^Found (\d+) rows meeting deletion criteria")


class DbCleanFailed(RuntimeError):
    """`airflow db clean` exited non-zero or timed out."""


def clean_before(retention_days: int, now: datetime | None = None) -> datetime:
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    return (now or datetime.now(UTC)) - timedelta(days=retention_days)


def clean_command(cutoff: datetime, *, dry_run: bool) -> list[str]:
    command = [
        airflow_cli(),
        "db",
        "clean",
        "--clean-before-timestamp",
        cutoff.isoformat(),
        "--yes",
        "--skip-archive",
        "--error-on-cleanup-failure",
    ]
    return [*command, "--dry-run"] if dry_run else command


def parse_clean_output(output: str) -> dict[str, int]:
    """Rows matched per table: the CLI prints "Checking table T" then "Found N rows meeting deletion criteria."."""
    rows: dict[str, int] = {}
    table = None
    for line in output.splitlines():
        if match := _CHECKING.match(line.strip()):
            table = match.group(1)
        elif (match := _FOUND.match(line.strip())) and table:
            rows[table] = int(match.group(1))
            table = None
    return rows


def run_db_clean(
    url: URL, *, retention_days: int, dry_run: bool, timeout: float = CLEAN_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Run the CLI and return what it matched (dry run) or deleted, per table."""
    cutoff = clean_before(retention_days)
    command = clean_command(cutoff, dry_run=dry_run)
    log.info("running: %s", " ".join(command))
    try:
        result = subprocess.run(
            command,
            env=airflow_cli_env(url),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DbCleanFailed(f"airflow db clean did not finish within {timeout:.0f} s") from exc
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-25:])
        raise DbCleanFailed(f"airflow db clean exited {result.returncode}; last lines:\n{tail}")
    rows = parse_clean_output(result.stdout)
    if not rows:
        raise DbCleanFailed(f"airflow db clean reported no table; its output changed?\n{result.stdout[-2000:]}")
    report = {
        "dry_run": dry_run,
        "clean_before": cutoff.isoformat(),
        "rows_per_table": {t: n for t, n in sorted(rows.items()) if n},
        "tables_checked": len(rows),
        "total_rows": sum(rows.values()),
    }
    verb = "would delete" if dry_run else "deleted"
    log.info(
        "db clean before %s %s %d rows: %s",
        report["clean_before"],
        verb,
        report["total_rows"],
        report["rows_per_table"] or "nothing",
    )
    return report
