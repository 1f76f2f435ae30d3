"""Messages waiting on disk: one JSON file per message per sink, written atomically, readable by the owner only.

Layout of the spool directory (mode 0700):
- `<id>.json`: waiting for redelivery;
- `<id>.json.sending`: claimed by a process that is sending it right now (write-ahead: every new message
  is claimed *before* its first attempt, so a process killed mid-send leaves it behind, never loses it);
- `rejected/<id>.json`: refused by the sink (a 4xx): not retried; move a file back up to requeue it.

`<id>` starts with the creation time in milliseconds, so names sort oldest first, and ends with the sink,
so a sink's queue is known without reading any file. Claims are renames, which are atomic: two processes
redelivering at once never send the same file twice. Within one process, a lock orders the claim holder's
"delivered" against the caller's "release" (a send may finish after its caller stopped waiting).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

log = logging.getLogger("airflow_obs.notify")

PENDING = ".json"
CLAIMED = ".json.sending"
REJECTED_DIR = "rejected"

# One lock for every Spool object of the process: a late sender and its caller may hold different objects.
_FILES = threading.Lock()


@dataclass(frozen=True)
class Envelope:
    """One rendered message for one sink: what is sent, spooled and redelivered (never a credential)."""

    id: str
    sink: str
    body: dict[str, Any]
    created_at: float
    attempts: int = 0
    failed_rounds: int = 0  # delivery rounds (first delivery, then each redelivery pass) that failed
    not_before: float = 0.0
    last_error: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Envelope:
        data = json.loads(raw)
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def failed(self, attempts: int, error: str, not_before: float) -> Envelope:
        return replace(
            self,
            attempts=self.attempts + attempts,
            failed_rounds=self.failed_rounds + 1,
            not_before=not_before,
            last_error=error,
        )


def new_envelope(notification_id: str, sink: str, body: dict[str, Any], now: float | None = None) -> Envelope:
    created = time.time() if now is None else now
    # The random part keeps two callbacks for the same try (a rerun callback) from sharing a file.
    envelope_id = f"{int(created * 1000):013d}-{notification_id}-{uuid.uuid4().hex[:6]}-{sink}"
    return Envelope(id=envelope_id, sink=sink, body=body, created_at=created)


def sink_of(filename: str) -> str:
    return filename.removesuffix(CLAIMED).removesuffix(PENDING).rsplit("-", 1)[-1]


def write_private(path: Path, data: bytes) -> None:
    """Write `path` atomically (temporary file, fsync, rename) with mode 0600."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class Spool:
    """The spool directory; `clock` is wall-clock time (not_before and staleness are absolute times)."""

    def __init__(self, directory: Path, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.clock = clock

    def _path(self, envelope_id: str, suffix: str) -> Path:
        return self.directory / f"{envelope_id}{suffix}"

    def _ensure(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    # --- one message's life ---------------------------------------------------------------------------

    def claim_new(self, envelope: Envelope) -> None:
        """Write-ahead: keep the message, claimed by this process, before its first attempt."""
        self._ensure()
        write_private(self._path(envelope.id, CLAIMED), envelope.to_json())

    def claim(self, envelope_id: str) -> bool:
        """Take a waiting message for sending; False if another process took it first."""
        pending = self._path(envelope_id, PENDING)
        try:
            # Touched first, so the claim is fresh the moment it exists (staleness is read from the mtime).
            os.utime(pending)
            os.rename(pending, self._path(envelope_id, CLAIMED))
        except FileNotFoundError:
            return False
        return True

    def delivered(self, envelope_id: str) -> None:
        """The message reached its sink: it waits nowhere any more."""
        with _FILES:
            for suffix in (CLAIMED, PENDING):
                self._path(envelope_id, suffix).unlink(missing_ok=True)

    def release(self, envelope: Envelope) -> bool:
        """Put a claimed message back to wait (with its new attempt count); False if it was delivered meanwhile."""
        with _FILES:
            claimed = self._path(envelope.id, CLAIMED)
            if not claimed.exists():
                return False
            write_private(self._path(envelope.id, PENDING), envelope.to_json())
            claimed.unlink(missing_ok=True)
            return True

    def reject(self, envelope: Envelope) -> Path:
        """Keep a message its sink refused, out of the redelivery queue."""
        with _FILES:
            rejected = self.directory / REJECTED_DIR
            rejected.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = rejected / f"{envelope.id}{PENDING}"
            write_private(path, envelope.to_json())
            self._path(envelope.id, CLAIMED).unlink(missing_ok=True)
            return path

    # --- the queue --------------------------------------------------------------------------------------

    def waiting(self) -> list[Path]:
        """Every waiting message, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(path for path in self.directory.iterdir() if path.name.endswith(PENDING) and path.is_file())

    def load(self, path: Path) -> Envelope | None:
        try:
            return Envelope.from_json(path.read_bytes())
        except (OSError, ValueError, TypeError) as error:
            # Not ours or damaged by hand: set aside once, rather than fail every pass on it.
            log.warning("spooled notification %s is unreadable (%s): moved aside", path.name, type(error).__name__)
            try:
                (self.directory / REJECTED_DIR).mkdir(mode=0o700, exist_ok=True)
                os.rename(path, self.directory / REJECTED_DIR / path.name)
            except OSError:
                pass
            return None

    def ready(self, limit_per_sink: int) -> dict[str, list[Envelope]]:
        """Per sink, the oldest waiting messages that may be sent now.

        Each sink's queue is first in, first out: while its oldest message waits out a backoff or a
        Retry-After, the sink is left alone, so a sink that is down costs nothing until it is due.
        """
        now = self.clock()
        queues: dict[str, list[Path]] = {}
        for path in self.waiting():
            queues.setdefault(sink_of(path.name), []).append(path)
        ready: dict[str, list[Envelope]] = {}
        for sink, paths in queues.items():
            envelopes = []
            for path in paths:
                envelope = self.load(path)
                if envelope is None:
                    continue
                if not envelopes and envelope.not_before > now:
                    break
                envelopes.append(envelope)
                if len(envelopes) >= limit_per_sink:
                    break
            if envelopes:
                ready[sink] = envelopes
        return ready

    def recover_stale(self, older_than_seconds: float) -> int:
        """Claims older than this belong to a process that died mid-send: put them back in the queue."""
        if not self.directory.is_dir():
            return 0
        recovered = 0
        cutoff = self.clock() - older_than_seconds
        for path in self.directory.iterdir():
            if not path.name.endswith(CLAIMED):
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    os.rename(path, self.directory / (path.name.removesuffix(CLAIMED) + PENDING))
                    recovered += 1
            except FileNotFoundError:  # delivered or recovered by someone else meanwhile
                continue
        return recovered
