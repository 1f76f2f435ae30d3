"""The metrics sink: what each task try and DAG run counts and times through Airflow's Stats, with bounded tags."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from airflow_obs.observability import metrics
from airflow_obs.observability.events import DagRunEvent, TaskEvent

from tests.conftest import REPO_ROOT
from tests.statsd_mapping_matcher import UNMAPPED_METRIC_PREFIX, airflow_metric_registry, load_mappings, map_line
from tests.unit.listener_shapes import api_ti, dag_run, worker_ti


class RecordingStats:
    """Stands in for Airflow's Stats: (kind, name, value, tags) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, dict[str, str]]] = []

    def incr(self, stat: str, count: int = 1, rate: float = 1, *, tags: dict[str, str] | None = None) -> None:
        self.calls.append(("incr", stat, count, dict(tags or {})))

    def timing(self, stat: str, dt: float, *, tags: dict[str, str] | None = None) -> None:
        self.calls.append(("timing", stat, dt, dict(tags or {})))


@pytest.fixture
def stats(monkeypatch: pytest.MonkeyPatch) -> RecordingStats:
    recorder = RecordingStats()
    monkeypatch.setattr(metrics, "Stats", recorder)
    return recorder


def task_event(state: str, **overrides: Any) -> TaskEvent:
    return TaskEvent.from_task_instance(worker_ti(**overrides), state=state)


def test_a_try_that_ends_counts_its_outcome_and_times_its_run_with_bounded_tags(stats: RecordingStats) -> None:
    metrics.record_task_event(task_event("success"))

    tags = {"dag_id": "etl_orders", "task_id": "load", "owner": "data-eng", "team": "data-platform"}
    assert stats.calls == [
        ("incr", "obs.task.finished", 1, {**tags, "state": "success"}),
        ("timing", "obs.task.duration", 42000.0, {**tags, "state": "success"}),
    ]


def test_a_try_up_for_retry_also_counts_a_retry(stats: RecordingStats) -> None:
    metrics.record_task_event(task_event("up_for_retry"))

    assert [(kind, name, tags.get("state")) for kind, name, _, tags in stats.calls] == [
        ("incr", "obs.task.finished", "up_for_retry"),
        ("incr", "obs.task.retries", None),
        ("timing", "obs.task.duration", "up_for_retry"),
    ]


def test_a_started_try_counts_and_times_its_queue_only_when_the_instance_knows_when_it_was_queued(
    stats: RecordingStats,
) -> None:
    metrics.record_task_event(task_event("running"))  # a RuntimeTaskInstance has no queued_dttm
    metrics.record_task_event(TaskEvent.from_task_instance(api_ti(), state="running"))

    assert [(kind, name, value) for kind, name, value, _ in stats.calls] == [
        ("incr", "obs.task.started", 1),
        ("incr", "obs.task.started", 1),
        ("timing", "obs.task.queued_duration", 5000.0),
    ]


def test_dag_runs_count_starts_and_outcomes_and_time_the_finished_ones(stats: RecordingStats) -> None:
    metrics.record_dag_run_event(DagRunEvent.from_dag_run(dag_run("running")))
    metrics.record_dag_run_event(DagRunEvent.from_dag_run(dag_run("failed")))

    tags = {"dag_id": "etl_orders", "run_type": "scheduled", "owner": "data-eng", "team": "data-platform"}
    assert stats.calls == [
        ("incr", "obs.dag_run.started", 1, tags),
        ("incr", "obs.dag_run.finished", 1, {**tags, "state": "failed"}),
        ("timing", "obs.dag_run.duration", 300000.0, {**tags, "state": "failed"}),
    ]


def test_states_that_are_no_outcome_are_not_counted(stats: RecordingStats) -> None:
    metrics.record_task_event(task_event("deferred"))
    metrics.record_dag_run_event(DagRunEvent.from_dag_run(dag_run("queued")))

    assert stats.calls == []


def test_no_tag_carries_a_run_id_a_try_number_or_a_host(stats: RecordingStats) -> None:
    for state in ("running", "success", "up_for_retry", "failed", "skipped"):
        metrics.record_task_event(task_event(state))
    metrics.record_dag_run_event(DagRunEvent.from_dag_run(dag_run("success")))

    tag_names = {name for _, _, _, tags in stats.calls for name in tags}
    assert tag_names == {"dag_id", "task_id", "owner", "team", "state", "run_type"}
    assert all(
        "scheduled__" not in value and "worker-1" not in value for *_, tags in stats.calls for value in tags.values()
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("alice, bob", "alice_bob"), ("", "none"), ("team=x,y", "team_x_y"), ("Data Platform", "Data_Platform")],
)
def test_tag_values_keep_only_what_statsd_tags_can_carry(raw: str, expected: str) -> None:
    assert metrics.tag_value(raw) == expected


def test_every_metric_name_is_ours_and_none_is_airflows() -> None:
    airflow_names = {metric["name"] for metric in airflow_metric_registry()}

    for name in metrics.METRICS:
        assert name.startswith(f"{metrics.PREFIX}.")
        assert re.fullmatch(r"[a-z_.]+", name)
        assert name not in airflow_names


def test_our_statsd_lines_land_on_no_airflow_or_exporter_family() -> None:
    # statsd_exporter's rules as the stack applies them; until mappings exist they stay in the catch-all.
    from tests.statsd_mapping_matcher import parse_line

    mappings = load_mappings()
    exporter_source = "\n".join(p.read_text() for p in (REPO_ROOT / "exporters" / "exporter").rglob("*.py"))
    exporter_families = set(re.findall(r"\bairflow_[a-z_]+", exporter_source))

    for name, (kind, tags, _) in metrics.METRICS.items():
        suffix = "c" if kind == "counter" else "ms"
        line = f"airflow.{name}," + ",".join(f"{tag}=x" for tag in tags) + f":1|{suffix}"
        mapped = map_line(mappings, parse_line(line))
        assert mapped.name.startswith((UNMAPPED_METRIC_PREFIX, "airflow_obs_task_", "airflow_obs_dag_run_")), name
    assert not [family for family in exporter_families if family.startswith("airflow_obs_")]


def test_the_plugin_docs_list_every_metric_with_its_tags() -> None:
    doc = (Path(REPO_ROOT) / "docs" / "plugin.md").read_text()

    for name, (kind, tags, _) in metrics.METRICS.items():
        row = next((line for line in doc.splitlines() if f"`{name}`" in line), "")
        assert row, f"{name} missing from docs/plugin.md"
        assert kind in row
        assert all(f"`{tag}`" in row for tag in tags), (name, row)
