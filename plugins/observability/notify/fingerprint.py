"""An error's fingerprint: what failures of one cause share, whatever DAG, task, run or row they hit.

The fingerprint is 12 hex digits of a SHA-256 over the exception type and the message with what varies between
occurrences of one cause replaced by placeholders:
- the failing task's own DAG id, task id and run id (an error that names them: "task load of etl failed");
- Airflow's task instance repr (`<TaskInstance: etl.load manual__... [running]>`), UUIDs, ISO timestamps and dates;
- file paths, URLs' hosts and ports, quoted values, hex ids of 8+ digits, and every other number.
So "connection to server at 10.0.0.5, port 5432 failed" in three DAGs is one fingerprint, and a KeyError on a
different column is another. It labels the plugin's AirflowTaskFailed alerts (`error_fingerprint`), and
Alertmanager groups by it: one notification per cause, however many tasks it failed.
"""

from __future__ import annotations

import hashlib
import re

LENGTH = 12

# Airflow's task instance repr goes first: it holds the ids, and its closing ">" must still be there to find.
_TASK_INSTANCE = re.compile(r"<TaskInstance:[^>]*>")
_REPLACEMENTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.IGNORECASE), "<uuid>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"), "<time>"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/'\"]+"), "<url>"),
    (re.compile(r"(?:(?<=\s)|^|(?<=[=:'\"(]))(?:~|\.{1,2})?/[^\s'\",;)]+"), "<path>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<value>"),
    (re.compile(r"\b(?:0x)?[0-9a-f]{8,}\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalise(error: str, *, dag_id: str = "", task_id: str = "", run_id: str = "") -> str:
    """The error with what varies between occurrences of one cause replaced (see the module docstring)."""
    text = _TASK_INSTANCE.sub("<ti>", error)
    # Longest first, and whole tokens only: a task id "load" must not eat the "load" inside "download".
    for value, placeholder in sorted(
        ((run_id, "<run>"), (dag_id, "<dag>"), (task_id, "<task>")), key=lambda p: -len(p[0])
    ):
        if value:
            text = re.sub(rf"(?<![\w.-]){re.escape(value)}(?![\w-])", placeholder, text)
    for pattern, placeholder in _REPLACEMENTS:
        text = pattern.sub(placeholder, text)
    return text.strip()


def fingerprint(error: str, *, dag_id: str = "", task_id: str = "", run_id: str = "") -> str:
    """12 hex digits naming the error's cause; the same for an empty error (a try that ended without one)."""
    normalised = normalise(error, dag_id=dag_id, task_id=task_id, run_id=run_id)
    return hashlib.sha256(normalised.encode()).hexdigest()[:LENGTH]
