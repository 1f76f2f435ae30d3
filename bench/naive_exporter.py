"""The benchmark's baseline: our metric families computed as community exporters do, by all-time GROUP BYs.

Every history query here reads all of dag_run or task_instance on every scrape, so its cost grows with
the history rather than with the workload. Family names, labels and buckets are ours; the liveness
collectors (airflow_up, component heartbeats) never touch history and are ours, unchanged.
Serve it with `python -m bench.naive_exporter --port P --db-url URL`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from wsgiref.simple_server import make_server

from airflow_obs.exporter.accumulators import RUN_DURATION_BUCKETS, SCHEDULE_DELAY_BUCKETS, TASK_DURATION_BUCKETS
from airflow_obs.exporter.app import make_app
from airflow_obs.exporter.collectors.components import ComponentHeartbeatCollector
from airflow_obs.exporter.collectors.health import MetadataDBHealthCollector
from airflow_obs.exporter.database import make_engine
from airflow_obs.exporter.instrumentation import GuardedCollectors
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler
from sqlalchemy import Engine, text

LIVE_TI_STATES = ("scheduled", "queued", "running", "up_for_retry", "deferred")
SLOT_STATES = ("running", "queued", "scheduled", "deferred")
FINISHED_TI_STATES = ("success", "failed", "skipped", "upstream_failed", "removed")


def _rows(engine: Engine, sql: str) -> list:
    with engine.connect() as connection:
        return connection.execute(text(sql)).all()


def _histogram_sql(table: str, labels: str, seconds: str, buckets: Sequence[float], where: str) -> str:
    """count, sum and cumulative bucket counts of `seconds` per `labels`, over every row of `table`."""
    cumulative = ", ".join(f"count(*) FILTER (WHERE {seconds} <= {bound})" for bound in buckets)
    return f"SELECT {labels}, count(*), sum({seconds}), {cumulative} FROM {table} WHERE {where} GROUP BY {labels}"


def _histogram(name: str, doc: str, labels: list[str], buckets: Sequence[float], rows) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    width = len(labels)
    for row in rows:
        count, total, cumulative = row[width], row[width + 1], row[width + 2 :]
        points = [(str(float(bound)), float(n)) for bound, n in zip(buckets, cumulative, strict=True)]
        family.add_metric([str(v) for v in row[:width]], points + [("+Inf", float(count))], float(total or 0.0))
    return family


class NaiveDagCollector:
    """airflow_dag_info, airflow_dag_paused and the import-error families, tags aggregated in SQL."""

    name = "naive_dags"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        dags = _rows(
            self._engine,
            "SELECT d.dag_id, d.is_paused, d.owners, string_agg(t.name, ',' ORDER BY t.name) FROM dag d "
            "LEFT JOIN dag_tag t ON t.dag_id = d.dag_id WHERE NOT d.is_stale GROUP BY d.dag_id, d.is_paused, d.owners",
        )
        errors = _rows(self._engine, "SELECT filename, count(*) FROM import_error GROUP BY filename")
        info = GaugeMetricFamily("airflow_dag_info", "Always 1.", labels=["dag_id", "owner", "team", "tags"])
        paused = GaugeMetricFamily("airflow_dag_paused", "1 if the DAG is paused.", labels=["dag_id"])
        for dag_id, is_paused, owners, tags in dags:
            team = next((t.removeprefix("team:") for t in (tags or "").split(",") if t.startswith("team:")), "")
            info.add_metric([dag_id, owners or "", team, tags or ""], 1.0)
            paused.add_metric([dag_id], float(is_paused))
        files = GaugeMetricFamily("airflow_dag_import_errors", "Import errors per file.", labels=["file"])
        for filename, count in errors:
            files.add_metric([filename or ""], float(count))
        yield from (info, paused, files)
        yield GaugeMetricFamily("airflow_dag_import_error_files", "Broken DAG files.", value=float(len(errors)))


class NaiveDagRunCollector:
    """Run counts, latest outcome, last success, durations, delays and baselines, each over all of dag_run."""

    name = "naive_dag_runs"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        counts = _rows(self._engine, "SELECT dag_id, state, count(*), min(start_date) FROM dag_run GROUP BY 1, 2")
        latest = _rows(
            self._engine,
            "SELECT r.dag_id, r.state, r.end_date FROM dag_run r JOIN (SELECT dag_id, max(logical_date) AS latest "
            "FROM dag_run WHERE state IN ('success', 'failed') GROUP BY dag_id) l "
            "ON r.dag_id = l.dag_id AND r.logical_date = l.latest",
        )
        success = _rows(self._engine, "SELECT dag_id, max(end_date) FROM dag_run WHERE state = 'success' GROUP BY 1")
        took = "extract(epoch FROM end_date - start_date)"
        finished = "state IN ('success', 'failed') AND end_date IS NOT NULL AND start_date IS NOT NULL"
        durations = _rows(
            self._engine, _histogram_sql("dag_run", "dag_id, state", took, RUN_DURATION_BUCKETS, finished)
        )
        late = "extract(epoch FROM start_date - run_after)"
        delays = _rows(
            self._engine,
            _histogram_sql(
                "dag_run", "dag_id", late, SCHEDULE_DELAY_BUCKETS, "run_type = 'scheduled' AND start_date IS NOT NULL"
            ),
        )
        baselines = _rows(
            self._engine,
            f"SELECT dag_id, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY {took}), "
            f"percentile_cont(0.95) WITHIN GROUP (ORDER BY {took}) FROM dag_run WHERE state = 'success' GROUP BY 1",
        )
        active = GaugeMetricFamily("airflow_dag_runs_active", "Running or queued runs.", labels=["dag_id", "state"])
        oldest = GaugeMetricFamily("airflow_dag_run_oldest_running_age_seconds", "Oldest running.", labels=["dag_id"])
        completed = CounterMetricFamily("airflow_dag_runs_completed", "Finished runs.", labels=["dag_id", "state"])
        for dag_id, state, count, started in counts:
            if state in ("running", "queued"):
                active.add_metric([dag_id, state], float(count))
                if state == "running" and started is not None:
                    oldest.add_metric([dag_id], max(0.0, now - started.timestamp()))
            elif state in ("success", "failed"):
                completed.add_metric([dag_id, state], float(count))
        failed = GaugeMetricFamily("airflow_dag_last_run_failed", "Latest run failed.", labels=["dag_id"])
        ended = GaugeMetricFamily("airflow_dag_last_run_end_timestamp_seconds", "Latest run end.", labels=["dag_id"])
        for dag_id, state, end in latest:
            failed.add_metric([dag_id], 1.0 if state == "failed" else 0.0)
            if end is not None:
                ended.add_metric([dag_id], end.timestamp())
        last_ok = GaugeMetricFamily("airflow_dag_last_success_timestamp_seconds", "Last success.", labels=["dag_id"])
        for dag_id, end in success:
            if end is not None:
                last_ok.add_metric([dag_id], end.timestamp())
        yield from (active, oldest, completed, failed, ended, last_ok)
        yield _histogram(
            "airflow_dag_run_duration_seconds", "All history.", ["dag_id", "state"], RUN_DURATION_BUCKETS, durations
        )
        yield _histogram(
            "airflow_dag_run_schedule_delay_seconds", "All history.", ["dag_id"], SCHEDULE_DELAY_BUCKETS, delays
        )
        p50 = GaugeMetricFamily("airflow_dag_run_duration_baseline_p50_seconds", "All history.", labels=["dag_id"])
        p95 = GaugeMetricFamily("airflow_dag_run_duration_baseline_p95_seconds", "All history.", labels=["dag_id"])
        samples = GaugeMetricFamily("airflow_dag_run_duration_baseline_samples", "All history.", labels=["dag_id"])
        for dag_id, count, median, high in baselines:
            p50.add_metric([dag_id], float(median or 0.0))
            p95.add_metric([dag_id], float(high or 0.0))
            samples.add_metric([dag_id], float(count))
        yield from (p50, p95, samples)


class NaiveTaskInstanceCollector:
    """Live and finished TI counts, retries and durations, from GROUP BYs over all of task_instance."""

    name = "naive_task_instances"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        # One pass over history, grouped by everything the families below need (the community exporters' shape).
        groups = _rows(
            self._engine,
            "SELECT dag_id, task_id, state, pool, queue, count(*), sum(greatest(try_number - 1, 0)), "
            "min(queued_dttm), min(start_date) FROM task_instance GROUP BY 1, 2, 3, 4, 5",
        )
        durations = _rows(
            self._engine,
            _histogram_sql(
                "task_instance",
                "dag_id, state",
                "duration",
                TASK_DURATION_BUCKETS,
                f"state IN {FINISHED_TI_STATES} AND duration IS NOT NULL",
            ),
        )
        live: dict[tuple[str, str, str], float] = {}
        queued_since: dict[tuple[str, str], float] = {}
        running_since: dict[tuple[str, str], float] = {}
        finished = CounterMetricFamily(
            "airflow_task_instances_finished", "All history.", labels=["dag_id", "task_id", "state"]
        )
        retries: dict[tuple[str, str], float] = {}
        for dag_id, task_id, state, pool, queue, count, extra_tries, queued, started in groups:
            retries[dag_id, task_id] = retries.get((dag_id, task_id), 0.0) + float(extra_tries or 0)
            if state in LIVE_TI_STATES:
                key = (state, pool, queue or "")
                live[key] = live.get(key, 0.0) + count
                if state == "queued" and queued is not None:
                    queued_since[pool, queue or ""] = min(
                        queued.timestamp(), queued_since.get((pool, queue or ""), now)
                    )
                if state == "running" and started is not None:
                    running_since[dag_id, task_id] = min(started.timestamp(), running_since.get((dag_id, task_id), now))
            elif state in FINISHED_TI_STATES:
                finished.add_metric([dag_id, task_id, state], float(count))
        counts = GaugeMetricFamily("airflow_task_instances", "Live TIs.", labels=["state", "pool", "queue"])
        for labels, count in sorted(live.items()):
            counts.add_metric(list(labels), count)
        oldest_queued = GaugeMetricFamily(
            "airflow_task_instance_oldest_queued_age_seconds", "Oldest queued.", labels=["pool", "queue"]
        )
        for labels, since in sorted(queued_since.items()):
            oldest_queued.add_metric(list(labels), max(0.0, now - since))
        oldest_running = GaugeMetricFamily(
            "airflow_task_instance_oldest_running_age_seconds", "Oldest running.", labels=["dag_id", "task_id"]
        )
        for labels, since in sorted(running_since.items()):
            oldest_running.add_metric(list(labels), max(0.0, now - since))
        retried = CounterMetricFamily("airflow_task_instance_retries", "All history.", labels=["dag_id", "task_id"])
        for labels, count in sorted(retries.items()):
            retried.add_metric(list(labels), count)
        yield from (counts, oldest_queued, oldest_running, finished, retried)
        yield _histogram(
            "airflow_task_instance_duration_seconds",
            "All history.",
            ["dag_id", "state"],
            TASK_DURATION_BUCKETS,
            durations,
        )


class NaivePoolCollector:
    """airflow_pool_slots, the slots in use counted by grouping all of task_instance by pool and state."""

    name = "naive_pools"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        pools = _rows(self._engine, "SELECT pool, slots, include_deferred FROM slot_pool")
        used = {
            (pool, state): float(slots or 0)
            for pool, state, slots in _rows(
                self._engine, "SELECT pool, state, sum(pool_slots) FROM task_instance GROUP BY pool, state"
            )
        }
        family = GaugeMetricFamily("airflow_pool_slots", "Slots by state.", labels=["pool", "state"])
        for pool, slots, include_deferred in sorted(pools):
            total = float("inf") if slots == -1 else float(slots)
            held = used.get((pool, "running"), 0.0) + used.get((pool, "queued"), 0.0)
            held += used.get((pool, "deferred"), 0.0) if include_deferred else 0.0
            family.add_metric([pool, "total"], total)
            family.add_metric([pool, "open"], max(0.0, total - held))
            for state in SLOT_STATES:
                family.add_metric([pool, state], used.get((pool, state), 0.0))
        yield family


class NaiveDeadlineCollector:
    """airflow_dag_deadline_misses_total: every missed deadline ever, counted per DAG on each scrape."""

    name = "naive_deadlines"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        rows = _rows(
            self._engine,
            "SELECT r.dag_id, count(*) FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id WHERE d.missed GROUP BY 1",
        )
        misses = CounterMetricFamily("airflow_dag_deadline_misses", "All history.", labels=["dag_id"])
        for dag_id, count in rows:
            misses.add_metric([dag_id], float(count))
        yield misses


def build_registry(db_url: str) -> tuple[CollectorRegistry, MetadataDBHealthCollector]:
    """A private registry of the naive collectors, guarded and timed like ours (with no deadline or budget)."""
    # Like the community exporter, the baseline reads through Airflow's models: imported at start, not in a scrape.
    from airflow.models import import_all_models

    import_all_models()
    engine = make_engine(db_url)
    health = MetadataDBHealthCollector(engine)
    history = (NaiveDagRunCollector, NaivePoolCollector, NaiveTaskInstanceCollector, NaiveDeadlineCollector)
    collectors = [health, ComponentHeartbeatCollector(engine), NaiveDagCollector(engine)]
    collectors += [kind(engine) for kind in history]
    registry = CollectorRegistry()
    registry.register(GuardedCollectors(collectors))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry, health


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db-url", required=True)
    args = parser.parse_args(argv)
    registry, health = build_registry(args.db_url)
    app = make_app(registry, is_healthy=health.check)
    httpd = make_server(args.host, args.port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    print(f"[naive-exporter] serving http://{args.host}:{args.port}/metrics", flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
