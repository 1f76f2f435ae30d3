"""The served exporter's scrape as a whole: every collector on hostile ids, the series budget, the cache."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

from airflow_obs.exporter.budget import SeriesBudget
from airflow_obs.exporter.collectors.health import MetadataDBHealthCollector
from airflow_obs.exporter.config import ExporterConfig
from airflow_obs.exporter.exposition import render_text
from airflow_obs.exporter.scrape import BoundedScrape
from airflow_obs.exporter.server import build_registry
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from tests.exporter.conftest import seed_dag, seed_run, seed_ti, set_run

HOSTILE_IDS = ['quote"d', "back\\slash", "new\nline", "ünïcødé_日本", "tab\tand space"]
NOW = datetime.now(UTC)


def url_of(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def exporter(engine, **config) -> tuple[CollectorRegistry, BoundedScrape]:
    config = {"snapshot_cache_seconds": 0, "heartbeat_timeout_seconds": 300, **config}
    return build_registry(ExporterConfig(db_url=url_of(engine), **config))


def test_every_collector_gives_promtool_clean_exposition_for_hostile_ids(engine) -> None:
    registry, _ = exporter(engine, per_task_metrics=True, baseline_min_runs=1)
    generate_latest(registry)  # first scrape: the baseline
    for dag_id in HOSTILE_IDS:
        seed_dag(engine, dag_id, owners=dag_id, tags=(f"team:{dag_id}",))
        run = seed_run(engine, dag_id, dag_id, "running", run_after=NOW - timedelta(minutes=5), start=NOW)
        seed_ti(engine, dag_id, dag_id, dag_id, "running", pool=dag_id, queue=dag_id, start_date=NOW)
        seed_ti(engine, dag_id, dag_id, f"{dag_id}_done", "success", duration=3.0)
        seed_ti(engine, dag_id, dag_id, f"{dag_id}_waiting", "queued", pool=dag_id, queued_dttm=NOW)
    generate_latest(registry)
    set_run(engine, run, state="success", end_date=NOW + timedelta(minutes=1))

    exposition = render_text(registry.collect())  # the served renderer, checked by promtool
    check = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, check=False)

    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    value = registry.get_sample_value
    assert value("airflow_up") == 1.0
    for name in ("dags", "dag_runs", "task_instances", "pools", "finished_work", "deadlines", "components"):
        assert value("airflow_exporter_collector_success", {"collector": name}) == 1.0, name
    last = HOSTILE_IDS[-1]
    assert value("airflow_task_instances", {"state": "queued", "pool": last, "queue": "default"}) == 1.0
    assert value("airflow_dag_runs_completed_total", {"dag_id": last, "state": "success"}) == 1.0
    assert value(
        "airflow_task_instances_finished_total", {"dag_id": last, "task_id": f"{last}_done", "state": "success"}
    )


def test_the_series_budget_keeps_families_in_priority_order_and_reports_what_it_dropped(engine) -> None:
    for index in range(30):
        seed_dag(engine, f"dag_{index:02d}")
    budget = 40  # room for the 30 dag_info series, not for all 30 dag_paused ones
    registry, _ = exporter(engine, series_budget=budget)

    families = {family.name: family for family in registry.collect()}

    assert len(families["airflow_dag_info"].samples) == 30
    assert len(families["airflow_dag_paused"].samples) == 10
    # The same ten survive every scrape: the family's own order, cut at the budget.
    assert [s.labels["dag_id"] for s in families["airflow_dag_paused"].samples] == [f"dag_{i:02d}" for i in range(10)]
    dropped = registry.get_sample_value("airflow_exporter_series_dropped", {"metric": "airflow_dag_paused"})
    assert dropped == 20.0
    assert registry.get_sample_value("airflow_exporter_series_budget") == budget
    assert registry.get_sample_value("airflow_up") == 1.0  # the exporter's own series are never cut


class CountingCollector:
    name = "counting"

    def __init__(self) -> None:
        self.runs = 0

    def collect(self):
        self.runs += 1
        yield GaugeMetricFamily("test_runs", "How often the collector ran.", value=float(self.runs))


def test_a_snapshot_is_served_again_within_the_cache_window_and_says_so_in_help(engine) -> None:
    counting = CountingCollector()
    clock = {"now": 100.0}
    scrape = BoundedScrape(
        MetadataDBHealthCollector(engine),
        [counting],
        deadline_seconds=1.5,
        cache_seconds=5,
        budget=SeriesBudget(100),
        clock=lambda: clock["now"],
    )
    registry = CollectorRegistry()
    registry.register(scrape)

    assert registry.get_sample_value("test_runs") == 1.0
    clock["now"] += 4
    assert registry.get_sample_value("test_runs") == 1.0  # cached
    assert registry.get_sample_value("airflow_exporter_snapshot_age_seconds") == 4.0
    clock["now"] += 2
    assert registry.get_sample_value("test_runs") == 2.0  # refreshed after 5 s
    assert "may be up to 5s old" in generate_latest(registry).decode()


class BrokenCollector:
    name = "broken"

    def collect(self):
        raise RuntimeError("a query failed")


def test_one_collector_raising_does_not_hide_the_others(engine) -> None:
    seed_dag(engine, "etl")
    registry, scrape = exporter(engine)
    scrape._collectors.insert(0, BrokenCollector())  # noqa: SLF001 - a fault injected into the real line-up

    value = registry.get_sample_value

    assert value("airflow_exporter_collector_success", {"collector": "broken"}) == 0.0
    assert value("airflow_exporter_collector_success", {"collector": "dags"}) == 1.0
    assert value("airflow_dag_paused", {"dag_id": "etl"}) == 0.0
    assert value("airflow_up") == 1.0
