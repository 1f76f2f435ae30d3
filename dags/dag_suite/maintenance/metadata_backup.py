"""Back up the metadata DB and prove the backup restores, whichever backend it is (chosen by its URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from dag_suite.maintenance.backups import BackupVerificationFailed, mark_failed, new_backup_path
from dag_suite.maintenance.metadata_db import backend, sqlite_path
from dag_suite.maintenance.postgres_backup import backup_postgres, restore_and_verify_postgres
from dag_suite.maintenance.sqlite_backup import backup_sqlite, restore_and_verify_sqlite


def take_backup(url: URL, folder: Path) -> dict[str, Any]:
    """Write a new backup file into `folder`; return where it is and the source snapshot it must match."""
    kind = backend(url)
    target = new_backup_path(folder, kind)
    expected = backup_sqlite(sqlite_path(url), target) if kind == "sqlite" else backup_postgres(url, target)
    return {"backend": kind, "path": str(target), "bytes": target.stat().st_size, "expected": expected}


def verify_backup(url: URL, backup: dict[str, Any]) -> dict[str, Any]:
    """Restore into a scratch copy and compare; a backup that fails is renamed *.failed and the task fails."""
    path = Path(backup["path"])
    try:
        if backup["backend"] == "sqlite":
            return restore_and_verify_sqlite(path, backup["expected"])
        return restore_and_verify_postgres(url, path, backup["expected"])
    except BackupVerificationFailed:
        mark_failed(path)
        raise
