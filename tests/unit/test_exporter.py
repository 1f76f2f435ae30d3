"""Tests of the exporter: airflow_up against real databases, the collector guard, and the WSGI app."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from airflow_obs.exporter.app import make_app
from airflow_obs.exporter.collectors.health import MetadataDBHealthCollector
from airflow_obs.exporter.config import ExporterConfig
from airflow_obs.exporter.database import make_engine, read_airflow_settings
from airflow_obs.exporter.instrumentation import GuardedCollectors
from airflow_obs.exporter.server import build_registry as build_exporter_registry
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tests.conftest import free_port

HEALTH = {"collector": "metadata_db_health"}


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def build_registry(url: str):
    """The served exporter's registry with no snapshot cache, so each scrape reads the DB again."""
    return build_exporter_registry(ExporterConfig(db_url=url, snapshot_cache_seconds=0, heartbeat_timeout_seconds=300))


UNREACHABLE = [
    pytest.param(lambda tmp_path: sqlite_url(tmp_path / "no-such-folder" / "airflow.db"), id="sqlite-missing-folder"),
    pytest.param(lambda tmp_path: f"postgresql+psycopg2://u:p@127.0.0.1:{free_port()}/x", id="postgres-closed-port"),
]


class Response:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body


def call(app: Callable[..., Iterable[bytes]], path: str) -> Response:
    """Call a WSGI app the way a server would, with a complete environ."""
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"], captured["headers"] = status, headers

    body = b"".join(app(environ, start_response))
    return Response(captured["status"], captured["headers"], body)


# --- airflow_up -------------------------------------------------------------------------------------------


def test_a_reachable_sqlite_database_reports_airflow_up_and_a_successful_timed_collector(tmp_path: Path) -> None:
    registry, scrape = build_registry(sqlite_url(tmp_path / "x.db"))

    assert registry.get_sample_value("airflow_up") == 1.0
    assert registry.get_sample_value("airflow_exporter_collector_success", HEALTH) == 1.0
    duration = registry.get_sample_value("airflow_exporter_collector_duration_seconds", HEALTH)
    assert duration is not None and duration >= 0.0
    assert scrape.is_healthy() is True


@pytest.mark.parametrize("make_url", UNREACHABLE)
def test_an_unreachable_database_reports_airflow_up_zero_and_the_scrape_still_succeeds(
    tmp_path: Path, make_url: Callable[[Path], str]
) -> None:
    registry, scrape = build_registry(make_url(tmp_path))

    exposition = generate_latest(registry).decode()  # a whole scrape, as Prometheus would do it

    assert "\nairflow_up 0.0\n" in exposition
    assert registry.get_sample_value("airflow_up") == 0.0
    # The health collector turns a dead DB into a value, not into a failed collector...
    assert registry.get_sample_value("airflow_exporter_collector_success", HEALTH) == 1.0
    # ...and the DB collectors are skipped, not left to time out one by one.
    assert registry.get_sample_value("airflow_exporter_collector_success", {"collector": "dag_runs"}) == 0.0
    assert scrape.is_healthy() is False
    assert not (tmp_path / "no-such-folder").exists()


def test_airflow_up_follows_the_database_from_one_scrape_to_the_next(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    registry = CollectorRegistry()
    registry.register(GuardedCollectors([MetadataDBHealthCollector(make_engine(sqlite_url(folder / "x.db")))]))

    assert registry.get_sample_value("airflow_up") == 0.0
    folder.mkdir()
    assert registry.get_sample_value("airflow_up") == 1.0


# --- GuardedCollectors ------------------------------------------------------------------------------------


class GoodCollector:
    name = "good"

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("test_good_value", "A value from a working collector.", value=42.0)


class BrokenCollector:
    """Yields one metric, then fails: the guard must not let the partial metric through."""

    name = "broken"

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("test_partial", "Yielded before the failure.", value=1.0)
        raise RuntimeError("query failed half-way")


def test_a_failing_collector_reports_success_zero_and_the_other_collectors_still_appear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    registry.register(GuardedCollectors([BrokenCollector(), GoodCollector()]))

    exposition = generate_latest(registry).decode()

    assert registry.get_sample_value("airflow_exporter_collector_success", {"collector": "broken"}) == 0.0
    assert registry.get_sample_value("airflow_exporter_collector_success", {"collector": "good"}) == 1.0
    assert registry.get_sample_value("test_good_value") == 42.0
    assert "test_partial" not in exposition
    assert "collector broken failed" in caplog.text


def test_each_collector_duration_is_measured_around_its_own_run_only() -> None:
    ticks = iter([10.0, 10.5, 20.0, 23.0])
    registry = CollectorRegistry()
    registry.register(GuardedCollectors([GoodCollector(), BrokenCollector()], clock=lambda: next(ticks)))

    samples = {
        sample.labels["collector"]: sample.value
        for family in registry.collect()
        if family.name == "airflow_exporter_collector_duration_seconds"
        for sample in family.samples
    }

    assert samples == {"good": 0.5, "broken": 3.0}


# --- WSGI app ---------------------------------------------------------------------------------------------


def test_metrics_serves_the_text_exposition_with_airflow_up(tmp_path: Path) -> None:
    registry, scrape = build_registry(sqlite_url(tmp_path / "x.db"))
    app = make_app(registry, is_healthy=scrape.is_healthy)

    response = call(app, "/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "\nairflow_up 1.0\n" in response.body.decode()
    assert 'airflow_exporter_collector_success{collector="metadata_db_health"} 1.0' in response.body.decode()


def test_healthz_answers_200_ok_when_the_database_answers(tmp_path: Path) -> None:
    registry, scrape = build_registry(sqlite_url(tmp_path / "x.db"))

    response = call(make_app(registry, is_healthy=scrape.is_healthy), "/healthz")

    assert response.status_code == 200
    assert response.body == b"ok\n"


def test_healthz_answers_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    registry, scrape = build_registry(sqlite_url(tmp_path / "no-such-folder" / "x.db"))

    response = call(make_app(registry, is_healthy=scrape.is_healthy), "/healthz")

    assert response.status_code == 503
    assert b"unreachable" in response.body


def test_healthz_reflects_whatever_is_healthy_returns_on_each_request() -> None:
    state = {"healthy": True}
    app = make_app(CollectorRegistry(), is_healthy=lambda: state["healthy"])

    assert call(app, "/healthz").status_code == 200
    state["healthy"] = False
    assert call(app, "/healthz").status_code == 503


@pytest.mark.parametrize("path", ["/", "/metric", "/metrics/extra", "/health"])
def test_an_unknown_path_is_404(path: str) -> None:
    response = call(make_app(CollectorRegistry(), is_healthy=lambda: True), path)

    assert response.status_code == 404
    assert b"/metrics" in response.body


# --- DB URL -----------------------------------------------------------------------------------------------


def test_airflow_settings_are_read_from_airflow_own_configuration_without_importing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////tmp/from-airflow-config.db")
    monkeypatch.setenv("AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT", "123")
    imported_before = "airflow.configuration" in sys.modules

    settings = read_airflow_settings()

    assert settings.sql_alchemy_conn == "sqlite:////tmp/from-airflow-config.db"
    assert settings.task_instance_heartbeat_timeout == 123.0
    assert ("airflow.configuration" in sys.modules) == imported_before  # read by a child process


# --- the command line -------------------------------------------------------------------------------------


def test_the_exporter_command_refuses_a_bad_config_file_at_start_naming_the_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "exporter.yml"
    config.write_text("series_budget: lots\n")
    airflow_obs = Path(sys.prefix) / "bin" / "airflow-obs"

    result = subprocess.run(
        [str(airflow_obs), "exporter", "--config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 2
    assert "series_budget" in result.stderr and "'lots'" in result.stderr and "an integer > 0" in result.stderr
