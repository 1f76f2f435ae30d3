"""The benchmark's parts on a tiny history: the generator's data is consistent, the naive baseline is valid.

Behaviour only: how fast anything is belongs in docs/benchmarks.md (`make bench`), never in a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from bench.exporter_bench import END_MARKER, START_MARKER, write_docs
from bench.stats import nearest_rank
from bench.synthetic_history import TASKS, load_synthetic_history
from local_stack.programs import POSTGRES_BIN

pytestmark = pytest.mark.skipif(not (POSTGRES_BIN / "postgres").exists(), reason="PostgreSQL 15 is not installed")

TASK_INSTANCES, DAGS = 2000, 20


@pytest.fixture(scope="module")
def history() -> Iterator[tuple[str, dict[str, int]]]:
    from local_stack.throwaway_postgres import create_database, throwaway_cluster

    with throwaway_cluster() as port:
        url = create_database(port, "bench_smoke")
        yield url, load_synthetic_history(url, TASK_INSTANCES, dags=DAGS, seed=7)


def _scalar(url: str, sql: str):
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


def _column(url: str, sql: str) -> set:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text(sql)).scalars())
    finally:
        engine.dispose()


@pytest.mark.integration
def test_the_counts_returned_are_the_rows_in_the_database(history) -> None:
    url, counts = history
    assert counts["task_instance"] == TASK_INSTANCES
    assert counts["dag"] == DAGS
    assert counts["dag_run"] == TASK_INSTANCES // len(TASKS)
    for table, count in counts.items():
        assert _scalar(url, f"SELECT count(*) FROM {table}") == count, table


@pytest.mark.integration
def test_every_task_instance_belongs_to_a_run_of_a_known_dag(history) -> None:
    url, _ = history
    orphans = "SELECT count(*) FROM task_instance ti LEFT JOIN dag_run r USING (dag_id, run_id) WHERE r.id IS NULL"
    assert _scalar(url, orphans) == 0
    assert _scalar(url, "SELECT count(*) FROM dag_run r LEFT JOIN dag d USING (dag_id) WHERE d.dag_id IS NULL") == 0
    assert _scalar(url, "SELECT count(DISTINCT (dag_id, run_id, task_id)) FROM task_instance") == TASK_INSTANCES


@pytest.mark.integration
def test_states_are_airflow_states_and_include_current_activity(history) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    url, _ = history
    run_states = _column(url, "SELECT DISTINCT state FROM dag_run")
    ti_states = _column(url, "SELECT DISTINCT state FROM task_instance")
    assert run_states <= {state.value for state in DagRunState}
    assert ti_states <= {state.value for state in TaskInstanceState} | {None}  # None: not yet scheduled
    assert {"success", "failed", "running", "queued"} <= run_states
    live = {"running", "queued", "scheduled", "deferred", "up_for_retry"}
    assert {"success", "failed", "upstream_failed", "skipped", None} | live <= ti_states


@pytest.mark.integration
def test_runs_and_their_task_instances_tell_one_story(history) -> None:
    url, _ = history
    # A finished run failed exactly when one of its task instances failed.
    mismatched = """
        SELECT count(*) FROM dag_run r WHERE r.state IN ('success', 'failed')
        AND (r.state = 'failed') <> EXISTS (SELECT 1 FROM task_instance ti
                                           WHERE ti.dag_id = r.dag_id AND ti.run_id = r.run_id AND ti.state = 'failed')
    """
    assert _scalar(url, mismatched) == 0
    outside_run = """
        SELECT count(*) FROM task_instance ti JOIN dag_run r USING (dag_id, run_id)
        WHERE ti.start_date < r.start_date OR ti.end_date > r.end_date OR ti.end_date < ti.start_date
    """
    assert _scalar(url, outside_run) == 0
    assert (
        _scalar(url, "SELECT count(*) FROM dag_run WHERE state IN ('running', 'queued') AND end_date IS NOT NULL") == 0
    )
    now = datetime.now(UTC)
    assert _scalar(url, "SELECT max(greatest(end_date, start_date, run_after)) FROM dag_run") <= now
    assert _scalar(url, "SELECT max(greatest(end_date, start_date, last_heartbeat_at)) FROM task_instance") <= now


@pytest.mark.integration
def test_the_naive_exporter_yields_valid_exposition_with_every_dag(history) -> None:
    from bench.naive_exporter import build_registry

    url, _ = history
    registry, _ = build_registry(url)
    exposition = generate_latest(registry).decode()

    families = {family.name: family for family in text_string_to_metric_families(exposition)}
    assert len(families["airflow_dag_info"].samples) == DAGS
    success = {s.labels["collector"]: s.value for s in families["airflow_exporter_collector_success"].samples}
    assert success and all(value == 1.0 for value in success.values()), success
    completed = sum(s.value for s in families["airflow_dag_runs_completed"].samples if s.name.endswith("_total"))
    assert completed == _scalar(url, "SELECT count(*) FROM dag_run WHERE state IN ('success', 'failed')")


def test_nearest_rank_p95_of_twenty_values_is_the_nineteenth() -> None:
    values = [float(n) for n in range(20, 0, -1)]
    assert nearest_rank(values, 0.95) == 19.0
    assert nearest_rank(values, 0.5) == 10.0
    assert nearest_rank([3.0], 0.95) == 3.0


def test_writing_the_docs_replaces_only_the_section_between_the_markers(tmp_path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nmethod\n\n{START_MARKER}\nold table\n{END_MARKER}\n\n## Next section\n")

    write_docs("new table", doc)
    write_docs("newer table", doc)

    assert (
        doc.read_text() == f"# Benchmarks\n\nmethod\n\n{START_MARKER}\nnewer table\n{END_MARKER}\n\n## Next section\n"
    )


def test_writing_the_docs_refuses_a_file_without_the_markers(tmp_path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    with pytest.raises(RuntimeError, match="markers"):
        write_docs("table", doc)
    assert doc.read_text() == "# Benchmarks\n"
