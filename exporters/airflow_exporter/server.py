"""Builds the exporter from its collectors and serves it over HTTP on loopback."""

from __future__ import annotations

import logging
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from airflow_exporter.app import make_app
from airflow_exporter.collectors.components import ComponentHeartbeatCollector
from airflow_exporter.collectors.dag_runs import DagRunCollector
from airflow_exporter.collectors.dags import DagCollector
from airflow_exporter.collectors.health import MetadataDBHealthCollector
from airflow_exporter.database import make_engine, metadata_db_url
from airflow_exporter.instrumentation import GuardedCollectors

log = logging.getLogger(__name__)


def build_registry(db_url: str) -> tuple[CollectorRegistry, MetadataDBHealthCollector]:
    """A private registry with the exporter's collectors; tests build their own the same way."""
    registry = CollectorRegistry()
    engine = make_engine(db_url)
    health = MetadataDBHealthCollector(engine)
    registry.register(
        GuardedCollectors([health, ComponentHeartbeatCollector(engine), DagCollector(engine), DagRunCollector(engine)])
    )
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry, health


def serve(host: str, port: int, db_url: str | None = None) -> None:
    """Serve /metrics and /healthz until interrupted."""
    registry, health = build_registry(db_url or metadata_db_url())
    app = make_app(registry, is_healthy=health.check)
    httpd = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    print(f"[exporter] serving http://{host}:{port}/metrics and /healthz", flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
