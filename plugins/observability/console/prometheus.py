"""What the console reads from Prometheus: a DAG's learned duration baseline (the exporter's family, the one the
AirflowDagRunOverBaseline alert compares against) and whether each scrape target is up.

Read with a short timeout and never raising: without a Prometheus ([observability] prometheus_url unset), or with one
that is down, the page shows what it has and says what it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_obs.observability import links
from airflow_obs.observability.prometheus_query import PrometheusUnavailable, instant_query
from airflow_obs.observability.settings import PluginSettings

READ_TIMEOUT_SECONDS = 2.0
BASELINE_FAMILY = "airflow_dag_run_duration_baseline_p95_seconds"

__all__ = ["PrometheusUnavailable", "Targets", "baseline_seconds", "targets"]


@dataclass
class Targets:
    up: dict[str, bool] = field(default_factory=dict)  # job -> every target of it up
    error: str = ""


def baseline_seconds(settings: PluginSettings, dag_id: str) -> float | None:
    """The p95 duration the exporter learned for the DAG's successful runs; None until it has one."""
    matcher = links.label_matcher("dag_id", dag_id)
    result = instant_query(settings, f"max({BASELINE_FAMILY}{{{matcher}}})", READ_TIMEOUT_SECONDS)
    return float(result[0]["value"][1]) if result else None


def targets(settings: PluginSettings) -> Targets:
    """Each scrape job and whether all its targets answered the last scrape."""
    try:
        result = instant_query(settings, "min by (job) (up)", READ_TIMEOUT_SECONDS)
    except PrometheusUnavailable as missing:
        return Targets(error=str(missing))
    return Targets({row["metric"].get("job", ""): row["value"][1] == "1" for row in result})
