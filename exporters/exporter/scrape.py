"""One scrape, bounded in time: a DB that is down or slow costs at most the deadline, never the scrape.

The DB collectors run on one worker thread. A scrape waits for them up to `deadline_seconds`; past it,
the scrape answers with airflow_up 0 and the exporter's own metrics, and the worker is left to finish
or time out against the DB on its own (there is never more than one in flight). The snapshot a
successful run produces is served again for `cache_seconds`, so several Prometheus servers (or a
dashboard refresh) scraping at once cost one set of queries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from airflow_obs.exporter.budget import SeriesBudget
from airflow_obs.exporter.collectors.health import MetadataDBHealthCollector
from airflow_obs.exporter.instrumentation import CollectorRun, NamedCollector, run_guarded, status_families
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


@dataclass(frozen=True)
class Snapshot:
    taken_at: float  # monotonic clock
    up: bool
    runs: list[CollectorRun]


class BoundedScrape:
    """The registry's one collector: health first, then every DB collector, under a deadline and a budget."""

    def __init__(
        self,
        health: MetadataDBHealthCollector,
        collectors: Sequence[NamedCollector],
        *,
        deadline_seconds: float,
        cache_seconds: float,
        budget: SeriesBudget,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._health = health
        self._collectors = list(collectors)
        self._deadline = deadline_seconds
        self._cache_seconds = cache_seconds
        self._budget = budget
        self._clock = clock
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exporter-db")
        self._lock = threading.Lock()
        self._in_flight: Future[Snapshot] | None = None
        self._snapshot: Snapshot | None = None
        self._timeouts = 0

    def is_healthy(self) -> bool:
        """For /healthz: whether the latest snapshot (taken now if none is fresh) reached the DB."""
        return self._current().up

    def collect(self) -> Iterator[Metric]:
        snapshot = self._current()
        yield GaugeMetricFamily(
            "airflow_up",
            "1 if the Airflow metadata database answered within the scrape deadline, else 0.",
            value=1.0 if snapshot.up else 0.0,
        )
        kept, dropped = self._budget.apply(metric for run in snapshot.runs for metric in run.metrics)
        yield from kept
        yield from status_families(snapshot.runs)
        yield from self._budget.families(dropped)
        yield GaugeMetricFamily(
            "airflow_exporter_snapshot_age_seconds",
            "Age of the DB snapshot this scrape served (0 when it was taken for this scrape).",
            value=max(0.0, self._clock() - snapshot.taken_at),
        )
        yield CounterMetricFamily(
            "airflow_exporter_scrape_deadline_exceeded",
            f"Scrapes answered without DB data because the DB took longer than {self._deadline:g}s.",
            value=float(self._timeouts),
        )

    def _current(self) -> Snapshot:
        with self._lock:
            if self._snapshot and self._clock() - self._snapshot.taken_at < self._cache_seconds:
                return self._snapshot
            if self._in_flight is None or self._in_flight.done():
                # A run that finished after its scrape gave up is stale: its collectors' state is kept
                # (counters lose nothing), but the data is refreshed now.
                self._in_flight = self._worker.submit(self._take)
            try:
                snapshot = self._in_flight.result(timeout=self._deadline)
            except FutureTimeout:
                self._timeouts += 1
                names = [self._health.name, *(collector.name for collector in self._collectors)]
                return Snapshot(self._clock(), False, [CollectorRun(name, False, self._deadline) for name in names])
            self._in_flight = None
            self._snapshot = snapshot if snapshot.up else None  # a failed DB is re-checked on the next scrape
            return snapshot

    def _take(self) -> Snapshot:
        health = run_guarded(self._health)
        up = health.ok and self._health.last_ok
        # Health's own metric (airflow_up) is produced by collect(), which also covers the timeout case.
        runs = [CollectorRun(health.name, health.ok, health.seconds)]
        if up:
            runs += [_with_cache_note(run_guarded(collector), self._cache_seconds) for collector in self._collectors]
        else:
            # No point waiting on each collector's connection attempt: the DB just failed a SELECT 1.
            runs += [CollectorRun(collector.name, False, 0.0) for collector in self._collectors]
        return Snapshot(self._clock(), up, runs)


def _with_cache_note(run: CollectorRun, cache_seconds: float) -> CollectorRun:
    if cache_seconds > 0:
        note = f" Snapshot: may be up to {cache_seconds:g}s old."
        for metric in run.metrics:
            if not metric.documentation.endswith(note):  # a collector may hand back the same family again
                metric.documentation += note
    return run
