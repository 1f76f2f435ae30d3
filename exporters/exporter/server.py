"""Builds the exporter from its collectors and serves it over HTTP (loopback by default)."""

from __future__ import annotations

import gc
import importlib.util
import logging
from datetime import timedelta

from airflow_obs.exporter.app import make_app
from airflow_obs.exporter.budget import SeriesBudget
from airflow_obs.exporter.collectors.assets import AssetGraphCollector
from airflow_obs.exporter.collectors.components import ComponentHeartbeatCollector
from airflow_obs.exporter.collectors.dag_runs import DagRunCollector
from airflow_obs.exporter.collectors.dags import DagCollector
from airflow_obs.exporter.collectors.deadlines import DeadlineCollector
from airflow_obs.exporter.collectors.finished_work import FinishedWorkCollector
from airflow_obs.exporter.collectors.health import MetadataDBHealthCollector
from airflow_obs.exporter.collectors.pools import PoolCollector
from airflow_obs.exporter.collectors.task_instances import TaskInstanceCollector
from airflow_obs.exporter.config import ExporterConfig
from airflow_obs.exporter.database import make_engine, read_airflow_settings
from airflow_obs.exporter.http_server import serve_app
from airflow_obs.exporter.instrumentation import NamedCollector
from airflow_obs.exporter.scrape import BoundedScrape
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

log = logging.getLogger(__name__)

# Airflow's default [scheduler] task_instance_heartbeat_timeout, for an exporter installed without Airflow (its own
# image) that is not told the deployment's: heartbeat_timeout_seconds in the config says it.
AIRFLOW_DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 300.0


def db_collectors(engine, config: ExporterConfig, heartbeat_timeout_seconds: float) -> list[NamedCollector]:
    """In priority order: the series budget cuts from the end of this list first."""
    return [
        ComponentHeartbeatCollector(engine),
        DagCollector(engine),
        DagRunCollector(engine),
        PoolCollector(engine),
        TaskInstanceCollector(engine, heartbeat_timeout_seconds=heartbeat_timeout_seconds),
        DeadlineCollector(engine),
        FinishedWorkCollector(
            engine,
            per_task=config.per_task_metrics,
            outcome_window=timedelta(hours=config.outcome_window_hours),
            baseline_window=timedelta(days=config.baseline_window_days),
            baseline_max_runs=config.baseline_max_runs,
            baseline_min_runs=config.baseline_min_runs,
        ),
        # Last: who sits downstream of whom is context for an alert, worth less than any failure or lateness.
        AssetGraphCollector(engine, max_depth=config.downstream_max_depth, max_dags=config.downstream_max_dags),
    ]


def build_registry(config: ExporterConfig) -> tuple[CollectorRegistry, BoundedScrape]:
    """A private registry with the exporter's collectors; tests build their own the same way."""
    db_url, heartbeat_timeout = config.db_url, config.heartbeat_timeout_seconds
    if db_url is not None and heartbeat_timeout is None and importlib.util.find_spec("airflow") is None:
        heartbeat_timeout = AIRFLOW_DEFAULT_HEARTBEAT_TIMEOUT_SECONDS
        log.info("no Airflow here: heartbeats count as lost after Airflow's default %.0fs", heartbeat_timeout)
    if db_url is None or heartbeat_timeout is None:
        airflow = read_airflow_settings()
        db_url = db_url or airflow.sql_alchemy_conn
        heartbeat_timeout = heartbeat_timeout or airflow.task_instance_heartbeat_timeout
    engine = make_engine(db_url)
    scrape = BoundedScrape(
        MetadataDBHealthCollector(engine),
        db_collectors(engine, config, heartbeat_timeout),
        deadline_seconds=config.scrape_deadline_seconds,
        cache_seconds=config.snapshot_cache_seconds,
        budget=SeriesBudget(config.series_budget),
    )
    registry = CollectorRegistry()
    registry.register(scrape)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry, scrape


def serve(config: ExporterConfig, port: int) -> None:
    """Serve /metrics and /healthz until SIGTERM or SIGINT."""
    registry, scrape = build_registry(config)
    # Start-up objects (SQLAlchemy, the HTTP stack) never die: moved out of the collector's generations,
    # the cyclic GC stops re-scanning them, which otherwise adds 100+ ms pauses to some scrapes.
    gc.freeze()
    serve_app(make_app(registry, is_healthy=scrape.is_healthy), config, port)
