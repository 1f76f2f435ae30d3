"""Delete old task-log files under `[logging] base_log_folder`, then the folders that become empty.

Safety: only names that look like Airflow logs (`attempt=1.log`, `x.py.log`, rotated `.log.1`/`.log.gz`) are
deleted, so a base_log_folder pointed at the wrong place cannot remove a database or a config file. Symbolic links
are never followed nor deleted (os.walk(followlinks=False) and lstat), and every path is checked to stay inside the
folder.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

LOG_NAME = re.compile(r"\.log(\.\d+|\.gz)?$")


@dataclass
class LogCleanupReport:
    base_log_folder: str
    older_than: str
    files_deleted: int = 0
    bytes_freed: int = 0
    dirs_removed: int = 0
    files_kept: int = 0
    other_files_skipped: int = 0
    symlinks_skipped: int = 0


def _refuse(base: Path) -> None:
    if not base.is_absolute() or base == Path(base.anchor) or base == Path.home().resolve():
        raise ValueError(f"refusing to clean {base}: [logging] base_log_folder must be a dedicated absolute folder")


def delete_old_logs(base_log_folder: str | Path, retention_days: int, now: datetime | None = None) -> dict:
    """Delete log files last modified more than `retention_days` ago; return counts and bytes freed."""
    if retention_days < 1:
        raise ValueError(f"log_retention_days must be at least 1, got {retention_days}")
    base = Path(base_log_folder).expanduser().resolve()
    _refuse(base)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    report = LogCleanupReport(base_log_folder=str(base), older_than=cutoff.isoformat())
    if not base.is_dir():
        log.warning("base_log_folder %s does not exist: nothing to clean", base)
        return asdict(report)
    limit = cutoff.timestamp()
    emptied: set[Path] = set()  # folders in which something was deleted
    for dirpath, dirnames, filenames in os.walk(base, topdown=False, followlinks=False):
        folder = Path(dirpath)
        if folder != base and base not in folder.parents:  # defence in depth: never leave the folder
            continue
        for name in filenames + [d for d in dirnames if (folder / d).is_symlink()]:
            path = folder / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                report.symlinks_skipped += 1
            elif not stat.S_ISREG(info.st_mode) or not LOG_NAME.search(name):
                report.other_files_skipped += 1
            elif info.st_mtime >= limit:
                report.files_kept += 1
            else:
                path.unlink()
                report.files_deleted += 1
                report.bytes_freed += info.st_size
                emptied.add(folder)
        if folder == base or any(folder.iterdir()):
            continue
        if folder in emptied or folder.lstat().st_mtime < limit:
            try:
                folder.rmdir()
            except OSError:  # a task wrote into it meanwhile: keep it
                continue
            report.dirs_removed += 1
            emptied.add(folder.parent)
    log.info("log cleanup of %s (older than %s): %s", base, report.older_than, asdict(report))
    return asdict(report)
