"""Shared fixtures: every test gets a private Airflow home, so nothing touches ~/airflow or the dev stack."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

from local_stack.free_ports import free_port, free_ports  # noqa: F401 - the tests' helpers

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


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Migrate the session's private metadata DB (the environment above points Airflow at it)."""
    from airflow.utils import db

    db.resetdb()


# The tracer's environment: a test that writes spans to a private file must not export them anywhere else.
OTLP_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_TRACES_EXPORTER",
    "AIRFLOW__TRACES__OTEL_ON",
)


@pytest.fixture
def traces_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private JSONL span store, and a tracer and settings built afresh for it (both are per process)."""
    from airflow_obs.observability import tracing
    from airflow_obs.observability.settings import settings

    path = tmp_path / "traces.jsonl"
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__TRACES_FILE", str(path))
    for variable in OTLP_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    settings.cache_clear()
    tracing.reset_tracer()
    yield path
    tracing.reset_tracer()
    settings.cache_clear()
