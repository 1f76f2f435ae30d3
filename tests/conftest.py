"""Shared fixtures: every test gets a private Airflow home, so nothing touches ~/airflow or the dev stack."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port that was free a moment ago on loopback (tests bind 127.0.0.1 only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
