"""SQLite metadata DB: online backup API, restore into a scratch file, integrity check and row counts."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from dag_suite.maintenance.backups import VERIFY_TABLES, BackupVerificationFailed, compare_snapshots

log = logging.getLogger(__name__)


def snapshot(connection: sqlite3.Connection) -> dict[str, Any]:
    counts = {t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in VERIFY_TABLES}  # noqa: S608
    versions = [r[0] for r in connection.execute("SELECT version_num FROM alembic_version ORDER BY 1")]
    return {"counts": counts, "alembic_version": versions}


def backup_sqlite(source: Path, target: Path) -> dict[str, Any]:
    """Copy a live SQLite DB with the online backup API; return the source snapshot the copy holds."""
    if not source.is_file():
        raise FileNotFoundError(f"SQLite metadata DB {source} does not exist")
    partial = target.with_name(target.name + ".partial")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dest = sqlite3.connect(partial)
    try:
        # One read transaction for the counts and a one-step copy: both see the same state of the DB.
        src.execute("BEGIN")
        expected = snapshot(src)
        src.backup(dest, pages=-1)
        src.rollback()
        dest.execute("PRAGMA journal_mode=DELETE")  # a WAL-mode source would leave a -wal/-shm pair beside the copy
    finally:
        dest.close()
        src.close()
    partial.rename(target)
    log.info("backed up %s to %s (%d bytes): %s", source, target, target.stat().st_size, expected)
    return expected


def restore_and_verify_sqlite(backup: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """Restore the backup into a scratch file and check it: integrity_check 'ok' and the source's row counts."""
    scratch_dir = Path(tempfile.mkdtemp(prefix=".restore-check-", dir=backup.parent))  # same disk as the backup
    scratch = scratch_dir / "restored.sqlite"
    try:
        try:
            src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
            dest = sqlite3.connect(scratch)
            try:
                src.backup(dest)
                integrity = [r[0] for r in dest.execute("PRAGMA integrity_check")]
                restored = snapshot(dest)
            finally:
                dest.close()
                src.close()
        except sqlite3.DatabaseError as exc:
            raise BackupVerificationFailed(f"backup {backup} cannot be restored: {exc}") from exc
        problems = [] if integrity == ["ok"] else [f"PRAGMA integrity_check: {'; '.join(integrity[:5])}"]
        problems += compare_snapshots(expected, restored)
        if problems:
            raise BackupVerificationFailed(f"backup {backup} failed verification: " + " | ".join(problems))
        log.info("restored %s into a scratch file: integrity ok, %s", backup, restored)
        return {"integrity_check": "ok", **restored}
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
