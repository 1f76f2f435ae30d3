"""Secrets of the local stack: generated once, kept in files readable by the owner only, never printed in logs."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from local_stack.settings import StackSettings

# The two Airflow accounts of the local stack: UI auth stays on, and on-call engineers get read-only access.
AIRFLOW_USERS = {"admin": "admin", "oncall": "viewer"}


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode given to open() only applies when the file is new
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def ensure_secret(path: Path, make: Callable[[], str]) -> str:
    """Return the secret stored at `path`, creating it with `make()` the first time (so reruns keep it)."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    write_private(path, value + "\n")
    return value


def airflow_passwords_file(settings: StackSettings) -> Path:
    return settings.secrets_dir / "airflow_passwords.json"


def ensure_airflow_passwords(settings: StackSettings) -> dict[str, str]:
    """Random passwords for the Airflow accounts, in SimpleAuthManager's passwords-file format."""
    path = airflow_passwords_file(settings)
    passwords = json.loads(path.read_text()) if path.exists() else {}
    missing = [user for user in AIRFLOW_USERS if user not in passwords]
    for user in missing:
        passwords[user] = secrets.token_urlsafe(12)
    if missing:
        write_private(path, json.dumps(passwords) + "\n")
    return {user: passwords[user] for user in AIRFLOW_USERS}


def airflow_internal_secrets(settings: StackSettings) -> dict[str, str]:
    """Keys that every Airflow process must share (JWTs between scheduler and api-server, Fernet, sessions)."""
    folder = settings.secrets_dir
    return {
        "AIRFLOW__API_AUTH__JWT_SECRET": ensure_secret(folder / "jwt_secret", lambda: secrets.token_urlsafe(32)),
        "AIRFLOW__API__SECRET_KEY": ensure_secret(folder / "api_secret_key", lambda: secrets.token_urlsafe(32)),
        "AIRFLOW__CORE__FERNET_KEY": ensure_secret(folder / "fernet_key", lambda: Fernet.generate_key().decode()),
    }


def postgres_password(settings: StackSettings) -> str:
    return ensure_secret(settings.secrets_dir / "postgres_airflow_password", lambda: secrets.token_urlsafe(18))


def redis_password(settings: StackSettings) -> str:
    return ensure_secret(settings.secrets_dir / "redis_password", lambda: secrets.token_urlsafe(18))


def flower_basic_auth(settings: StackSettings) -> str:
    """Flower's UI login, `admin:<password>` (its /metrics stays open to Prometheus on loopback)."""
    password = ensure_secret(settings.secrets_dir / "flower_admin_password", lambda: secrets.token_urlsafe(12))
    return f"admin:{password}"


def redact(text: str, settings: StackSettings) -> str:
    """`text` with every secret of the stack replaced, for error messages that quote a tool's output."""
    values: set[str] = set()
    if settings.secrets_dir.is_dir():
        for path in settings.secrets_dir.iterdir():
            content = path.read_text().strip()
            values.update(json.loads(content).values() if path.suffix == ".json" else [content])
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= 6:  # never blank out short common substrings
            text = text.replace(value, "[redacted]")
    return text
