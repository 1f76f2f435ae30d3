"""airflow_up: whether the metadata DB answers a trivial query."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Engine, text


class MetadataDBHealthCollector:
    """Yields airflow_up = 1 when `SELECT 1` succeeds on the metadata DB, 0 otherwise."""

    name = "metadata_db_health"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.last_ok = False

    def check(self) -> bool:
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            self.last_ok = True
        except Exception:  # any driver error means "not reachable"; details go to the exporter log
            self.last_ok = False
        return self.last_ok

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "airflow_up",
            "1 if the Airflow metadata database answered a query during this scrape, else 0.",
            value=1.0 if self.check() else 0.0,
        )
