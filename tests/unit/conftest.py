"""Fixtures the unit tests of one subject share across files: the compose file (test_compose*.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.compose_file import load_compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]
