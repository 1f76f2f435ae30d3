"""Is secrets masking working? Register a random secret with the Task SDK, log it, and check it comes out masked.

`airflow.sdk.log.mask_secret` registers the value with the task's masker and with the supervisor, which writes the
task log. The check asks the masker the log pipeline uses (`redact`) and, when the task log file exists (real
executors; dag.test() logs to the console only), reads it back to check the value never reached the file.
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import Any

from airflow.sdk._shared.secrets_masker import redact
from airflow.sdk.log import mask_secret

log = logging.getLogger(__name__)

LOG_FILE_WAIT_SECONDS = 5.0


def _own_log_file(base_log_folder: str, ti: Any) -> Path | None:
    folder = Path(base_log_folder) / f"dag_id={ti.dag_id}" / f"run_id={ti.run_id}" / f"task_id={ti.task_id}"
    path = folder / f"attempt={ti.try_number}.log"
    return path if path.is_file() else None


def check_masking(base_log_folder: str | None = None, ti: Any = None) -> dict[str, Any]:
    probe = f"masking-probe-{secrets.token_hex(12)}"
    mask_secret(probe)
    marker = f"marker-{secrets.token_hex(6)}"
    line = f"secrets-masking probe {marker}: {probe}"
    log.info(line)
    redacted = str(redact(line))
    result: dict[str, Any] = {"redacted_in_pipeline": probe not in redacted and "***" in redacted, "log_file": None}
    log_file = _own_log_file(base_log_folder, ti) if base_log_folder and ti is not None else None
    if log_file:
        deadline = time.monotonic() + LOG_FILE_WAIT_SECONDS
        text = log_file.read_text(errors="replace")
        while marker not in text and time.monotonic() < deadline:
            time.sleep(0.25)
            text = log_file.read_text(errors="replace")
        result["log_file"] = str(log_file)
        result["marker_written"] = marker in text
        result["leaked_to_log_file"] = probe in text
    result["ok"] = result["redacted_in_pipeline"] and not result.get("leaked_to_log_file", False)
    return result


def masking_findings(result: dict[str, Any]) -> list[str]:
    if result["ok"]:
        return []
    where = "the task log file" if result.get("leaked_to_log_file") else "the log pipeline"
    return [f"secrets masking broken: a value registered with mask_secret appeared unmasked in {where}"]
