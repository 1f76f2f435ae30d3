"""Shared fixtures: every test gets a private Airflow home, so nothing touches ~/airflow or the dev stack."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Airflow reads its configuration when first imported: point it at a private home before any test
# imports it, so no test touches ~/airflow or the dev stack's .stack/. Subprocess-based tests strip these.
_TEST_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-obs-tests-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_TEST_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_TEST_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW_OBS_DATA_DIR": str(_TEST_AIRFLOW_HOME / "data"),
        "AIRFLOW_CONN_WAREHOUSE": "sqlite://" + quote(str(_TEST_AIRFLOW_HOME / "warehouse.db"), safe=""),
    }
)


def free_port() -> int:
    """A port that was free a moment ago on loopback (tests bind 127.0.0.1 only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free a moment ago: held open together, so the OS cannot hand one out twice."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Migrate the session's private metadata DB (the environment above points Airflow at it)."""
    from airflow.utils import db

    db.resetdb()
