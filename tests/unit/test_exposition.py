"""The exporter's fast text renderer gives exactly the bytes prometheus_client's generate_latest gives."""

from __future__ import annotations

import gzip
import math
from wsgiref.util import setup_testing_defaults

import pytest
from airflow_obs.exporter.app import make_app
from airflow_obs.exporter.exposition import render_text
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
)

HOSTILE = ['quote"d', "back\\slash", "new\nline", "ünïcødé_日本", "tab\tand space", ""]


class Fixed:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return self.metrics


def families() -> list[Metric]:
    gauge = GaugeMetricFamily("airflow_test_gauge", 'help with \\ and\nnewline and "quotes"', labels=["dag_id", "b"])
    for index, value in enumerate(HOSTILE):
        gauge.add_metric([value, str(index)], [0.0, 1.5, 1e21, -2.0, math.inf, -math.inf][index])
    nan = GaugeMetricFamily("airflow_test_nan", "NaN", value=math.nan)
    counter = CounterMetricFamily("airflow_test_events", "events", labels=["state"])
    counter.add_metric(["success"], 3)
    created = CounterMetricFamily("airflow_test_created", "with _created", labels=["x"], created=1700000000.0)
    created.add_metric(["a"], 1, created=1700000000.0)
    histogram = HistogramMetricFamily("airflow_test_seconds", "histogram", labels=["dag_id"])
    histogram.add_metric([HOSTILE[0]], [("1", 1.0), ("10", 4.0), ("+Inf", 5.0)], sum_value=12.5)
    summary = SummaryMetricFamily("airflow_test_summary", "summary", count_value=2, sum_value=3.0)
    info = InfoMetricFamily("airflow_test_build", "info", value={"version": "3.3.2"})
    stateset = StateSetMetricFamily("airflow_test_state", "stateset", value={"a": True, "b": False})
    stamped = GaugeMetricFamily("airflow_test_stamped", "timestamped", labels=["x"])
    stamped.add_metric(["y"], 1.0, timestamp=1700000000.123)
    utf8 = GaugeMetricFamily("airflow.test.utf8", "a UTF-8 metric name", labels=["a.b"])
    utf8.add_metric(["v"], 1.0)
    return [gauge, nan, counter, created, histogram, summary, info, stateset, stamped, utf8]


@pytest.mark.parametrize("metric", families(), ids=lambda metric: metric.name)
def test_each_kind_of_family_renders_exactly_as_prometheus_client_does(metric: Metric) -> None:
    assert render_text([metric]) == generate_latest(Fixed([metric]))


def test_a_whole_scrape_renders_exactly_as_prometheus_client_does() -> None:
    metrics = families()
    assert render_text(metrics) == generate_latest(Fixed(metrics))


def call_metrics(app, accept_encoding: str | None) -> tuple[dict[str, str], bytes]:
    environ = {"PATH_INFO": "/metrics"}
    if accept_encoding:
        environ["HTTP_ACCEPT_ENCODING"] = accept_encoding
    setup_testing_defaults(environ)
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured.update(headers)

    return captured, b"".join(app(environ, start_response))


def test_metrics_is_gzipped_only_for_a_scraper_that_accepts_it() -> None:
    registry = CollectorRegistry()
    registry.register(Fixed(families()))
    app = make_app(registry, is_healthy=lambda: True)

    plain_headers, plain = call_metrics(app, None)
    gzip_headers, compressed = call_metrics(app, "gzip, deflate")

    assert plain_headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in plain_headers
    assert gzip_headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(compressed) == plain == generate_latest(registry)
