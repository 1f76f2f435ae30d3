"""Root cause first: what a failing DAG affects downstream, and a DAG's alerts held back while a DAG upstream fails.

The exporter publishes Airflow's asset graph: `airflow_dag_downstream_info{dag_id=<producer>, downstream_dag_id,
asset, downstream_team, downstream_owner, depth}` (each DAG's downstream DAGs through assets, nearest first, capped)
and `airflow_dag_downstream_dags{dag_id}` (how many in all). Here:

- `airflow:dag_upstream_failing{dag_id=<consumer>, upstream_dag_id=<producer>, asset}`: the producer's latest run
  failed. Pairs that are each downstream of the other (an asset cycle) are left out: there each would mute the
  other, and a failure on a cycle would page nobody.
- `AirflowDagUpstreamFailing`, one per such pair: routed to nobody (alert_rules/alertmanager.yml), it only inhibits
  the consumer's own alerts (`equal: [dag_id]`), so the page is the producer's, the root cause. When the producer
  recovers the marker resolves, and the consumer's alerts that still fire notify on their own.
- The `affects` and `upstream_failing` annotations of every alert about a DAG, as Go templates that query the same
  series. They write the same text as the plugin's pages (observability/impact.py): change both together.
"""

from __future__ import annotations

from airflow_obs.alerting.catalogue import DAG, Alert, Record
from airflow_obs.observability.impact import DOWNSTREAM_COUNT, DOWNSTREAM_INFO, UPSTREAM_FAILING

UPSTREAM_MARKER = "AirflowDagUpstreamFailing"

_PAIRS_FAILING = (
    f"max by (dag_id, upstream_dag_id, asset) (\n"
    f"  label_replace(\n"
    f"    label_replace(\n"
    f"      max by (dag_id, downstream_dag_id, asset) ({DOWNSTREAM_INFO})\n"
    f"      * on (dag_id) group_left () (max by (dag_id) (airflow_dag_last_run_failed) == 1),\n"
    f'      "upstream_dag_id", "$1", "dag_id", "(.*)"\n'
    f"    ),\n"
    f'    "dag_id", "$1", "downstream_dag_id", "(.*)"\n'
    f"  )\n"
    f")"
)
# A pair whose consumer is also upstream of its producer: the same series, read the other way round.
_CYCLE_PAIRS = f'label_replace({DOWNSTREAM_INFO}, "upstream_dag_id", "$1", "downstream_dag_id", "(.*)")'

# "warehouse://orders -> ml_monitor_drift (team ml, owner ml-eng); ...; and 3 more" (impact.Affected.text).
AFFECTS_TEMPLATE = (
    "{{ range $i, $d := query (printf "
    f'"max by (downstream_dag_id, asset, downstream_team, downstream_owner) ({DOWNSTREAM_INFO}{{dag_id=%q}})" '
    '$labels.dag_id) | sortByLabel "downstream_dag_id" }}{{ if $i }}; {{ end }}'
    "{{ $d.Labels.asset }} -> {{ $d.Labels.downstream_dag_id }} "
    '(team {{ or $d.Labels.downstream_team "none" }}, owner {{ or $d.Labels.downstream_owner "none" }}){{ end }}'
    "{{ range query (printf "
    f'"max({DOWNSTREAM_COUNT}{{dag_id=%q}}) - count(max by (downstream_dag_id) ({DOWNSTREAM_INFO}{{dag_id=%q}})) > 0" '
    '$labels.dag_id $labels.dag_id) }}; and {{ .Value | printf "%.0f" }} more{{ end }}'
)
# "etl_orders, whose latest run failed (via warehouse://orders)" (impact.FailingUpstream.text).
UPSTREAM_TEMPLATE = (
    f'{{{{ range $i, $u := query (printf "{UPSTREAM_FAILING}{{dag_id=%q}}" $labels.dag_id) '
    '| sortByLabel "upstream_dag_id" }}{{ if $i }}; {{ end }}'
    "{{ $u.Labels.upstream_dag_id }}, whose latest run failed (via {{ $u.Labels.asset }}){{ end }}"
)


def impact_records() -> list[Record]:
    return [Record(UPSTREAM_FAILING, f"{_PAIRS_FAILING}\nunless on (dag_id, upstream_dag_id)\n{_CYCLE_PAIRS}")]


def impact_alerts() -> list[Alert]:
    return [
        Alert(
            name=UPSTREAM_MARKER,
            expr=f"max by (dag_id, upstream_dag_id, asset) ({UPSTREAM_FAILING})",
            severity="none",
            about_dag=True,
            summary="DAG {{ $labels.dag_id }} depends on {{ $labels.upstream_dag_id }}, whose latest run failed.",
            description=(
                "Routed to nobody. {{ $labels.dag_id }} is scheduled on {{ $labels.asset }} of "
                "{{ $labels.upstream_dag_id }} (directly or through other DAGs): while that DAG is failing, the alerts "
                "about {{ $labels.dag_id }} are held back, and the page is the root cause's. They notify on their "
                "own if they still fire once it recovers."
            ),
            dashboard=DAG,
        ),
    ]
