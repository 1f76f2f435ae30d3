"""Maintenance DAGs against real things: the session's SQLite metadata DB with the real `airflow db clean`, a real
log tree, and the audit of the test process's own settings. The backups: test_metadata_backup.py.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.dags.conftest import run_dag, task_states, xcom

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OLD = datetime(2025, 1, 10, 12, tzinfo=UTC)  # after the DAGs' start_date: earlier runs get no task instances


def run_ids(dag_id: str) -> set[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return set(session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)))


def task_instance_count(run_id: str) -> int:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return len(session.scalars(select(TaskInstance.id).where(TaskInstance.run_id == run_id)).all())


# --- metadata DB cleanup -------------------------------------------------------------------------------------------


def test_db_cleanup_deletes_runs_older_than_the_retention_and_keeps_recent_ones(dagbag, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "logs"))  # the tiny DAG's folder
    old = [run_dag(dagbag, "maintenance_log_cleanup", logical_date=OLD + timedelta(days=d)) for d in (0, 1)]
    recent = run_dag(dagbag, "maintenance_log_cleanup", logical_date=datetime.now(UTC) - timedelta(days=2))
    assert all(run.start_date < OLD + timedelta(days=5) for run in old), "dag.test() should start runs at their date"
    assert task_instance_count(old[0].run_id) == 1
    # Cut-off 60 days after the old runs: they are older, the recent run and other tests' runs are newer.
    retention_days = (datetime.now(UTC) - (OLD + timedelta(days=60))).days

    # Distinct logical dates: dag.test() replaces an earlier run of the same DAG with the same (or no) logical date.
    now = datetime.now(UTC)
    dry = run_dag(
        dagbag, "maintenance_db_cleanup", now - timedelta(minutes=1), retention_days=retention_days, dry_run=True
    )
    assert task_states(dry) == {"clean_metadata_db": "success"}
    dry_report = xcom(dry, "clean_metadata_db")
    assert dry_report["dry_run"] is True
    assert dry_report["rows_per_table"]["dag_run"] >= 2
    assert {r.run_id for r in old} <= run_ids("maintenance_log_cleanup"), "a dry run must delete nothing"

    clean = run_dag(dagbag, "maintenance_db_cleanup", now, retention_days=retention_days, dry_run=False)

    assert task_states(clean) == {"clean_metadata_db": "success"}
    report = xcom(clean, "clean_metadata_db")
    assert report["dry_run"] is False
    assert report["rows_per_table"]["dag_run"] >= 2
    remaining = run_ids("maintenance_log_cleanup")
    assert not {r.run_id for r in old} & remaining
    assert task_instance_count(old[0].run_id) == 0, "task instances go with their run"
    assert recent.run_id in remaining
    assert {dry.run_id, clean.run_id} <= run_ids("maintenance_db_cleanup")


def test_db_clean_output_is_parsed_per_table():
    from dag_suite.maintenance.db_clean import clean_before, parse_clean_output

    output = "\nChecking table dag_run\nFound 3 rows meeting deletion criteria.\nPerforming Delete...\n"
    output += "Checking table xcom\nFound 0 rows meeting deletion criteria.\n"
    assert parse_clean_output(output) == {"dag_run": 3, "xcom": 0}
    with pytest.raises(ValueError, match="at least 1"):
        clean_before(0)


# --- task-log cleanup ----------------------------------------------------------------------------------------------


def _write(path: Path, size: int, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = (datetime.now(UTC) - timedelta(days=age_days)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_log_cleanup_deletes_old_log_files_and_empty_folders_and_keeps_the_rest(dagbag, tmp_path, monkeypatch):
    base = tmp_path / "logs"
    old_run = base / "dag_id=etl/run_id=old/task_id=load"
    old_a = _write(old_run / "attempt=1.log", 100, 30)
    old_b = _write(old_run / "attempt=2.log", 250, 20)
    old_rotated = _write(base / "scheduler/old.log.1", 50, 40)
    recent = _write(base / "dag_id=etl/run_id=new/task_id=load/attempt=1.log", 70, 1)
    not_a_log = _write(base / "dag_id=etl/notes.txt", 10, 90)
    outside = _write(tmp_path / "outside/precious.log", 10, 90)
    (base / "linked_dir").symlink_to(outside.parent, target_is_directory=True)
    (base / "dag_id=etl/linked.log").symlink_to(outside)
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(base))

    run = run_dag(dagbag, "maintenance_log_cleanup", log_retention_days=14)

    assert task_states(run) == {"delete_old_task_logs": "success"}
    report = xcom(run, "delete_old_task_logs")
    assert (report["files_deleted"], report["bytes_freed"]) == (3, 400)
    assert report["symlinks_skipped"] == 2
    assert not old_a.exists() and not old_b.exists() and not old_rotated.exists()
    assert not (base / "dag_id=etl/run_id=old").exists(), "folders left empty are removed"
    assert recent.exists() and not_a_log.exists() and outside.exists()
    assert (base / "linked_dir").is_symlink()


def test_log_cleanup_refuses_the_root_folder_and_keeps_everything_within_retention(tmp_path):
    from dag_suite.maintenance.log_cleanup import delete_old_logs

    with pytest.raises(ValueError, match="refusing"):
        delete_old_logs("/", 14)
    kept = _write(tmp_path / "a/attempt=1.log", 5, 13)
    report = delete_old_logs(tmp_path, 14)
    assert (report["files_deleted"], report["files_kept"]) == (0, 1) and kept.exists()


# --- audit ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def audit_env(tmp_path, monkeypatch) -> Path:
    """Settings matching the committed baseline (the local stack's), and strong SimpleAuthManager passwords."""
    for name, value in {
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp_path / "logs"),
    }.items():
        monkeypatch.setenv(name, value)
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": "Zq8-long-random-1", "oncall": "Vb2-long-random-2"}))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    return passwords


AUDIT_TASKS = ["check_config_drift", "audit_ui_auth", "audit_connections", "check_secrets_masking"]


def test_the_audit_passes_when_settings_match_the_baseline_and_nothing_is_insecure(dagbag, audit_env):
    run = run_dag(dagbag, "maintenance_audit")

    assert task_states(run) == dict.fromkeys([*AUDIT_TASKS, "report_findings"], "success")
    assert all(xcom(run, task_id) == [] for task_id in AUDIT_TASKS)


@contextlib.contextmanager
def stored_connection(conn_id: str, extra: dict[str, Any]) -> Iterator[None]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(Connection(conn_id=conn_id, conn_type="http", host="example.invalid", extra=json.dumps(extra)))
    try:
        yield
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()


def test_the_audit_fails_naming_drift_default_passwords_and_unmasked_secrets(dagbag, audit_env, monkeypatch):
    from airflow.configuration import conf

    # Every Airflow process of a deployment shares one Fernet key; give the CLI subprocess the test process's.
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", conf.get("core", "fernet_key"))
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "32")
    monkeypatch.setenv("AIRFLOW__API__HOST", "0.0.0.0")  # noqa: S104
    audit_env.write_text(json.dumps({"admin": "admin", "oncall": "Vb2-long-random-2"}))
    legacy = {"conn_type": "http", "host": "example.invalid", "extra": {"db_pass": "hunter2-env", "api_key": "k" * 9}}
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_API", json.dumps(legacy))

    with stored_connection("vendor_sftp", {"pwd": "hunter2-db", "token": "masked-anyway", "timeout": "30"}):
        run = run_dag(dagbag, "maintenance_audit")

    assert task_states(run) == {**dict.fromkeys(AUDIT_TASKS, "success"), "report_findings": "failed"}
    assert sorted(xcom(run, "check_config_drift")) == [
        "config drift: [api] host expected '127.0.0.1' or 'localhost' or '::1', actual '0.0.0.0'",
        "config drift: [core] parallelism expected 8, actual 32",
    ]
    (weak,) = xcom(run, "audit_ui_auth")
    assert "user 'admin'" in weak and "oncall" not in weak
    connections = xcom(run, "audit_connections")
    assert len(connections) == 2, connections
    assert any("'vendor_sftp' (metadata DB) extra 'pwd'" in f for f in connections)
    assert any("'legacy_api' (env AIRFLOW_CONN_LEGACY_API) extra 'db_pass'" in f for f in connections)
    assert not any("hunter2" in f for f in connections + [weak]), "findings must never quote a secret"


def test_ui_auth_with_all_admins_on_is_a_finding(monkeypatch):
    from airflow.sdk import conf
    from dag_suite.maintenance.auth_audit import ui_auth_findings

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    assert ui_auth_findings(conf) == []
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    assert ui_auth_findings(conf) == [
        "UI auth is off: [core] simple_auth_manager_all_admins is True, every visitor is an admin"
    ]


def test_the_masking_check_is_ok_when_mask_secret_works_and_reports_when_it_does_not(monkeypatch):
    from dag_suite.maintenance import masking_check

    result = masking_check.check_masking()
    assert result["ok"] is True and masking_check.masking_findings(result) == []

    monkeypatch.setattr(masking_check, "mask_secret", lambda secret, name=None: None)
    broken = masking_check.check_masking()
    assert broken["ok"] is False
    assert masking_check.masking_findings(broken) == [
        "secrets masking broken: a value registered with mask_secret appeared unmasked in the log pipeline"
    ]


def test_maintenance_dags_import_cleanly_with_their_tasks(dagbag):
    assert not [f for f in dagbag.import_errors if "maintenance" in f]
    expected = {
        "maintenance_db_cleanup": ["clean_metadata_db"],
        "maintenance_log_cleanup": ["delete_old_task_logs"],
        "maintenance_db_backup": ["backup_metadata_db", "prune_old_backups", "verify_restore"],
        "maintenance_audit": sorted([*AUDIT_TASKS, "report_findings"]),
    }
    assert {d: sorted(dagbag.get_dag(d).task_ids) for d in expected} == expected
