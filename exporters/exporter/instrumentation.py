"""Runs every collector under a guard: one failing collector is reported, not allowed to fail the scrape."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)


class NamedCollector(Protocol):
    name: str

    def collect(self) -> Iterator[Metric]: ...


@dataclass(frozen=True)
class CollectorRun:
    """One collector's outcome in one scrape: its metrics only if it succeeded."""

    name: str
    ok: bool
    seconds: float
    metrics: list[Metric] = field(default_factory=list)


def run_guarded(collector: NamedCollector, clock: Callable[[], float] = time.perf_counter) -> CollectorRun:
    started = clock()
    try:
        # Materialise first, so a collector failing half-way yields nothing partial.
        metrics = list(collector.collect())
    except Exception:
        log.exception("collector %s failed", collector.name)
        return CollectorRun(collector.name, False, clock() - started)
    return CollectorRun(collector.name, True, clock() - started, metrics)


def status_families(runs: Iterable[CollectorRun]) -> Iterator[Metric]:
    """airflow_exporter_collector_success and _duration_seconds, one series per collector."""
    success = GaugeMetricFamily(
        "airflow_exporter_collector_success", "1 if the collector's last run succeeded.", labels=["collector"]
    )
    duration = GaugeMetricFamily(
        "airflow_exporter_collector_duration_seconds",
        "Duration of the collector's last run (DB queries and processing).",
        labels=["collector"],
    )
    for run in runs:
        success.add_metric([run.name], 1.0 if run.ok else 0.0)
        duration.add_metric([run.name], run.seconds)
    yield success
    yield duration


class GuardedCollectors:
    """A prometheus_client collector running others in turn, each guarded and timed, with no deadline.

    The served exporter uses scrape.BoundedScrape, which adds a deadline, a snapshot cache and a series
    budget on top of the same guard; this plain form suits tests and the benchmark's naive baseline.
    """

    def __init__(self, collectors: Sequence[NamedCollector], clock: Callable[[], float] = time.perf_counter):
        self._collectors = list(collectors)
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        runs = [run_guarded(collector, self._clock) for collector in self._collectors]
        for run in runs:
            yield from run.metrics
        yield from status_families(runs)
