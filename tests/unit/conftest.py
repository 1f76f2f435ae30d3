"""Fixtures the unit tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.trace_helpers import OTLP_VARIABLES


@pytest.fixture
def traces_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private JSONL store, and a tracer and settings built afresh for it (both are per process)."""
    from observability import tracing
    from observability.settings import settings

    path = tmp_path / "traces.jsonl"
    monkeypatch.setenv("AIRFLOW_OBS_TRACES_FILE", str(path))
    for variable in OTLP_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    settings.cache_clear()
    tracing.reset_tracer()
    yield path
    tracing.reset_tracer()
    settings.cache_clear()
