"""The orders source service, tested over real HTTP on a loopback port."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from dag_suite.etl.generator import generate_day
from dag_suite.source_api import make_source_api_server

from tests.conftest import REPO_ROOT, free_port


@pytest.fixture
def serve() -> Iterator:
    """Start servers with chosen options; every one is shut down at the end of the test."""
    started = []

    def start(**options) -> str:
        server = make_source_api_server("127.0.0.1", 0, **options)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    try:
        yield start
    finally:
        for server, thread in started:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback http only)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_healthz_answers_ok(serve):
    assert get(serve(latency_ms=0) + "/healthz") == (200, b"ok")


def test_orders_for_a_date_are_the_generator_s_rows_and_the_same_on_every_call(serve):
    base = serve(latency_ms=0)
    status, body = get(base + "/v1/orders?date=2026-11-20")
    assert status == 200
    payload = json.loads(body)
    assert payload["date"] == "2026-11-20"
    assert payload["orders"] == generate_day("2026-11-20").orders
    assert payload["count"] == len(payload["orders"]) > 0
    assert get(base + "/v1/orders?date=2026-11-20")[1] == body
    assert json.loads(get(base + "/v1/orders?date=2026-11-21")[1])["orders"] != payload["orders"]


def test_customers_and_exchange_rates_are_served_for_a_date(serve):
    base = serve(latency_ms=0)
    customers = json.loads(get(base + "/v1/customers?date=2026-11-20")[1])
    assert customers["customers"] == generate_day("2026-11-20").customers
    rates = json.loads(get(base + "/v1/exchange-rates?date=2026-11-20")[1])
    assert rates["base"] == "USD"
    assert rates["rates"]["USD"] == 1.0
    assert set(rates["rates"]) >= {"EUR", "GBP"}


@pytest.mark.parametrize("query", ["date=2026-02-30", "date=20261120", "date=yesterday"])
def test_a_bad_date_is_a_400_naming_the_value_and_the_expected_format(serve, query):
    status, body = get(serve(latency_ms=0) + "/v1/orders?" + query)
    assert status == 400
    error = json.loads(body)["error"]
    assert query.removeprefix("date=") in error
    assert "YYYY-MM-DD" in error


def test_a_missing_date_is_a_400_saying_which_parameter_is_missing(serve):
    status, body = get(serve(latency_ms=0) + "/v1/orders")
    assert status == 400
    assert "date" in json.loads(body)["error"]


def test_an_unknown_path_is_a_404_listing_the_endpoints(serve):
    status, body = get(serve(latency_ms=0) + "/v2/orders?date=2026-11-20")
    assert status == 404
    assert "/v1/orders" in json.loads(body)["error"]


def test_the_latency_option_delays_every_v1_response(serve):
    base = serve(latency_ms=300)
    started = time.monotonic()
    assert get(base + "/v1/exchange-rates?date=2026-11-20")[0] == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert get(base + "/v1/exchange-rates?date=2026-11-20&latency_ms=0")[0] == 200
    assert time.monotonic() - started < 0.3


def test_error_rate_one_fails_every_request_with_a_503_and_zero_fails_none(serve):
    failing = serve(latency_ms=0, error_rate=1.0)
    for _ in range(3):
        status, body = get(failing + "/v1/orders?date=2026-11-20")
        assert status == 503
        assert "injected" in json.loads(body)["error"]
    assert get(failing + "/v1/orders?date=2026-11-20&error_rate=0")[0] == 200
    assert get(failing + "/healthz")[0] == 200


def test_a_partial_error_rate_fails_a_reproducible_share_of_requests(serve):
    def statuses() -> list[int]:
        base = serve(latency_ms=0, error_rate=0.5)
        return [get(base + "/v1/exchange-rates?date=2026-11-20")[0] for _ in range(20)]

    first = statuses()
    assert set(first) == {200, 503}
    assert statuses() == first


@pytest.mark.parametrize("query", ["error_rate=2", "error_rate=lots", "latency_ms=-5"])
def test_out_of_range_options_are_a_400_naming_the_option(serve, query):
    status, body = get(serve(latency_ms=0) + "/v1/orders?date=2026-11-20&" + query)
    assert status == 400
    assert query.split("=")[0] in json.loads(body)["error"]


def test_bad_server_options_are_refused_at_start():
    with pytest.raises(ValueError, match="error_rate"):
        make_source_api_server("127.0.0.1", 0, error_rate=1.5)


@pytest.mark.timeout(60)
def test_the_source_api_prints_its_address_and_stops_cleanly_on_sigterm():
    command = [sys.executable, "-m", "local_stack", "source-api", "--port", str(free_port())]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # the first line is printed once the server is bound
        assert line.startswith("[source-api] listening on http://127.0.0.1:"), line
        assert get(line.split()[-1] + "/healthz") == (200, b"ok")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "[source-api] stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
