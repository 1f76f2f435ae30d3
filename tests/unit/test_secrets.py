"""Secrets of the local stack: generated once, owner-only, and never passed on in an error message."""

from __future__ import annotations

from pathlib import Path

from local_stack.secrets import airflow_internal_secrets, ensure_airflow_passwords, postgres_password, redact
from local_stack.settings import load_settings


def test_every_generated_secret_is_redacted_from_a_message_that_quotes_it(tmp_path: Path) -> None:
    settings = load_settings({"AIRFLOW_OBS_HOME": str(tmp_path / "stack")})
    keys = airflow_internal_secrets(settings)
    passwords = ensure_airflow_passwords(settings)
    db_password = postgres_password(settings)
    message = f"Error: bad line environment={','.join(keys.values())} admin={passwords['admin']} db={db_password}"

    cleaned = redact(message, settings)

    for secret in [*keys.values(), *passwords.values(), db_password]:
        assert secret not in cleaned
    assert cleaned.startswith("Error: bad line environment=[redacted],")


def test_redaction_without_any_secret_yet_leaves_the_message_alone(tmp_path: Path) -> None:
    settings = load_settings({"AIRFLOW_OBS_HOME": str(tmp_path / "never-started")})
    assert redact("supervisord: port in use", settings) == "supervisord: port in use"


def test_passwords_survive_a_second_run_so_make_up_twice_keeps_the_logins(tmp_path: Path) -> None:
    settings = load_settings({"AIRFLOW_OBS_HOME": str(tmp_path / "stack")})
    first = ensure_airflow_passwords(settings)
    assert ensure_airflow_passwords(settings) == first
    assert set(first) == {"admin", "oncall"} and first["admin"] != first["oncall"]
