"""The orders source service: the upstream shop's HTTP API that the ETL extracts from, standard library only.

Endpoints (JSON, from the same deterministic generator as the landing files):
    GET /healthz                          200 "ok"
    GET /v1/customers?date=YYYY-MM-DD     {"date", "count", "customers": [...]}
    GET /v1/orders?date=YYYY-MM-DD        {"date", "count", "orders": [...]} (bad rows included, as delivered)
    GET /v1/exchange-rates?date=...       {"date", "base": "USD", "rates": {"EUR": 1.05, ...}} (USD per unit)
Every /v1 request waits `latency_ms` and then fails with 503 at `error_rate` (0..1), so API latency and errors
can be shown and alerted on. Both are server options and can be overridden per request with the query
parameters `latency_ms` and `error_rate`. Errors are JSON `{"error": "..."}`: 400 names the bad value.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import date
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dag_suite.etl.generator import exchange_rates, generate_day, parse_ds

log = logging.getLogger("dag_suite.source_api")

DEFAULT_LATENCY_MS = 50
MAX_LATENCY_MS = 60_000


def _customers(ds: str) -> dict[str, Any]:
    rows = generate_day(ds).customers
    return {"date": ds, "count": len(rows), "customers": rows}


def _orders(ds: str) -> dict[str, Any]:
    rows = generate_day(ds).orders
    return {"date": ds, "count": len(rows), "orders": rows}


def _rates(ds: str) -> dict[str, Any]:
    return {"date": ds, "base": "USD", "rates": exchange_rates(ds)}


ROUTES: dict[str, Callable[[str], dict[str, Any]]] = {
    "/v1/customers": _customers,
    "/v1/orders": _orders,
    "/v1/exchange-rates": _rates,
}


def _check_options(latency_ms: float, error_rate: float) -> None:
    if not 0 <= latency_ms <= MAX_LATENCY_MS:
        raise ValueError(f"latency_ms={latency_ms!r} is out of range: expected 0..{MAX_LATENCY_MS}")
    if not 0 <= error_rate <= 1:
        raise ValueError(f"error_rate={error_rate!r} is out of range: expected 0..1 (a share of requests)")


def _query_value(query: dict[str, list[str]], name: str, default: str) -> str:
    values = query.get(name)
    return values[-1] if values else default


def _query_date(query: dict[str, list[str]]) -> date:
    raw = _query_value(query, "date", "")
    if not raw:
        raise ValueError("missing query parameter date: expected date=YYYY-MM-DD, e.g. date=2026-11-20")
    return parse_ds(raw)


def _query_number(query: dict[str, list[str]], name: str, default: float) -> float:
    raw = _query_value(query, name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


class SourceApiServer(ThreadingHTTPServer):
    """A threading HTTP server carrying the latency and error-injection options."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, latency_ms: float, error_rate: float, seed: int = 0) -> None:
        _check_options(latency_ms, error_rate)
        self.latency_ms = latency_ms
        self.error_rate = error_rate
        self._rng = random.Random(seed)  # noqa: S311 (seeded: the sequence of injected errors is reproducible)
        self._rng_lock = threading.Lock()
        super().__init__(address, SourceApiHandler)

    def inject_error(self, error_rate: float) -> bool:
        if error_rate <= 0:
            return False
        if error_rate >= 1:
            return True
        with self._rng_lock:
            return self._rng.random() < error_rate


class SourceApiHandler(BaseHTTPRequestHandler):
    server: SourceApiServer
    server_version = "dag-suite-source-api/1.0"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/healthz":
            self._send(HTTPStatus.OK, b"ok", "text/plain; charset=utf-8")
            return
        route = ROUTES.get(url.path)
        if route is None:
            self._error(HTTPStatus.NOT_FOUND, f"no endpoint {url.path}: expected one of /healthz, {', '.join(ROUTES)}")
            return
        try:
            ds = _query_date(query)
            latency_ms = _query_number(query, "latency_ms", self.server.latency_ms)
            error_rate = _query_number(query, "error_rate", self.server.error_rate)
            _check_options(latency_ms, error_rate)
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        time.sleep(latency_ms / 1000)
        if self.server.inject_error(error_rate):
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, f"injected error (error_rate={error_rate:g})")
            return
        self._send(HTTPStatus.OK, json.dumps(route(ds.isoformat())).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = json.dumps({"error": message, "status": status.value}).encode()
        self._send(status, body, "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("[source-api] %s %s", self.address_string(), format % args)


def make_source_api_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    latency_ms: float = DEFAULT_LATENCY_MS,
    error_rate: float = 0.0,
    seed: int = 0,
) -> SourceApiServer:
    """A bound, not yet serving, server (port 0: a free port, see `server.server_address`).

    `seed` fixes which requests an `error_rate` between 0 and 1 fails: the n-th request fails when the
    n-th draw of `random.Random(seed)` is below the rate.
    """
    return SourceApiServer((host, port), latency_ms=latency_ms, error_rate=error_rate, seed=seed)
