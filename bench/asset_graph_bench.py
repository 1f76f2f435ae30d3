"""`make bench` (after the scrape bench): the asset graph collector at 1,000 DAGs on PostgreSQL.

Loads a synthetic history (bench/synthetic_history.py) and an asset graph over its DAGs
(bench/synthetic_assets.py) into a throwaway PostgreSQL, then runs the collector in-process on the
exporter's own read-only engine: its queries (one connection, as a collect uses) and the building of its
families are timed apart, repeatedly, and the SQL statements of one collect are counted. With --write-docs
it rewrites its part of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from airflow_obs.exporter.config import ExporterConfig

from bench.docs_section import DOCS, write_section
from bench.stats import nearest_rank
from bench.synthetic_assets import AssetGraph, asset_graph, load_asset_graph
from bench.synthetic_history import load_synthetic_history

SECTION = "asset-graph-bench"
DAGS = 1000
# The graph does not depend on history; a short one keeps the load quick.
TASK_INSTANCES = 50_000
DEFAULT_REPEATS = 50
POSTGRES_SETTINGS = ("shared_buffers=512MB",)
MAX_DEPTH, MAX_DAGS = ExporterConfig.downstream_max_depth, ExporterConfig.downstream_max_dags  # the defaults


@dataclass
class Result:
    graph: AssetGraph
    statements: int
    query_ms: list[float]
    build_ms: list[float]
    collect_ms: list[float]  # a whole collect when nothing changed: the queries, then the cached families
    series: Counter[str]
    deepest: int
    widest: int  # the most DAGs downstream of one producer
    capped: int  # producers with more downstream DAGs than the list shows
    pg_version: str
    load_average: float


def measure(url: str, repeats: int, pg_version: str) -> Result:
    from airflow_obs.exporter.collectors.assets import AssetGraphCollector
    from airflow_obs.exporter.database import make_engine
    from sqlalchemy import create_engine, event, text

    writer = create_engine(url)
    try:
        with writer.begin() as connection:
            dag_ids = list(connection.execute(text("SELECT dag_id FROM dag ORDER BY dag_id")).scalars())
            graph = asset_graph(dag_ids)
            load_asset_graph(connection, graph)
        with writer.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    finally:
        writer.dispose()

    engine = make_engine(url)  # the exporter's: small pool, read-only, statement timeout
    try:
        collector = AssetGraphCollector(engine)
        families = list(collector.collect())  # warm-up: reflects the tables, fills the pool
        statements: list[str] = []

        def count(_conn, _cursor, statement, *_rest) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        list(collector.collect())
        event.remove(engine, "before_cursor_execute", count)

        query_ms, build_ms, collect_ms = [], [], []
        for _ in range(repeats):
            started = time.perf_counter()
            with engine.connect() as connection:
                rows = collector.read(connection)
            query_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            collector.families(rows)
            build_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            list(collector.collect())
            collect_ms.append((time.perf_counter() - started) * 1000)
    finally:
        engine.dispose()
    series = Counter({family.name: len(family.samples) for family in families})
    depths = [int(s.labels["depth"]) for f in families if f.name == "airflow_dag_downstream_info" for s in f.samples]
    totals = [s.value for f in families if f.name == "airflow_dag_downstream_dags" for s in f.samples]
    return Result(
        graph=graph,
        statements=len(statements),
        query_ms=query_ms,
        build_ms=build_ms,
        collect_ms=collect_ms,
        series=series,
        deepest=max(depths, default=0),
        widest=int(max(totals, default=0)),
        capped=sum(total > MAX_DAGS for total in totals),
        pg_version=pg_version,
        load_average=os.getloadavg()[0],
    )


def run(repeats: int) -> Result:
    from airflow.models import import_all_models
    from sqlalchemy import create_engine, text

    from local_stack.throwaway_postgres import create_database, throwaway_cluster

    import_all_models()
    with throwaway_cluster(settings=POSTGRES_SETTINGS) as port:
        admin = create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres")
        with admin.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
        admin.dispose()
        url = create_database(port, "bench_assets")
        print(f"[bench] loading {DAGS} DAGs ({TASK_INSTANCES:,} task instances) and their asset graph ...", flush=True)
        load_synthetic_history(url, TASK_INSTANCES, dags=DAGS)
        return measure(url, repeats, version)


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):,.1f} ms | {nearest_rank(values, 0.95):,.1f} ms"


def render(result: Result, repeats: int) -> str:
    graph, system = result.graph, os.uname()
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {system.sysname} {system.release}, {os.cpu_count()} cores "
        f"(1-min load average after the run: {result.load_average:.1f}), PostgreSQL {result.pg_version}; "
        f"{DAGS:,} DAGs, {graph.producers} producing {len(graph.outlets)} assets, {graph.consumers} scheduled on "
        f"{len(graph.schedules):,} asset references ({len(graph.assets):,} assets in all); the defaults "
        f"(depth {MAX_DEPTH}, {MAX_DAGS} DAGs listed per producer); {repeats} repeats after one warm-up collect.",
        "",
        "| what | median | p95 |",
        "|---|---:|---:|",
        f"| queries (one connection, {result.statements} statements per collect) | {_ms(result.query_ms)} |",
        f"| building the families from the rows | {_ms(result.build_ms)} |",
        f"| a whole collect with the graph unchanged (queries, families reused) | {_ms(result.collect_ms)} |",
        "",
        "| family | series |",
        "|---|---:|",
    ]
    lines += [f"| `{name}` | {count:,} |" for name, count in sorted(result.series.items())]
    lines += [
        "",
        f"Deepest listed downstream DAG: depth {result.deepest}; most DAGs downstream of one producer: "
        f"{result.widest} ({result.capped} producers have more than the {MAX_DAGS} listed).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="timed query and build runs")
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the generated part of {DOCS.name}")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("need at least one repeat")
    with tempfile.TemporaryDirectory(prefix="airflow-obs-bench-") as folder:
        # Airflow reads (and writes) its home on import: a private one keeps ~/airflow and the dev stack untouched.
        os.environ["AIRFLOW_HOME"] = str(Path(folder) / "airflow-home")
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        result = run(args.repeats)
    section = render(result, args.repeats)
    print(section)
    if args.write_docs:
        write_section(SECTION, section)
        print(f"[bench] wrote {DOCS.name}")


if __name__ == "__main__":
    main()
