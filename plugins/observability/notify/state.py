"""Which DAGs' last run failed, so the next success sends one "recovered" message, and only one.

One small file per DAG in a directory beside the spool (`<spool>-dag-state/`): written when a run fails,
taken (renamed, then deleted) by the first success after it. A file is enough because of where DAG-run
callbacks run in Airflow 3: not in the scheduler but in the dag-processor, which executes the
callback requests of a DAG file in that file's processor process, one at a time, on its own host (and
in-process under `dag.test()`). The assumption: one dag-processor, or several sharing this directory on
one filesystem. Taking is a rename, which is atomic there, so even two successes at once recover once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from airflow_obs.observability.notify.spool import write_private
from airflow_obs.observability.settings import PluginSettings


def state_dir(settings: PluginSettings) -> Path:
    spool = settings.spool_path
    return spool.parent / f"{spool.name}-dag-state"


class DagFailures:
    """The last failed run of each DAG that has not recovered yet."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, dag_id: str) -> Path:
        return self.directory / f"{quote(dag_id, safe='')}.json"

    def remember(self, dag_id: str, run_id: str, when: float | None = None) -> None:
        """The DAG's latest run failed (a later failure replaces an earlier one)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = {"dag_id": dag_id, "run_id": run_id, "failed_at": time.time() if when is None else when}
        write_private(self._path(dag_id), json.dumps(record).encode())

    def failed_run(self, dag_id: str) -> str | None:
        """The run that failed last, if the DAG has not recovered since."""
        try:
            return json.loads(self._path(dag_id).read_bytes())["run_id"]
        except (OSError, ValueError, KeyError):
            return None

    def take(self, dag_id: str) -> dict | None:
        """Forget the DAG's failure and return it; None if there was none (or another success took it first)."""
        path = self._path(dag_id)
        taken = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.taken")
        try:
            os.rename(path, taken)
        except FileNotFoundError:
            return None
        try:
            return json.loads(taken.read_bytes())
        except (OSError, ValueError):
            return {"dag_id": dag_id, "run_id": ""}  # a damaged record still means "it had failed"
        finally:
            taken.unlink(missing_ok=True)


class PagedTries:
    """Tries whose page went to the sinks directly (no Alertmanager to ask later), one empty file each.

    The scheduler's failure sweep (failure_sweep.py) pages a try that failed without a listener hearing it; before
    it does, it asks Alertmanager, and, for a page that bypassed Alertmanager, this directory. Like DagFailures it
    assumes the hosts that page share it; files older than a day are removed as new ones are written.
    """

    KEEP_SECONDS = 86400.0

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, identity: str) -> Path:
        return self.directory / hashlib.sha256(identity.encode()).hexdigest()[:32]

    def remember(self, identity: str) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(self._path(identity), b"")
        cutoff = time.time() - self.KEEP_SECONDS
        for path in self.directory.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def paged(self, identity: str) -> bool:
        return self._path(identity).exists()


def paged_dir(settings: PluginSettings) -> Path:
    spool = settings.spool_path
    return spool.parent / f"{spool.name}-paged"
