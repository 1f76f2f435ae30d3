"""Fixtures the unit tests of one subject share across files: the compose file (test_compose*.py), and a real
Alertmanager with the committed routing and templates delivering to captures, per module (test_alertmanager_*.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.running_alertmanager import RunningAlertmanager, running_alertmanager
from tests.unit.compose_file import load_compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAlertmanager]:
    with running_alertmanager(tmp_path_factory.mktemp("alertmanager")) as running:
        yield running
