"""UI authentication checks: the auth manager is not "everyone is admin", and no account has a default password.

SimpleAuthManager keeps passwords in a JSON file {"user": "password"}: `[core] simple_auth_manager_passwords_file`,
else `$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated`. Findings name users, never passwords.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
DEFAULT_PASSWORDS = frozenset({"admin", "airflow", "password", "changeme", "secret", "123456", "12345678", "test"})


def uses_simple_auth_manager(conf) -> bool:
    return conf.get("core", "auth_manager", fallback=SIMPLE_AUTH_MANAGER).strip() == SIMPLE_AUTH_MANAGER


def ui_auth_findings(conf) -> list[str]:
    if uses_simple_auth_manager(conf) and conf.getboolean("core", "simple_auth_manager_all_admins", fallback=False):
        return ["UI auth is off: [core] simple_auth_manager_all_admins is True, every visitor is an admin"]
    return []


def passwords_file(conf) -> Path:
    configured = conf.get("core", "simple_auth_manager_passwords_file", fallback=None)
    if configured:
        return Path(configured)
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return home / "simple_auth_manager_passwords.json.generated"


def weak_passwords(passwords: dict[str, str]) -> list[str]:
    """Users whose password is their user name or a well-known default."""
    weak = []
    for user, password in sorted(passwords.items()):
        if str(password).strip().lower() in DEFAULT_PASSWORDS | {str(user).lower()}:
            weak.append(user)
    return weak


def password_findings(conf) -> list[str]:
    if not uses_simple_auth_manager(conf):
        return []
    path = passwords_file(conf)
    if not path.exists():
        return []  # SimpleAuthManager generates random passwords into it on first start
    try:
        passwords = json.loads(path.read_text() or "{}")
    except ValueError:
        return [f"passwords file {path} is not JSON: SimpleAuthManager cannot read it either"]
    if not isinstance(passwords, dict):
        return [f"passwords file {path} is not a JSON object of user: password"]
    return [
        f"default password: user {user!r} in {path} has a default or guessable password (its user name or a "
        "well-known default); set a random one"
        for user in weak_passwords(passwords)
    ]
