"""What the captures share: a thread-safe JSONL recorder, header redaction and a stop-signal wait."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REDACTED = "[redacted]"

# Substrings of header names whose values are credentials. Signature headers (X-Signature,
# X-Hub-Signature-256) are HMACs of the body, not secrets, so they are deliberately absent.
_SECRET_HEADER_MARKERS = ("authorization", "cookie", "api-key", "apikey", "token", "secret", "password")


def is_secret_header(name: str) -> bool:
    """Whether a header's value is a credential that must never reach a log."""
    lowered = name.lower()
    return any(marker in lowered for marker in _SECRET_HEADER_MARKERS)


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict, secret values replaced; repeated headers are joined with ', '."""
    result: dict[str, str] = {}
    for name, value in headers:
        value = REDACTED if is_secret_header(name) else value
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


def truncate(text: str, limit: int = 100) -> str:
    """Text on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class CaptureRecorder:
    """Appends one JSON object per line to `path` and prints a one-line summary per record."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        self.path = Path(path)
        self.kind = kind
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, fields: Mapping[str, Any], summary: str) -> dict[str, Any]:
        """Write `fields` (plus received_at and kind) as one line and print `[kind] summary`."""
        entry: dict[str, Any] = {
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "kind": self.kind,
            **fields,
        }
        line = json.dumps(entry, ensure_ascii=False, default=str)
        with self._lock:
            # Opened per record so a reader (or a crash) never sees a half-buffered line.
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
            print(f"[{self.kind}] {summary}", flush=True)
        return entry


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a capture file, oldest first; an absent file has none."""
    file = Path(path)
    if not file.exists():
        return []
    with file.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
