"""A cap on the number of series one scrape exposes, so a cardinality explosion cannot take Prometheus down."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.samples import Sample


class SeriesBudget:
    """Keeps families in the order given until `limit` series are used; drops the rest and says what.

    Families come in priority order (liveness and current state before per-task history), so what a
    budget cuts first is the least urgent detail. A histogram's buckets, sum and count for one label set
    are kept or dropped together, and samples are cut in the family's own (sorted) order, so the same
    series survive from one scrape to the next.

    The asset graph's families come after everything else (server.db_collectors lists their collector
    last): they describe how DAGs depend on each other and say nothing is failing or late, so they are worth
    less than any failure or lateness family, and an alert that loses its downstream list still fires.
    airflow_dag_unproduced_assets and airflow_dag_downstream_dags (one series per DAG) come before
    airflow_dag_downstream_info, by far the largest (up to downstream_max_dags series per producing DAG).
    Its samples run producer by producer in dag_id order, each list nearest DAG first, so a cut keeps whole
    lists and shortens at most one, and airflow_dag_downstream_dags still gives every producer's total.
    """

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError(f"series budget must be a positive number of series, got {limit!r}")
        self.limit = limit

    def apply(self, metrics: Iterable[Metric]) -> tuple[list[Metric], Counter[str]]:
        used, kept, dropped = 0, [], Counter()
        for metric in metrics:
            if used + len(metric.samples) <= self.limit:  # the common case: the whole family fits
                used += len(metric.samples)
                kept.append(metric)
                continue
            groups: dict[tuple, list[Sample]] = {}
            for sample in metric.samples:
                key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                groups.setdefault(key, []).append(sample)
            survivors: list[Sample] = []
            for samples in groups.values():
                if used + len(samples) <= self.limit:
                    used += len(samples)
                    survivors.extend(samples)
                else:
                    dropped[metric.name] += len(samples)
            if len(survivors) != len(metric.samples):
                # A trimmed copy: the original may be part of a cached snapshot served again.
                trimmed = Metric(metric.name, metric.documentation, metric.type, metric.unit)
                trimmed.samples = survivors
                metric = trimmed
            kept.append(metric)
        return kept, dropped

    def families(self, dropped: Counter[str]) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "airflow_exporter_series_budget",
            "Most series one scrape may expose (the exporter's series_budget).",
            value=float(self.limit),
        )
        family = GaugeMetricFamily(
            "airflow_exporter_series_dropped",
            "Series left out of this scrape because the series budget was used up, by metric family.",
            labels=["metric"],
        )
        for name, count in sorted(dropped.items()):
            family.add_metric([name], float(count))
        yield family
