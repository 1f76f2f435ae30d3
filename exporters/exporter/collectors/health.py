"""Whether the metadata DB answers a trivial query: the basis of airflow_up."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


class MetadataDBHealthCollector:
    """Runs `SELECT 1` on the metadata DB; yields airflow_up = 1 when it succeeds, 0 otherwise."""

    name = "metadata_db_health"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.last_ok = False

    def check(self) -> bool:
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            self.last_ok = True
        except Exception as error:  # any driver error means "not reachable"
            log.warning("metadata DB unreachable: %s", str(error).splitlines()[0] if str(error) else type(error))
            self.last_ok = False
        return self.last_ok

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "airflow_up",
            "1 if the Airflow metadata database answered a query during this scrape, else 0.",
            value=1.0 if self.check() else 0.0,
        )
