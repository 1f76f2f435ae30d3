"""Extract: the day's landing files, as the upstream systems deliver them.

Customers (JSON) and orders (CSV) are files the shop system drops; here the generator plays that system.
Exchange rates come over HTTP from the source service (`source_api` connection) through Airflow's HttpHook,
with a timeout and a few quick retries on transient errors (connection failures, timeouts, 5xx, 429); a
4xx is not retried. Each `bad_data` switch delivers data a quality check must stop (see quality.py).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException

from dag_suite.connections import SOURCE_API
from dag_suite.etl import landing
from dag_suite.etl.generator import generate_day

log = logging.getLogger(__name__)

RATES_ENDPOINT = "v1/exchange-rates"
HTTP_TIMEOUT_SECONDS = 10.0
HTTP_ATTEMPTS = 3


class SourceApiError(RuntimeError):
    """The source service could not be reached or kept failing; the message names the status."""


def extract_customers(ds: str, *, bad_data: bool = False) -> Path:
    customers = generate_day(ds).customers
    if bad_data:  # a truncated snapshot: most of the day's orders now point at customers it lacks
        customers = customers[::3]
        log.warning("demo fault bad_data: the customers file for %s keeps %d customers", ds, len(customers))
    path = landing.write_json(landing.landing_dir(ds) / landing.CUSTOMERS_FILE, customers)
    log.info("landed %d customers for %s in %s", len(customers), ds, path)
    return path


def extract_orders(ds: str, *, bad_data: bool = False) -> Path:
    orders = generate_day(ds).orders
    if bad_data:  # yesterday's orders delivered again under today's name: stale data
        orders = [dict(row, ordered_at=_day_earlier(row["ordered_at"])) for row in orders]
        log.warning("demo fault bad_data: the orders file for %s holds the previous day's orders", ds)
    path = landing.write_orders_csv(landing.landing_dir(ds) / landing.ORDERS_FILE, orders)
    log.info("landed %d orders for %s in %s", len(orders), ds, path)
    return path


def extract_exchange_rates(ds: str, *, bad_data: bool = False, conn_id: str = SOURCE_API) -> Path:
    payload = fetch_exchange_rates(ds, conn_id=conn_id)
    if bad_data:  # a partial rates table: every EUR order becomes an unknown currency
        payload["rates"].pop("EUR", None)
        log.warning("demo fault bad_data: the exchange rates for %s lack EUR", ds)
    return landing.write_json(landing.landing_dir(ds) / landing.RATES_FILE, payload)


def _day_earlier(timestamp: str) -> str:
    try:
        return (datetime.fromisoformat(timestamp) - timedelta(days=1)).isoformat()
    except ValueError:
        return timestamp  # already unparseable: the transform quarantines it


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    # HttpHook.check_response raises AirflowException("<status>:<reason>")
    return isinstance(exc, AirflowException) and (str(exc).startswith("5") or str(exc).startswith("429"))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AirflowException) and str(exc)[:3].isdigit():
        status, _, reason = str(exc).partition(":")
        return f"HTTP {status} {reason}".strip()
    return f"{type(exc).__name__}: {exc}"


def _attempts(hook: HttpHook) -> int:
    return hook._retry_obj.statistics.get("attempt_number", 1)  # the Retrying object run_with_advanced_retry made


def fetch_exchange_rates(
    ds: str, *, conn_id: str = SOURCE_API, timeout: float = HTTP_TIMEOUT_SECONDS, attempts: int = HTTP_ATTEMPTS
) -> dict[str, Any]:
    """GET /v1/exchange-rates?date=<ds> from the source service; SourceApiError naming the status otherwise."""
    try:
        BaseHook.get_connection(conn_id)
    except Exception as exc:  # the Task SDK raises its own "not found" type
        raise SourceApiError(
            f"connection {conn_id!r} is not defined: set AIRFLOW_CONN_{conn_id.upper()}='http://127.0.0.1:PORT' "
            "(`python -m local_stack source-api --port PORT` serves it) or add it under Admin > Connections"
        ) from exc
    hook = HttpHook(method="GET", http_conn_id=conn_id)
    retry_args = {
        "stop": tenacity.stop_after_attempt(attempts),
        "wait": tenacity.wait_exponential(multiplier=0.5, max=4),
        "retry": tenacity.retry_if_exception(_transient),
        "before_sleep": lambda state: log.warning(
            "source API attempt %d failed (%s), retrying", state.attempt_number, _describe(state.outcome.exception())
        ),
        "reraise": True,
    }
    started = time.monotonic()
    try:
        response = hook.run_with_advanced_retry(
            retry_args, endpoint=RATES_ENDPOINT, data={"date": ds}, extra_options={"timeout": timeout}
        )
    except (AirflowException, requests.RequestException) as exc:
        raise SourceApiError(
            f"GET /{RATES_ENDPOINT}?date={ds} on connection {conn_id!r} failed after {_attempts(hook)} attempt(s): "
            f"{_describe(exc)}"
        ) from exc
    elapsed_ms = round((time.monotonic() - started) * 1000)
    payload = response.json()
    log.info(
        "fetched %d exchange rates for %s from %s in %d ms, %d attempt(s)",
        len(payload["rates"]),
        ds,
        conn_id,
        elapsed_ms,
        _attempts(hook),
    )
    return {**payload, "fetched_in_ms": elapsed_ms, "attempts": _attempts(hook)}
