"""Backup files of the metadata DB: names, what a verification compares, and how many are kept."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger(__name__)

# Tables whose row counts (and alembic's version) must be the same in the source snapshot and the restored copy.
VERIFY_TABLES = ("alembic_version", "dag", "dag_run")
PREFIX = "metadata-"
SUFFIXES = {"sqlite": ".sqlite", "postgresql": ".dump"}
FAILED_SUFFIX = ".failed"


class BackupVerificationFailed(AirflowFailException):
    """The restored copy differs from the source, or cannot be read at all; retrying would not change that."""


def new_backup_path(folder: Path, backend: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return folder / f"{PREFIX}{stamp}{SUFFIXES[backend]}"


def compare_snapshots(expected: dict[str, Any], restored: dict[str, Any]) -> list[str]:
    """Differences between two snapshots ({"counts": {table: n}, "alembic_version": [...]}), one line each."""
    problems = []
    for table, count in sorted(expected["counts"].items()):
        got = restored["counts"].get(table)
        if got != count:
            problems.append(f"{table}: {count} rows in the source, {got} in the restored copy")
    if expected["alembic_version"] != restored["alembic_version"]:
        problems.append(
            f"alembic_version: {expected['alembic_version']} in the source, {restored['alembic_version']} restored"
        )
    return problems


def mark_failed(path: Path) -> Path:
    """Keep a backup that failed verification for investigation, out of the set of good backups."""
    failed = path.with_name(path.name + FAILED_SUFFIX)
    if path.exists():
        path.rename(failed)
    return failed


def prune_backups(folder: Path, keep: int) -> list[str]:
    """Delete all but the `keep` newest good backups (names sort by time); return the deleted names."""
    if keep < 1:
        raise ValueError(f"keep_backups must be at least 1, got {keep}")
    good = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.is_symlink() and p.name.startswith(PREFIX) and p.suffix in SUFFIXES.values()
    )
    deleted = []
    for path in good[:-keep]:
        path.unlink()
        deleted.append(path.name)
    log.info("kept %d backups in %s, deleted %s", min(keep, len(good)), folder, deleted or "none")
    return deleted
