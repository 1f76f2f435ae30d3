"""A throwaway PostgreSQL 15 cluster for tests and benchmarks: created in a folder, stopped by PID, never reused.

The stack's own cluster (local_stack.postgres) persists in .stack/; this one lives only as long as the
`with` block, listens on 127.0.0.1 with trust auth, and runs with fsync off because its data is disposable.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from local_stack.processes import stop_process
from local_stack.programs import POSTGRES_BIN

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


class ThrowawayPostgresError(RuntimeError):
    """The throwaway cluster could not be created or started."""


def _as_postgres() -> dict[str, str]:
    """Popen arguments that run a program as the postgres user when we are root (initdb and postgres refuse root).

    Switching user in the child itself, not through runuser, keeps the postmaster's PID our Popen's PID:
    runuser would neither forward the stop signal nor take postgres down with it.
    """
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _initdb(data: Path) -> None:
    result = subprocess.run(
        [str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"],
        **_as_postgres(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise ThrowawayPostgresError(f"initdb {data} failed (exit {result.returncode}): {result.stderr[-400:]}")


def _wait_until_accepting(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ThrowawayPostgresError(f"postgres exited with {server.returncode}: {log.read_text()[-600:]}")
        try:
            psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            time.sleep(0.1)
    raise ThrowawayPostgresError(f"postgres did not accept connections within {START_TIMEOUT_SECONDS:.0f}s")


def stop(server: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: abort transactions, exit at once), then SIGKILL if it has not stopped in time."""
    stop_process(server, signal.SIGINT, STOP_TIMEOUT_SECONDS)


def start(folder: Path, port: int, settings: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """Start the cluster in `folder` (initdb on first use) on 127.0.0.1:port; the caller must stop() it.

    Every parent of `folder` must be traversable by the postgres user when running as root.
    """
    data, sock, log = folder / "data", folder / "sock", folder / "postgres.log"
    for path in (folder, sock):
        path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        for path in (folder, sock):
            shutil.chown(path, "postgres", "postgres")
    if not (data / "PG_VERSION").exists():
        _initdb(data)
    options = ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"]
    for setting in settings:
        options += ["-c", setting]
    with log.open("ab") as log_file:
        server = subprocess.Popen(
            [str(POSTGRES_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sock), *options],
            **_as_postgres(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_accepting(port, server, log)
    except BaseException:
        stop(server)
        raise
    return server


def create_database(port: int, name: str) -> str:
    """Create database `name` (owned by postgres) and return its SQLAlchemy URL."""
    connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=3)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{name}"


def make_folder() -> Path:
    """A fresh folder the postgres user can reach (pytest's tmp_path is private to root)."""
    return Path(tempfile.mkdtemp(prefix="airflow-obs-postgres-"))


def create_airflow_database(port: int, name: str) -> str:
    """A database holding Airflow's tables and indexes, created from its models; returns its SQLAlchemy URL."""
    from airflow.models import import_all_models
    from airflow.models.base import Base
    from sqlalchemy import create_engine

    url = create_database(port, name)
    import_all_models()
    engine = create_engine(url)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
    return url


@contextmanager
def throwaway_cluster(folder: Path | None = None, settings: tuple[str, ...] = ()) -> Iterator[int]:
    """A running cluster for the block's duration; yields its port. Stopped by PID even if the block fails.

    Without a folder, one is made with make_folder() and removed afterwards.
    """
    own_folder = folder is None
    folder = folder or make_folder()
    port = _free_loopback_port()
    try:
        server = start(folder, port, settings)
        try:
            yield port
        finally:
            stop(server)
    finally:
        if own_folder:
            shutil.rmtree(folder, ignore_errors=True)
