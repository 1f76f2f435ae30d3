"""The exporter's WSGI app: /metrics from a private registry, /healthz reflecting whether scrapes work."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from typing import Any

from airflow_obs.exporter.exposition import render_text
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry

StartResponse = Callable[..., Any]
TEXT = [("Content-Type", "text/plain; charset=utf-8")]


def make_app(registry: CollectorRegistry, is_healthy: Callable[[], bool]) -> Callable[..., Iterable[bytes]]:
    """/metrics in the classic text format (gzip when the scraper accepts it, as Prometheus does)."""

    def metrics(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = render_text(registry.collect())
        headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)  # level 1: most of the size gain for a fraction of the CPU
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            healthy = is_healthy()
            start_response("200 OK" if healthy else "503 Service Unavailable", TEXT)
            return [b"ok\n" if healthy else b"metadata database unreachable\n"]
        start_response("404 Not Found", TEXT)
        return [b"not found: try /metrics or /healthz\n"]

    return app
