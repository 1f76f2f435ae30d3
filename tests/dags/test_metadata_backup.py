"""The metadata DB backup DAG against real databases: the session's SQLite metadata DB backed up through SQLite's
online backup API and PostgreSQL 15 with pg_dump, each restored for real and verified, the newest kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

from tests.conftest import free_port
from tests.dags.conftest import run_dag, task_states, xcom

PG_BIN = Path("/usr/lib/postgresql/15/bin")


# --- metadata DB backup: SQLite ------------------------------------------------------------------------------------


def test_sqlite_backup_is_restored_and_verified_and_only_the_newest_are_kept(dagbag, data_dir):
    folder = data_dir / "backups" / "metadata_db"
    folder.mkdir(parents=True)
    older = [folder / f"metadata-2024010{d}T000000000000Z.sqlite" for d in (1, 2, 3)]
    for path in older:
        path.write_bytes(b"an older backup")

    run = run_dag(dagbag, "maintenance_db_backup", keep_backups=2)

    assert task_states(run) == dict.fromkeys(["backup_metadata_db", "verify_restore", "prune_old_backups"], "success")
    backup = xcom(run, "backup_metadata_db")
    verified = xcom(run, "verify_restore")
    assert backup["backend"] == "sqlite" and Path(backup["path"]).parent == folder
    assert verified["integrity_check"] == "ok"
    assert verified["counts"] == backup["expected"]["counts"] and verified["counts"]["dag"] > 0
    assert verified["alembic_version"] == backup["expected"]["alembic_version"] != []
    assert sorted(p.name for p in folder.iterdir()) == sorted([older[-1].name, Path(backup["path"]).name])
    with contextlib.closing(sqlite3.connect(backup["path"])) as restored:
        assert restored.execute("SELECT count(*) FROM dag_run").fetchone()[0] >= 0


def _small_metadata_db(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);"
            "CREATE TABLE dag (dag_id VARCHAR(250) PRIMARY KEY, filler TEXT);"
            "CREATE TABLE dag_run (id INTEGER PRIMARY KEY, dag_id VARCHAR(250) REFERENCES dag, filler TEXT);"
            "INSERT INTO alembic_version VALUES ('abc123');"
        )
        db.executemany("INSERT INTO dag VALUES (?, ?)", [(f"dag_{i}", "f" * 400) for i in range(40)])
        db.executemany(
            "INSERT INTO dag_run (dag_id, filler) VALUES (?, ?)", [(f"dag_{i % 40}", "r" * 400) for i in range(200)]
        )
        db.commit()


def test_a_corrupted_or_different_sqlite_backup_fails_verification_and_is_set_aside(tmp_path):
    from dag_suite.maintenance.backups import BackupVerificationFailed
    from dag_suite.maintenance.metadata_backup import take_backup, verify_backup

    source = tmp_path / "airflow.db"
    _small_metadata_db(source)
    url = make_url(f"sqlite:///{source}")
    good = take_backup(url, tmp_path)
    assert verify_backup(url, good)["counts"] == {"alembic_version": 1, "dag": 40, "dag_run": 200}

    wrong = take_backup(url, tmp_path)
    wrong["expected"]["counts"]["dag_run"] = 201
    with pytest.raises(BackupVerificationFailed, match="dag_run: 201 rows in the source, 200 in the restored copy"):
        verify_backup(url, wrong)

    corrupt = take_backup(url, tmp_path)
    with open(corrupt["path"], "r+b") as handle:  # keep the header page, garble the rest
        handle.seek(4096)
        handle.write(os.urandom(Path(corrupt["path"]).stat().st_size - 4096))
    with pytest.raises(BackupVerificationFailed):
        verify_backup(url, corrupt)
    assert not Path(corrupt["path"]).exists() and Path(corrupt["path"] + ".failed").exists()


# --- metadata DB backup: PostgreSQL --------------------------------------------------------------------------------


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture
def postgres_url() -> Iterator[URL]:
    """A throwaway PostgreSQL 15 cluster on a free loopback port, with a small metadata-like `airflow` DB."""
    if not PG_BIN.is_dir():
        pytest.skip(f"PostgreSQL 15 binaries are not installed ({PG_BIN} is missing)")
    home = Path(tempfile.mkdtemp(prefix="maint-pg-", dir="/tmp"))
    home.chmod(0o755)  # the postgres user must be able to enter it
    (home / "sock").mkdir()
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
        shutil.chown(home / "sock", "postgres", "postgres")
    data, port = home / "data", free_port()
    pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-t", "30"]
    try:
        initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust", "--no-locale"]
        subprocess.run(
            _as_postgres([*initdb, "--auth-host=scram-sha-256"]), check=True, capture_output=True, timeout=120
        )
        options = f"-p {port} -k {home / 'sock'} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = [*pg_ctl, "-l", str(home / "pg.log"), "-o", options, "start"]
        subprocess.run(_as_postgres(start), check=True, capture_output=True, timeout=60)
        import psycopg2

        password = f"test-pw-{port}"
        admin = psycopg2.connect(host=str(home / "sock"), port=port, user="postgres", dbname="postgres")
        admin.autocommit = True
        with contextlib.closing(admin), admin.cursor() as cursor:
            cursor.execute("CREATE ROLE airflow LOGIN CREATEDB PASSWORD %s", (password,))
            cursor.execute("CREATE DATABASE airflow OWNER airflow")
        url = URL.create("postgresql", "airflow", password, "127.0.0.1", port, "airflow")
        with contextlib.closing(psycopg2.connect(url.render_as_string(hide_password=False))) as db:
            with db.cursor() as cursor:
                cursor.execute(
                    "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);"
                    "CREATE TABLE dag (dag_id VARCHAR(250) PRIMARY KEY);"
                    "CREATE TABLE dag_run (id SERIAL PRIMARY KEY, dag_id VARCHAR(250) REFERENCES dag);"
                    "INSERT INTO alembic_version VALUES ('pg0001');"
                    "INSERT INTO dag SELECT 'dag_' || i FROM generate_series(1, 12) i;"
                    "INSERT INTO dag_run (dag_id) SELECT 'dag_' || (i % 12 + 1) FROM generate_series(1, 90) i;"
                )
            db.commit()
        yield url
    finally:
        subprocess.run(_as_postgres([*pg_ctl, "-m", "fast", "stop"]), capture_output=True, timeout=60, check=False)
        shutil.rmtree(home, ignore_errors=True)


def _databases(url: URL) -> set[str]:
    from dag_suite.maintenance.postgres_backup import connect

    with contextlib.closing(connect(url, "postgres")) as db, db.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database")
        return {row[0] for row in cursor.fetchall()}


def test_postgres_backup_restores_into_a_scratch_database_that_is_dropped_afterwards(postgres_url, tmp_path):
    from dag_suite.maintenance.backups import BackupVerificationFailed
    from dag_suite.maintenance.metadata_backup import take_backup, verify_backup

    backup = take_backup(postgres_url, tmp_path)
    assert backup["backend"] == "postgresql" and Path(backup["path"]).read_bytes()[:5] == b"PGDMP"
    assert backup["expected"] == {
        "counts": {"alembic_version": 1, "dag": 12, "dag_run": 90},
        "alembic_version": ["pg0001"],
    }

    verified = verify_backup(postgres_url, backup)

    assert verified["counts"] == backup["expected"]["counts"]
    assert verified["alembic_version"] == ["pg0001"]
    assert verified["scratch_database"].startswith("airflow_restore_check_")
    assert _databases(postgres_url) == {"postgres", "template0", "template1", "airflow"}

    truncated = take_backup(postgres_url, tmp_path)
    path = Path(truncated["path"])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BackupVerificationFailed, match="cannot be restored"):
        verify_backup(postgres_url, truncated)
    assert _databases(postgres_url) == {"postgres", "template0", "template1", "airflow"}, "scratch DB left behind"


def test_the_backup_dag_backs_up_postgres_when_the_metadata_db_connection_points_there(
    dagbag, data_dir, postgres_url, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_METADATA_DB", postgres_url.render_as_string(hide_password=False))

    run = run_dag(dagbag, "maintenance_db_backup", keep_backups=1)

    assert task_states(run) == dict.fromkeys(["backup_metadata_db", "verify_restore", "prune_old_backups"], "success")
    assert xcom(run, "backup_metadata_db")["backend"] == "postgresql"
    assert xcom(run, "verify_restore")["counts"]["dag_run"] == 90
    assert [p.suffix for p in (data_dir / "backups" / "metadata_db").iterdir()] == [".dump"]
