"""A synthetic Airflow asset graph over existing DAGs: producers, chains, fan-out, a cycle, unproduced assets.

About a third of the DAGs produce one to three assets (task outlets of their `load` task); about half are
scheduled on one or two assets made by DAGs earlier in a shuffled order, which gives chains several hops deep
(many consumers are producers too); a few hub assets fan out to dozens of DAGs; one short cycle closes back on
its start; and a few DAGs wait on assets nobody produces. Every choice comes from the seed, so a seed always
gives the same graph. Rows go in through Airflow's own tables with SQLAlchemy Core, so the same loader serves
PostgreSQL (the benchmark) and SQLite (the tests).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert

PRODUCER_SHARE, CONSUMER_SHARE = 0.35, 0.5
HUBS, HUB_CONSUMERS = 3, 40
UNPRODUCED_SHARE = 0.02
# Consumers pick assets from producers at most this far before them in the shuffled order: chains, not a mesh.
REACH = 60
OUTLET_TASK = "load"


@dataclass(frozen=True)
class AssetGraph:
    assets: list[tuple[int, str]]  # (id, uri)
    outlets: list[tuple[str, str, int]]  # (dag_id, task_id, asset id)
    schedules: list[tuple[str, int]]  # (dag_id, asset id)

    @property
    def producers(self) -> int:
        return len({dag_id for dag_id, _, _ in self.outlets})

    @property
    def consumers(self) -> int:
        return len({dag_id for dag_id, _ in self.schedules})


def asset_graph(dag_ids: Sequence[str], seed: int = 0) -> AssetGraph:
    """The graph over `dag_ids` (at least 10) for `seed`."""
    if len(dag_ids) < 10:
        raise ValueError("need at least 10 DAGs")
    rng = random.Random(seed)  # noqa: S311 - a benchmark's workload, not a secret
    order = sorted(dag_ids)
    rng.shuffle(order)
    assets: list[tuple[int, str]] = []
    made_by: list[tuple[int, int]] = []  # (position of the producer in `order`, asset id)
    outlets: list[tuple[str, str, int]] = []
    for position, dag_id in enumerate(order):
        if rng.random() < PRODUCER_SHARE:
            for n in range(rng.randint(1, 3)):
                asset_id = len(assets) + 1
                assets.append((asset_id, f"s3://lake/{dag_id}/part-{n}"))
                made_by.append((position, asset_id))
                outlets.append((dag_id, OUTLET_TASK, asset_id))
    schedules: set[tuple[str, int]] = set()
    for position, dag_id in enumerate(order):
        if rng.random() >= CONSUMER_SHARE:
            continue
        earlier = [asset_id for at, asset_id in made_by if position - REACH <= at < position]
        for asset_id in rng.sample(earlier, min(len(earlier), rng.randint(1, 2))):
            schedules.add((dag_id, asset_id))
    # Hubs: a few assets early in the order that dozens of DAGs wait on (a shared raw-data landing, say).
    for _, asset_id in made_by[:HUBS]:
        for dag_id in rng.sample(order, min(HUB_CONSUMERS, len(order))):
            schedules.add((dag_id, asset_id))
    # One cycle: the last producer's first asset schedules the first producer.
    if made_by:
        schedules.add((order[made_by[0][0]], made_by[-1][1]))
    for dag_id in rng.sample(order, max(1, round(len(order) * UNPRODUCED_SHARE))):
        asset_id = len(assets) + 1
        assets.append((asset_id, f"s3://vendor-drop/{dag_id}/feed"))  # nobody's outlet
        schedules.add((dag_id, asset_id))
    return AssetGraph(assets, outlets, sorted(schedules))


def load_asset_graph(connection: Connection, graph: AssetGraph) -> dict[str, int]:
    """Insert `graph` (its DAGs must exist); returns rows inserted per table."""
    from airflow.models.asset import AssetModel, DagScheduleAssetReference, TaskOutletAssetReference

    now = datetime.now(UTC)
    stamps = {"created_at": now, "updated_at": now}
    connection.execute(
        insert(AssetModel.__table__),
        [{"id": i, "name": uri, "uri": uri, "group": "asset", "extra": {}, **stamps} for i, uri in graph.assets],
    )
    connection.execute(
        insert(TaskOutletAssetReference.__table__),
        [{"dag_id": d, "task_id": t, "asset_id": a, **stamps} for d, t, a in graph.outlets],
    )
    connection.execute(
        insert(DagScheduleAssetReference.__table__),
        [{"dag_id": d, "asset_id": a, **stamps} for d, a in graph.schedules],
    )
    return {
        "asset": len(graph.assets),
        "task_outlet_asset_reference": len(graph.outlets),
        "dag_schedule_asset_reference": len(graph.schedules),
    }
