"""Connections whose extras hold a secret that Airflow would show in clear (API, UI, logs).

Airflow masks an extras value only when its key name contains a sensitive word ([core] sensitive_var_conn_names
plus defaults such as password, secret, token, api_key); `GET /api/v2/connections` applies that redaction. A key
like `db_pass`, `pwd` or `credentials` slips through. The REST API cannot serve this audit: SimpleAuthManager lets
only the "op" role and above read connections, and the suite's `airflow_api` connection is a viewer. So the audit
reads the raw connections with `airflow connections export` (a subprocess, given the metadata DB URL) plus the
AIRFLOW_CONN_* variables of the task's environment, and asks the task's secrets masker which keys it would hide.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow.sdk import Connection
from airflow.sdk._shared.secrets_masker import should_hide_value_for_key
from sqlalchemy.engine import URL

from dag_suite.maintenance.metadata_db import airflow_cli, airflow_cli_env

log = logging.getLogger(__name__)

SECRET_LOOKING_KEY = re.compile(r"pass|pwd|secret|token|api[_-]?key|private[_-]?key|credential|access[_-]?key", re.I)
EXPORT_TIMEOUT_SECONDS = 120


def _secret_values(extra: Any, path: str = "") -> Iterator[str]:
    """Dotted keys of unmasked, secret-looking, non-empty string values in an extras dict (nested ones too)."""
    if not isinstance(extra, dict):
        return
    for key, value in extra.items():
        name = f"{path}{key}"
        if should_hide_value_for_key(str(key)):
            continue  # Airflow masks the whole value
        if isinstance(value, dict):
            yield from _secret_values(value, name + ".")
        elif isinstance(value, str) and value.strip() and value != "***" and SECRET_LOOKING_KEY.search(str(key)):
            yield name


def extras_findings(conn_id: str, extra: Any, source: str) -> list[str]:
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except ValueError:
            return []
    return [
        f"plaintext secret: connection {conn_id!r} ({source}) extra {key!r} is not masked by Airflow; move it to the "
        "password field or name the key so [core] sensitive_var_conn_names covers it"
        for key in _secret_values(extra)
    ]


def exported_connections(url: URL) -> dict[str, dict[str, Any]]:
    """The metadata DB's connections, unmasked, via the CLI; the file lives in a private folder, deleted at once."""
    folder = Path(tempfile.mkdtemp(prefix="conn-audit-"))  # mode 0700
    target = folder / "connections.json"
    try:
        result = subprocess.run(
            [airflow_cli(), "connections", "export", str(target), "--file-format", "json"],
            env=airflow_cli_env(url),
            capture_output=True,
            text=True,
            timeout=EXPORT_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"airflow connections export exited {result.returncode}: {result.stderr[-1500:]}")
        return json.loads(target.read_text() or "{}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def environment_connections() -> dict[str, Connection]:
    found = {}
    for name, value in os.environ.items():
        if name.startswith("AIRFLOW_CONN_") and value.strip():
            conn_id = name.removeprefix("AIRFLOW_CONN_").lower()
            is_json = value.lstrip().startswith("{")
            try:
                found[name] = Connection.from_json(value, conn_id) if is_json else Connection.from_uri(value, conn_id)
            except Exception as exc:  # an unparsable connection is for Airflow to report, not this audit
                log.warning("%s cannot be parsed (%s): not audited", name, type(exc).__name__)
    return found


def connection_findings(url: URL) -> list[str]:
    """Findings for the connections stored in the metadata DB."""
    findings = []
    for conn_id, fields in sorted(exported_connections(url).items()):
        findings += extras_findings(conn_id, fields.get("extra"), "metadata DB")
    return findings


def environment_findings() -> list[str]:
    """Findings for the AIRFLOW_CONN_* connections the task sees."""
    findings = []
    for variable, connection in sorted(environment_connections().items()):
        findings += extras_findings(connection.conn_id, connection.extra_dejson, f"env {variable}")
    return findings
