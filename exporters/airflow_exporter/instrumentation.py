"""Runs every collector under a guard: one failing collector is reported, not allowed to fail the scrape."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)


class NamedCollector(Protocol):
    name: str

    def collect(self) -> Iterator[Metric]: ...


class GuardedCollectors:
    """A prometheus_client collector wrapping others, adding per-collector success and duration gauges."""

    def __init__(self, collectors: Sequence[NamedCollector], clock: Callable[[], float] = time.perf_counter):
        self._collectors = list(collectors)
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        success = GaugeMetricFamily(
            "airflow_exporter_collector_success", "1 if the collector's last run succeeded.", labels=["collector"]
        )
        duration = GaugeMetricFamily(
            "airflow_exporter_collector_duration_seconds",
            "Duration of the collector's last run.",
            labels=["collector"],
        )
        for collector in self._collectors:
            started = self._clock()
            try:
                # Materialise first, so a collector failing half-way yields nothing partial.
                metrics = list(collector.collect())
                ok = True
            except Exception:
                log.exception("collector %s failed", collector.name)
                metrics, ok = [], False
            yield from metrics
            success.add_metric([collector.name], 1.0 if ok else 0.0)
            duration.add_metric([collector.name], self._clock() - started)
        yield success
        yield duration
