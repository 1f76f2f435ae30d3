"""The asset graph: which DAGs (and teams) wait downstream of each DAG, and DAGs waiting on assets nobody makes.

A DAG P produces an asset through a task outlet (task_outlet_asset_reference); a DAG C scheduled on that asset
(dag_schedule_asset_reference) runs when P updates it, so C is downstream of P at depth 1, and the DAGs scheduled
on C's own outlets are at depth 2, and so on. Four queries per collect, whatever the size of the graph or the
history: the outlet edges, the schedule edges, and the owners and team tags of the scheduled DAGs. Stale DAGs are
left out of every one of them, as producers, as consumers and as links in a chain.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from airflow_obs.exporter.collectors.dags import TEAM_TAG_PREFIX
from airflow_obs.exporter.config import ExporterConfig
from airflow_obs.exporter.database import airflow_table
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

# The defaults live in one place, the exporter's config.
DEFAULT_MAX_DEPTH = ExporterConfig.downstream_max_depth
DEFAULT_MAX_DAGS = ExporterConfig.downstream_max_dags


@dataclass(frozen=True)
class GraphRows:
    """What one collect reads; equal rows give equal families, so they are the cache key."""

    outlets: Sequence[tuple[str, int, str]]  # (producer dag_id, asset id, asset uri), distinct over tasks
    schedules: Sequence[tuple[str, int]]  # (consumer dag_id, asset id)
    dags: Sequence[tuple[str, str | None]]  # (dag_id, owners) of every scheduled DAG
    tags: Sequence[tuple[str, str]]  # (dag_id, tag) of those DAGs' team tags


@dataclass(frozen=True)
class Downstream:
    dag_id: str
    depth: int
    asset: str  # the producer's asset that starts the shortest path


class AssetGraphCollector:
    """Yields airflow_dag_unproduced_assets, airflow_dag_downstream_dags and airflow_dag_downstream_info."""

    name = "assets"

    def __init__(self, engine: Engine, *, max_depth: int = DEFAULT_MAX_DEPTH, max_dags: int = DEFAULT_MAX_DAGS) -> None:
        if max_depth < 1 or max_dags < 1:
            raise ValueError(f"max_depth and max_dags must be at least 1, got {max_depth!r} and {max_dags!r}")
        self._engine = engine
        self._max_depth = max_depth
        self._max_dags = max_dags
        # The asset graph changes when DAG files do: most scrapes reuse the last families.
        self._last_rows: GraphRows | None = None
        self._last_families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        with self._engine.connect() as connection:
            rows = self.read(connection)
        if rows != self._last_rows:
            self._last_rows, self._last_families = rows, self.families(rows)
        yield from self._last_families

    def read(self, connection: Connection) -> GraphRows:
        """The graph's rows, in a stable order (so that unchanged rows compare equal)."""
        dag = airflow_table(self._engine, "dag")
        tag = airflow_table(self._engine, "dag_tag")
        asset = airflow_table(self._engine, "asset")
        outlet = airflow_table(self._engine, "task_outlet_asset_reference")
        schedule = airflow_table(self._engine, "dag_schedule_asset_reference")
        live = dag.c.is_stale.is_(False)
        outlets = connection.execute(
            select(outlet.c.dag_id, asset.c.id, asset.c.uri)
            .distinct()
            .join(asset, asset.c.id == outlet.c.asset_id)
            .join(dag, dag.c.dag_id == outlet.c.dag_id)
            .where(live)
            .order_by(outlet.c.dag_id, asset.c.id)
        ).all()
        schedules = connection.execute(
            select(schedule.c.dag_id, schedule.c.asset_id)
            .join(dag, dag.c.dag_id == schedule.c.dag_id)
            .where(live)
            .order_by(schedule.c.dag_id, schedule.c.asset_id)
        ).all()
        # Owner and team matter only for DAGs that can be downstream of another: those scheduled on an asset.
        scheduled = select(schedule.c.dag_id)
        dags = connection.execute(
            select(dag.c.dag_id, dag.c.owners).where(live, dag.c.dag_id.in_(scheduled)).order_by(dag.c.dag_id)
        ).all()
        tags = connection.execute(
            select(tag.c.dag_id, tag.c.name)
            .join(dag, dag.c.dag_id == tag.c.dag_id)
            .where(live, tag.c.dag_id.in_(scheduled), tag.c.name.startswith(TEAM_TAG_PREFIX, autoescape=True))
            .order_by(tag.c.dag_id, tag.c.name)
        ).all()
        return GraphRows(
            outlets=tuple(map(tuple, outlets)),
            schedules=tuple(map(tuple, schedules)),
            dags=tuple(map(tuple, dags)),
            tags=tuple(map(tuple, tags)),
        )

    def families(self, rows: GraphRows) -> list[Metric]:
        """The three families from the rows; in the order the series budget should keep them (see budget.py)."""
        produced: dict[str, list[tuple[str, int]]] = defaultdict(list)  # producer -> [(uri, asset id)]
        made: set[int] = set()
        for dag_id, asset_id, uri in rows.outlets:
            produced[dag_id].append((uri, asset_id))
            made.add(asset_id)
        consumers: dict[int, list[str]] = defaultdict(list)
        unproduced: dict[str, int] = defaultdict(int)
        for dag_id, asset_id in rows.schedules:
            consumers[asset_id].append(dag_id)
            if asset_id not in made:
                unproduced[dag_id] += 1
        owners = {dag_id: owner or "" for dag_id, owner in rows.dags}
        teams: dict[str, str] = {}
        for dag_id, name in rows.tags:  # sorted by name: the first team tag wins, as on airflow_dag_info
            if name.startswith(TEAM_TAG_PREFIX):  # SQLite's LIKE ignores case; DagCollector does not
                teams.setdefault(dag_id, name.removeprefix(TEAM_TAG_PREFIX))

        unproduced_family = GaugeMetricFamily(
            "airflow_dag_unproduced_assets",
            "Assets the DAG is scheduled on that no active DAG produces (no task outlet): the DAG never runs "
            "from them, unless something outside Airflow's DAGs (the REST API, an asset watcher) updates them.",
            labels=["dag_id"],
        )
        for dag_id in sorted(unproduced):
            unproduced_family.add_metric([dag_id], float(unproduced[dag_id]))

        count_family = GaugeMetricFamily(
            "airflow_dag_downstream_dags",
            f"DAGs scheduled, through assets, downstream of dag_id within {self._max_depth} hops (all of them, "
            "unlike airflow_dag_downstream_info): how many DAGs a failure of dag_id holds up. "
            "Only DAGs with at least one.",
            labels=["dag_id"],
        )
        info_family = GaugeMetricFamily(
            "airflow_dag_downstream_info",
            "Always 1: a DAG downstream of dag_id through assets, with its owner and team, for joins in alert "
            "rules (which DAGs and teams a failure of dag_id affects). asset is dag_id's asset that starts the "
            f"shortest path, depth its length in DAG hops (at most {self._max_depth}); the nearest "
            f"{self._max_dags} per DAG (airflow_dag_downstream_dags has the total).",
            labels=["dag_id", "asset", "downstream_dag_id", "downstream_owner", "downstream_team", "depth"],
        )
        successors = _successors(produced, consumers)
        for producer in sorted(produced):
            downstream = downstream_of(producer, produced, consumers, successors, self._max_depth)
            if not downstream:
                continue
            count_family.add_metric([producer], float(len(downstream)))
            for found in sorted(downstream, key=lambda d: (d.depth, d.dag_id))[: self._max_dags]:
                labels = [producer, found.asset, found.dag_id, owners.get(found.dag_id, "")]
                info_family.add_metric([*labels, teams.get(found.dag_id, ""), str(found.depth)], 1.0)
        # Least urgent last: the series budget cuts from the end (budget.py).
        return [unproduced_family, count_family, info_family]


def _successors(produced: dict[str, list[tuple[str, int]]], consumers: dict[int, list[str]]) -> dict[str, set[str]]:
    """DAG -> the DAGs scheduled on any of its assets (itself left out)."""
    return {
        dag_id: {c for _, asset_id in assets for c in consumers.get(asset_id, ()) if c != dag_id}
        for dag_id, assets in produced.items()
    }


def downstream_of(
    producer: str,
    produced: dict[str, list[tuple[str, int]]],
    consumers: dict[int, list[str]],
    successors: dict[str, set[str]],
    max_depth: int,
) -> list[Downstream]:
    """Breadth-first from `producer`: every DAG within `max_depth` hops once, at its shortest depth.

    A DAG reached by several shortest paths keeps the smallest starting asset URI, so the output does not depend
    on row order. The producer is never listed, so a cycle back to it ends there.
    """
    start: dict[str, str] = {}  # DAG -> the producer's asset URI its path starts with
    for uri, asset_id in sorted(produced[producer]):
        for consumer in consumers.get(asset_id, ()):
            if consumer != producer and consumer not in start:
                start[consumer] = uri
    found = [Downstream(dag_id, 1, uri) for dag_id, uri in start.items()]
    frontier = set(start)
    for depth in range(2, max_depth + 1):
        reached: dict[str, str] = {}
        for dag_id in frontier:
            for consumer in successors.get(dag_id, ()):
                if consumer == producer or consumer in start:
                    continue
                uri = start[dag_id]
                if consumer not in reached or uri < reached[consumer]:
                    reached[consumer] = uri
        if not reached:
            break
        start.update(reached)
        found += [Downstream(dag_id, depth, uri) for dag_id, uri in reached.items()]
        frontier = set(reached)
    return found
