"""DAGs: an info metric to join owner/team/tags on, paused state, and import errors."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from airflow_obs.exporter.database import airflow_table
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

TEAM_TAG_PREFIX = "team:"


class DagCollector:
    """Yields airflow_dag_info, airflow_dag_paused and the import-error families.

    Reads the dag table (one row per DAG), dag_tag (idx_dag_tag_dag_id) and import_error (one row per
    broken file): all bounded by the number of DAGs and files, never by history. Deleted or stale DAGs
    are not read, so their series disappear from the next scrape.
    """

    name = "dags"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # The rows and families of the last scrape: DAGs change rarely, so most scrapes reuse the families.
        self._last_rows: tuple | None = None
        self._last_families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        dag, tag = airflow_table(self._engine, "dag"), airflow_table(self._engine, "dag_tag")
        errors = airflow_table(self._engine, "import_error")
        with self._engine.connect() as connection:
            dags = connection.execute(
                select(dag.c.dag_id, dag.c.is_paused, dag.c.owners).where(dag.c.is_stale.is_(False))
            ).all()
            tag_rows = connection.execute(
                select(tag.c.dag_id, tag.c.name)
                .join(dag, dag.c.dag_id == tag.c.dag_id)
                .where(dag.c.is_stale.is_(False))
            ).all()
            error_rows = connection.execute(select(errors.c.filename, func.count()).group_by(errors.c.filename)).all()
        rows = (dags, tag_rows, error_rows)
        if rows != self._last_rows:
            self._last_rows, self._last_families = rows, list(self._families(dags, tag_rows, error_rows))
        yield from self._last_families

    @staticmethod
    def _families(dags, tag_rows, error_rows) -> Iterator[Metric]:
        tags: dict[str, list[str]] = defaultdict(list)
        for dag_id, name in tag_rows:
            tags[dag_id].append(name)

        info = GaugeMetricFamily(
            "airflow_dag_info",
            "Always 1; carries owner, team and tags of each DAG so other series can be joined on dag_id.",
            labels=["dag_id", "owner", "team", "tags"],
        )
        paused = GaugeMetricFamily("airflow_dag_paused", "1 if the DAG is paused, else 0.", labels=["dag_id"])
        for dag_id, is_paused, owners in dags:
            dag_tags = sorted(tags.get(dag_id, []))
            team = next((t.removeprefix(TEAM_TAG_PREFIX) for t in dag_tags if t.startswith(TEAM_TAG_PREFIX)), "")
            info.add_metric([dag_id, owners or "", team, ",".join(dag_tags)], 1.0)
            paused.add_metric([dag_id], 1.0 if is_paused else 0.0)
        yield info
        yield paused

        per_file = GaugeMetricFamily(
            "airflow_dag_import_errors",
            "Import errors of each DAG file, as the dag-processor last saw them.",
            labels=["file"],
        )
        for filename, count in error_rows:
            per_file.add_metric([filename or ""], float(count))
        yield per_file
        yield GaugeMetricFamily(
            "airflow_dag_import_error_files",
            "Number of DAG files that currently fail to import.",
            value=float(len(error_rows)),
        )
