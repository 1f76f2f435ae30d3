"""airflow-freshness: is each DAG's data on time: on-time rate, lateness, deadline misses."""

from __future__ import annotations

from airflow_obs.alerting.catalogue import new_since
from airflow_obs.grafana_dashboards import panels as p
from airflow_obs.observability.links import FRESHNESS_DASHBOARD_UID, OVERVIEW_DASHBOARD_UID
from grafana_foundation_sdk.builders import dashboard as db

# A scheduled run that started within this many seconds of its scheduled time counts as on time: the upper bound
# of a bucket of the exporter's schedule-delay histogram (SCHEDULE_DELAY_BUCKETS), so the ratio is exact.
ON_TIME_SECONDS = "300"


def build() -> db.Dashboard:
    delay = "airflow_dag_run_schedule_delay_seconds"
    return (
        db.Dashboard("Airflow freshness and reliability")
        .uid(FRESHNESS_DASHBOARD_UID)
        .tags(["airflow", "airflow-obs"])
        .time("now-7d", "now")
        .refresh("1m")
        .with_variable(p.datasource_variables()[0])
        .with_variable(p.airflow_url_variable())
        .links([p.dashboard_link("Overview", OVERVIEW_DASHBOARD_UID), p.link("Airflow UI", p.AIRFLOW_BASE)])
        .with_panel(
            p.grid(
                "On-time rate per DAG",
                f"Share of scheduled runs in the range that started within {ON_TIME_SECONDS}s of their scheduled time.",
                p.prom(
                    f'sum by (dag_id) (increase({delay}_bucket{{le="{ON_TIME_SECONDS}"}}[$__range]))\n'
                    f"/ sum by (dag_id) (increase({delay}_count[$__range]))",
                    instant=True,
                ),
                width=12,
            )
            .unit("percentunit")
            .with_transformation(p.transform("organize", {"excludeByName": {"Time": True}}))
            .data_links([p.link("Open ${__data.fields.dag_id}", p.airflow_dag_link("${__data.fields.dag_id}"))])
        )
        .with_panel(
            p.graph(
                "Schedule delay p95",
                "95th percentile of how long after its scheduled time a run started, per DAG.",
                p.prom(
                    f"histogram_quantile(0.95, sum by (dag_id, le) (rate({delay}_bucket[1h])))",
                    "{{dag_id}}",
                ),
                unit="s",
            )
        )
        .with_panel(
            p.graph(
                "Lateness",
                "How long ago each DAG's timetable expected a run that was not created (0 when on time).",
                p.prom("max by (dag_id) (airflow_dag_schedule_lateness_seconds)", "{{dag_id}}"),
                unit="s",
                width=24,
            )
        )
        .with_panel(
            p.grid(
                "Deadline misses",
                "Deadline Alerts missed per DAG in the range (Airflow 3 deadlines).",
                # Not increase(): the exporter's counter is born with a DAG's first miss, which increase() never sees.
                p.prom(f"{new_since('airflow_dag_deadline_misses_total', '$__range', 'dag_id')} > 0", instant=True),
                width=12,
            )
            .with_transformation(p.transform("organize", {"excludeByName": {"Time": True}}))
            .data_links([p.link("Open ${__data.fields.dag_id}", p.airflow_dag_link("${__data.fields.dag_id}"))])
        )
        .with_panel(
            p.graph(
                "Deadline outcomes (StatsD)",
                "Deadlines created, met and missed per hour, across DAGs (Airflow's deadline_alerts.*).",
                p.prom("sum(rate(airflow_deadline_alerts_deadline_created_total[1h])) * 3600", "created", ref="A"),
                p.prom("sum(rate(airflow_deadline_alerts_deadline_missed_total[1h])) * 3600", "missed", ref="B"),
            )
        )
        .build()
    )
