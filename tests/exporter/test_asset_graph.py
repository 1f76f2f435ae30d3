"""The asset graph collector: downstream DAGs of each producer, DAGs waiting on assets nobody makes, its settings."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from airflow_obs.exporter.budget import SeriesBudget
from airflow_obs.exporter.collectors.assets import AssetGraphCollector
from airflow_obs.exporter.collectors.dags import DagCollector
from airflow_obs.exporter.config import ConfigError, ExporterConfig, load_config
from airflow_obs.exporter.server import db_collectors
from prometheus_client import generate_latest
from sqlalchemy import Engine, delete, event, insert, select

from bench.synthetic_assets import asset_graph, load_asset_graph
from tests.exporter.conftest import registry_for, seed_dag, writable

INFO, COUNT, UNPRODUCED = "airflow_dag_downstream_info", "airflow_dag_downstream_dags", "airflow_dag_unproduced_assets"


def _asset_tables():
    from airflow.models.asset import AssetModel, DagScheduleAssetReference, TaskOutletAssetReference

    return [DagScheduleAssetReference.__table__, TaskOutletAssetReference.__table__, AssetModel.__table__]


@pytest.fixture
def engine(engine: Engine) -> Iterator[Engine]:
    """conftest's engine, with the asset tables emptied too (SQLite leaves references of deleted DAGs behind)."""

    def empty() -> None:
        with writable(engine).begin() as connection:
            for table in _asset_tables():
                connection.execute(delete(table))

    empty()
    yield engine
    empty()


def seed_graph(engine, produces: dict[str, list[str]], schedules: dict[str, list[str]]) -> None:
    """DAG -> URIs of assets it produces (a task outlet) and is scheduled on; missing DAGs and assets are created."""
    from airflow.models.asset import AssetModel, DagScheduleAssetReference, TaskOutletAssetReference
    from airflow.models.dag import DagModel

    with writable(engine).connect() as connection:
        existing = set(connection.execute(select(DagModel.__table__.c.dag_id)).scalars())
    for dag_id in sorted({*produces, *schedules} - existing):
        seed_dag(engine, dag_id)
    uris = sorted({uri for table in (produces, schedules) for uris in table.values() for uri in uris})
    ids = {uri: n for n, uri in enumerate(uris, start=1)}
    now = datetime.now(UTC)
    stamps = {"created_at": now, "updated_at": now}
    with writable(engine).begin() as connection:
        for uri, asset_id in ids.items():
            connection.execute(
                insert(AssetModel.__table__).values(id=asset_id, name=uri, uri=uri, group="asset", extra={}, **stamps)
            )
        for dag_id, produced in produces.items():
            for n, uri in enumerate(produced):
                # Two tasks making the same asset still make one edge.
                for task_id in ("load", "publish") if n == 0 else ("load",):
                    connection.execute(
                        insert(TaskOutletAssetReference.__table__).values(
                            dag_id=dag_id, task_id=task_id, asset_id=ids[uri], **stamps
                        )
                    )
        for dag_id, scheduled in schedules.items():
            for uri in scheduled:
                connection.execute(
                    insert(DagScheduleAssetReference.__table__).values(dag_id=dag_id, asset_id=ids[uri], **stamps)
                )


def seed_many_dags(engine, dag_ids: list[str]) -> None:
    """Like seed_dag, in one statement: thousands of DAGs in a second."""
    from airflow.models.dag import DagModel

    rows = [
        {
            "dag_id": dag_id,
            "is_paused": False,
            "is_stale": False,
            "owners": "data-eng",
            "bundle_name": "test-bundle",
            "fileloc": f"/dags/{dag_id}.py",
            "max_active_tasks": 16,
            "max_active_runs": 1,
            "max_consecutive_failed_dag_runs": 0,
            "has_task_concurrency_limits": False,
            "has_import_errors": False,
        }
        for dag_id in dag_ids
    ]
    with writable(engine).begin() as connection:
        connection.execute(insert(DagModel.__table__), rows)


def downstream(registry, producer: str) -> dict[str, tuple[str, str]]:
    """downstream_dag_id -> (depth, asset) of every airflow_dag_downstream_info series of `producer`."""
    found = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == INFO and sample.labels["dag_id"] == producer:
                assert sample.value == 1.0
                found[sample.labels["downstream_dag_id"]] = (sample.labels["depth"], sample.labels["asset"])
    return found


def test_a_chain_lists_each_dag_downstream_at_its_depth_up_to_the_max_depth(engine) -> None:
    seed_dag(engine, "report", owners="bi", tags=("daily", "team:analytics"))
    seed_graph(
        engine,
        produces={"ingest": ["s3://raw"], "clean": ["s3://clean"], "model": ["s3://model"], "report": ["s3://pdf"]},
        schedules={"clean": ["s3://raw"], "model": ["s3://clean"], "report": ["s3://model"], "mail": ["s3://pdf"]},
    )
    registry = registry_for(AssetGraphCollector(engine))

    assert downstream(registry, "ingest") == {
        "clean": ("1", "s3://raw"),
        "model": ("2", "s3://raw"),
        "report": ("3", "s3://raw"),
    }  # mail is 4 hops away: past the default depth of 3
    assert downstream(registry, "clean") == {
        "model": ("1", "s3://clean"),
        "report": ("2", "s3://clean"),
        "mail": ("3", "s3://clean"),
    }
    labels = {"dag_id": "ingest", "asset": "s3://raw", "downstream_dag_id": "report", "depth": "3"}
    assert registry.get_sample_value(INFO, {**labels, "downstream_owner": "bi", "downstream_team": "analytics"}) == 1.0
    assert registry.get_sample_value(COUNT, {"dag_id": "ingest"}) == 3.0
    assert registry.get_sample_value(COUNT, {"dag_id": "report"}) == 1.0
    assert registry.get_sample_value(COUNT, {"dag_id": "mail"}) is None  # produces nothing
    assert registry.get_sample_value("airflow_exporter_collector_success", {"collector": "assets"}) == 1.0

    deeper = registry_for(AssetGraphCollector(engine, max_depth=4))
    assert downstream(deeper, "ingest")["mail"] == ("4", "s3://raw")
    capped = registry_for(AssetGraphCollector(engine, max_depth=4, max_dags=2))
    assert downstream(capped, "ingest") == {"clean": ("1", "s3://raw"), "model": ("2", "s3://raw")}  # nearest first
    assert capped.get_sample_value(COUNT, {"dag_id": "ingest"}) == 4.0


def test_a_diamond_lists_each_dag_once_by_its_shortest_path_and_smallest_starting_asset(engine) -> None:
    seed_graph(
        engine,
        produces={"p": ["s3://a1", "s3://a2"], "left": ["s3://b"], "right": ["s3://c"], "join": ["s3://d"]},
        schedules={
            "left": ["s3://a2"],
            "right": ["s3://a1"],
            "join": ["s3://b", "s3://c"],  # two paths of length 2: the one starting at a1 wins
            "both": ["s3://a2", "s3://a1"],  # two direct paths: a1 again
            "near": ["s3://d", "s3://a2"],  # a2 directly beats a1 at depth 3
        },
    )
    registry = registry_for(AssetGraphCollector(engine))

    assert downstream(registry, "p") == {
        "both": ("1", "s3://a1"),
        "left": ("1", "s3://a2"),
        "near": ("1", "s3://a2"),
        "right": ("1", "s3://a1"),
        "join": ("2", "s3://a1"),
    }
    assert registry.get_sample_value(COUNT, {"dag_id": "p"}) == 5.0


def test_a_cycle_terminates_and_never_lists_the_producer_itself(engine) -> None:
    seed_graph(
        engine,
        produces={"p": ["s3://a"], "q": ["s3://b"], "selfish": ["s3://own"]},
        schedules={"q": ["s3://a"], "p": ["s3://b"], "selfish": ["s3://own"]},
    )
    registry = registry_for(AssetGraphCollector(engine, max_depth=10))

    assert downstream(registry, "p") == {"q": ("1", "s3://a")}
    assert downstream(registry, "q") == {"p": ("1", "s3://b")}
    assert downstream(registry, "selfish") == {}
    assert registry.get_sample_value(COUNT, {"dag_id": "selfish"}) is None


def test_a_dag_scheduled_on_assets_no_dag_produces_is_counted(engine) -> None:
    seed_graph(
        engine,
        produces={"p": ["s3://made"]},
        schedules={"waiting": ["s3://made", "s3://nobody/1", "s3://nobody/2"], "fine": ["s3://made"]},
    )
    registry = registry_for(AssetGraphCollector(engine))

    assert registry.get_sample_value(UNPRODUCED, {"dag_id": "waiting"}) == 2.0
    assert registry.get_sample_value(UNPRODUCED, {"dag_id": "fine"}) is None
    assert registry.get_sample_value(UNPRODUCED, {"dag_id": "p"}) is None


def test_a_producer_with_5000_consumers_lists_the_nearest_20_and_counts_all(engine) -> None:
    from airflow.models.asset import DagScheduleAssetReference

    consumers = [f"consumer_{n:04d}" for n in range(5000)]
    seed_many_dags(engine, consumers)
    seed_graph(engine, produces={"hub": ["s3://landing"]}, schedules={})
    now = datetime.now(UTC)
    with writable(engine).begin() as connection:
        rows = [{"dag_id": dag_id, "asset_id": 1, "created_at": now, "updated_at": now} for dag_id in consumers]
        connection.execute(insert(DagScheduleAssetReference.__table__), rows)  # asset 1: s3://landing
    registry = registry_for(AssetGraphCollector(engine))

    listed = downstream(registry, "hub")
    assert sorted(listed) == consumers[:20]  # the default cap, by dag_id among DAGs at the same depth
    assert registry.get_sample_value(COUNT, {"dag_id": "hub"}) == 5000.0
    assert len(downstream(registry_for(AssetGraphCollector(engine, max_dags=1000)), "hub")) == 1000


def test_asset_uris_and_owners_with_odd_characters_give_valid_exposition(engine) -> None:
    odd = 'file:///data/{date}/"quoted"\\back\nnewline ünïcode {}'
    seed_dag(engine, 'consumer "x"', owners='o"wner\\\nnext', tags=("team:données",))
    seed_graph(engine, produces={"p": [odd]}, schedules={'consumer "x"': [odd, "s3://nobody/{x}"]})
    registry = registry_for(AssetGraphCollector(engine))

    check = subprocess.run(
        ["promtool", "check", "metrics"], input=generate_latest(registry), capture_output=True, check=False
    )

    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    labels = {"dag_id": "p", "asset": odd, "downstream_dag_id": 'consumer "x"', "depth": "1"}
    labels |= {"downstream_owner": 'o"wner\\\nnext', "downstream_team": "données"}
    assert registry.get_sample_value(INFO, labels) == 1.0
    assert registry.get_sample_value(UNPRODUCED, {"dag_id": 'consumer "x"'}) == 1.0


def test_stale_dags_are_neither_producers_nor_consumers_nor_links(engine) -> None:
    from airflow.models.dag import DagModel

    seed_graph(
        engine,
        produces={"p": ["s3://a"], "gone_link": ["s3://b"], "gone_producer": ["s3://c"]},
        schedules={"q": ["s3://a"], "gone_link": ["s3://a"], "after_gone": ["s3://b"], "orphan": ["s3://c"]},
    )
    registry = registry_for(AssetGraphCollector(engine))
    assert set(downstream(registry, "p")) == {"q", "gone_link", "after_gone"}

    dag = DagModel.__table__
    with writable(engine).begin() as connection:
        connection.execute(dag.update().where(dag.c.dag_id.in_(["gone_link", "gone_producer"])).values(is_stale=True))

    assert downstream(registry, "p") == {"q": ("1", "s3://a")}
    assert registry.get_sample_value(COUNT, {"dag_id": "gone_producer"}) is None
    assert registry.get_sample_value(UNPRODUCED, {"dag_id": "orphan"}) == 1.0  # only a stale DAG makes s3://c
    assert registry.get_sample_value(UNPRODUCED, {"dag_id": "after_gone"}) == 1.0


def test_families_are_rebuilt_only_when_the_graph_changes(engine) -> None:
    seed_graph(engine, produces={"p": ["s3://a"]}, schedules={"q": ["s3://a"]})
    collector = AssetGraphCollector(engine)

    first = list(collector.collect())
    assert list(collector.collect()) == first
    assert all(again is before for again, before in zip(collector.collect(), first, strict=True))

    seed_graph(engine, produces={}, schedules={"r": []})  # a new DAG scheduled on nothing changes nothing
    assert all(again is before for again, before in zip(collector.collect(), first, strict=True))
    seed_dag(engine, "r2")
    from airflow.models.asset import DagScheduleAssetReference

    with writable(engine).begin() as connection:
        now = datetime.now(UTC)
        connection.execute(
            insert(DagScheduleAssetReference.__table__).values(dag_id="r2", asset_id=1, created_at=now, updated_at=now)
        )
    rebuilt = list(collector.collect())
    assert rebuilt[0] is not first[0]
    assert downstream(registry_for(collector), "p") == {"q": ("1", "s3://a"), "r2": ("1", "s3://a")}


@contextmanager
def counted_statements(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _statements_per_collect(engine: Engine, dags: int) -> tuple[int, int]:
    dag_ids = [f"dag_{n:04d}" for n in range(dags)]
    seed_many_dags(engine, dag_ids)
    with writable(engine).begin() as connection:
        load_asset_graph(connection, asset_graph(dag_ids, seed=3))
    collector = AssetGraphCollector(engine)
    list(collector.collect())  # the first collect also reflects the tables
    with counted_statements(engine) as statements:
        series = sum(len(family.samples) for family in collector.collect())
    return len(statements), series


@pytest.mark.parametrize("dags", [100, 1000])
def test_a_collect_issues_the_same_few_statements_at_100_and_1000_dags(engine, dags: int) -> None:
    statements, series = _statements_per_collect(engine, dags)

    assert statements == 4  # outlets, schedules, owners, team tags
    assert series > dags // 10  # the graph is not empty


def test_the_graph_collector_is_last_in_priority_so_the_budget_cuts_it_first(engine) -> None:
    collectors = db_collectors(engine, ExporterConfig(downstream_max_depth=5, downstream_max_dags=7), 300.0)
    assert [c.name for c in collectors][-1] == "assets"
    assert (collectors[-1]._max_depth, collectors[-1]._max_dags) == (5, 7)

    seed_dag(engine, "p", tags=("team:x",))
    seed_graph(engine, produces={"p": ["s3://a"]}, schedules={"q": ["s3://a"], "r": ["s3://a"]})
    families = [*DagCollector(engine).collect(), *AssetGraphCollector(engine).collect()]
    needed = sum(len(f.samples) for f in families)

    kept, dropped = SeriesBudget(needed - 1).apply(families)

    assert dropped == {INFO: 1}
    assert [s.labels["downstream_dag_id"] for f in kept if f.name == INFO for s in f.samples] == ["q"]


def test_the_downstream_settings_have_defaults_and_take_the_file_and_environment(tmp_path) -> None:
    assert (ExporterConfig().downstream_max_depth, ExporterConfig().downstream_max_dags) == (3, 20)
    path = tmp_path / "exporter.yml"
    path.write_text("downstream_max_depth: 10\ndownstream_max_dags: 1000\n")
    assert (load_config(path, environ={}).downstream_max_depth, load_config(path, environ={}).downstream_max_dags) == (
        10,
        1000,
    )
    environ = {"AIRFLOW_OBS_EXPORTER_DOWNSTREAM_MAX_DEPTH": "1", "AIRFLOW_OBS_EXPORTER_DOWNSTREAM_MAX_DAGS": "5"}
    config = load_config(path, environ=environ)
    assert (config.downstream_max_depth, config.downstream_max_dags) == (1, 5)


@pytest.mark.parametrize(
    ("key", "value", "expected", "got"),
    [
        ("downstream_max_depth", "0", "an integer 1-10", "0"),
        ("downstream_max_depth", "11", "an integer 1-10", "11"),
        ("downstream_max_depth", "2.5", "an integer 1-10", "2.5"),
        ("downstream_max_depth", "true", "an integer 1-10", "True"),
        ("downstream_max_dags", "0", "an integer 1-1000", "0"),
        ("downstream_max_dags", "1001", "an integer 1-1000", "1001"),
        ("downstream_max_dags", "many", "an integer 1-1000", "'many'"),
    ],
)
def test_a_bad_downstream_setting_names_the_key_value_and_expectation(
    tmp_path, key: str, value: str, expected: str, got: str
) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text(f"{key}: {value}\n")

    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})

    assert str(error.value) == f"exporter config {path}: key '{key}': expected {expected}, got {got}"


def test_a_bad_downstream_variable_names_the_variable() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ={"AIRFLOW_OBS_EXPORTER_DOWNSTREAM_MAX_DAGS": "-3"})

    assert str(error.value) == (
        "exporter config $AIRFLOW_OBS_EXPORTER_DOWNSTREAM_MAX_DAGS: key 'downstream_max_dags': "
        "expected an integer 1-1000, got '-3'"
    )
