"""What a failing DAG breaks downstream, and which failing DAG upstream explains a DAG's own trouble.

Airflow's asset graph (which DAG produces each asset, which DAGs are scheduled on it) is read by the exporter, which
publishes it bounded (`airflow_dag_downstream_info`: each DAG's downstream DAGs, nearest first, capped per DAG;
`airflow_dag_downstream_dags`: how many there are in all); the rules join it with failures
(`airflow:dag_upstream_failing`, alert_rules/alerting/asset_impact.py). A page reads both for its DAG here, in one
instant query to Prometheus, so the plugin's alerts, the exporter's rule alerts and the console say the same thing.

Why Prometheus and not the metadata DB: a task's page is sent from its task runner, which has no database access in
Airflow 3, and the rules need the graph in Prometheus anyway (to hold back the consumers' alerts). The read is
bounded (IMPACT_READ_SECONDS) and never fails a page: without an answer the alert says the impact is unknown, and why.

The two texts below are also written, as Go templates, into the rule alerts' annotations (asset_impact.py): change
both together (a unit test renders both on the same graph).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from airflow_obs.observability import links
from airflow_obs.observability.prometheus_query import PrometheusUnavailable, instant_query
from airflow_obs.observability.settings import PluginSettings

log = logging.getLogger("airflow_obs.notify")

DOWNSTREAM_INFO = "airflow_dag_downstream_info"
DOWNSTREAM_COUNT = "airflow_dag_downstream_dags"
UPSTREAM_FAILING = "airflow:dag_upstream_failing"

# The most a page's impact read may add to it (a task runner's page has notify_timeout_seconds in all).
IMPACT_READ_SECONDS = 1.0

# Annotation names, the same on the plugin's alerts and the rule alerts.
AFFECTS = "affects"
UPSTREAM_FAILING_ANNOTATION = "upstream_failing"


@dataclass(frozen=True)
class Affected:
    """A DAG scheduled, directly or through other DAGs' assets, on an asset the failing DAG produces."""

    dag_id: str
    asset: str  # the failing DAG's asset the path to it starts from
    team: str
    owner: str

    def text(self) -> str:
        return f"{self.asset} -> {self.dag_id} (team {self.team or 'none'}, owner {self.owner or 'none'})"


@dataclass(frozen=True)
class FailingUpstream:
    """A DAG this one depends on through assets, whose latest run failed."""

    dag_id: str
    asset: str

    def text(self) -> str:
        return f"{self.dag_id}, whose latest run failed (via {self.asset})"


@dataclass(frozen=True)
class Impact:
    affected: tuple[Affected, ...] = ()
    downstream_total: int = 0  # every downstream DAG, listed or not (the exporter caps the list)
    failing_upstream: tuple[FailingUpstream, ...] = ()
    unknown: str = ""  # why the graph could not be read ("" when it was, or when no Prometheus is configured)

    @property
    def more(self) -> int:
        return max(0, self.downstream_total - len(self.affected))

    def affects_text(self) -> str:
        if self.unknown:
            return f"unknown: {self.unknown}"
        parts = [item.text() for item in self.affected]
        if self.more:
            parts.append(f"and {self.more} more")
        return "; ".join(parts)

    def upstream_text(self) -> str:
        return "; ".join(item.text() for item in self.failing_upstream)

    def annotations(self) -> dict[str, str]:
        """The alert annotations it adds (empty values are left out of the alert)."""
        return {AFFECTS: self.affects_text(), UPSTREAM_FAILING_ANNOTATION: self.upstream_text()}


NO_IMPACT = Impact()


def impact_query(dag_id: str) -> str:
    """One instant query for all the DAG's impact: its downstream DAGs, their count, its failing upstreams."""
    matcher = "{" + links.label_matcher("dag_id", dag_id) + "}"
    return f"{DOWNSTREAM_INFO}{matcher} or {DOWNSTREAM_COUNT}{matcher} or {UPSTREAM_FAILING}{matcher}"


def from_result(result: list[dict]) -> Impact:
    """The Impact in a Prometheus result vector of impact_query (several exporters' copies counted once)."""
    affected: dict[str, Affected] = {}
    upstream: dict[str, FailingUpstream] = {}
    total = 0
    for row in result:
        labels = row.get("metric") or {}
        name = labels.get("__name__", "")
        if name == DOWNSTREAM_INFO and labels.get("downstream_dag_id"):
            item = Affected(
                labels["downstream_dag_id"],
                labels.get("asset", ""),
                labels.get("downstream_team", ""),
                labels.get("downstream_owner", ""),
            )
            affected.setdefault(item.dag_id, item)
        elif name == DOWNSTREAM_COUNT:
            total = max(total, int(float(row["value"][1])))
        elif name == UPSTREAM_FAILING and labels.get("upstream_dag_id"):
            upstream.setdefault(
                labels["upstream_dag_id"], FailingUpstream(labels["upstream_dag_id"], labels.get("asset", ""))
            )
    listed = tuple(affected[dag_id] for dag_id in sorted(affected))
    return Impact(listed, max(total, len(listed)), tuple(upstream[dag_id] for dag_id in sorted(upstream)))


def read_impact(settings: PluginSettings, dag_id: str, timeout: float = IMPACT_READ_SECONDS) -> Impact:
    """The DAG's impact, or an Impact saying why it is unknown; never raises, never waits past `timeout`."""
    if not settings.prometheus_url:
        return NO_IMPACT  # the deployment has no Prometheus to ask: nothing to say, nothing missing
    try:
        return from_result(instant_query(settings, impact_query(dag_id), timeout))
    except PrometheusUnavailable as missing:
        log.warning("impact of %s unknown: %s", dag_id, missing)
        return Impact(unknown=str(missing))
    except (KeyError, TypeError, ValueError, IndexError) as damaged:
        log.warning("impact of %s unknown: Prometheus answered %s", dag_id, damaged)
        return Impact(unknown=f"Prometheus answered an unexpected result ({type(damaged).__name__})")
