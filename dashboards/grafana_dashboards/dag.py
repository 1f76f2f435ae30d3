"""airflow-dag: one DAG (and optionally one task): its runs, durations against the baseline, retries, failures."""

from __future__ import annotations

from airflow_obs.grafana_dashboards import panels as p
from airflow_obs.observability.links import DAG_DASHBOARD_UID, DAG_DASHBOARD_VARIABLE, OVERVIEW_DASHBOARD_UID
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import logs, tempo

DAG_VARIABLE = DAG_DASHBOARD_VARIABLE.removeprefix("var-")
DAG = f'dag_id="${DAG_VARIABLE}"'
TASK = f'{DAG}, task_id=~"$task_id"'
# Every task that finished in the range, valued 0: the counters of failures and retries have no series for a task
# that never failed or retried.
ZERO_PER_TASK = f"0 * sum by (task_id) (increase(airflow_task_instances_finished_total{{{TASK}}}[$__range]))"


def _variables() -> list:
    return [
        *p.datasource_variables(traces=True, logs=True),
        p.airflow_url_variable(),
        p.label_variable(DAG_VARIABLE, "label_values(airflow_dag_info, dag_id)", "DAG"),
        p.label_variable(
            "task_id",
            f"label_values(airflow_task_instances_finished_total{{{DAG}}}, task_id)",
            "Task",
            include_all=True,
        ),
    ]


def _traces():
    query = (
        tempo.TempoQuery()
        .ref_id("A")
        .datasource(p.TRACES)
        .query_type("traceql")
        .query(f'{{ span.airflow.dag_id = "${DAG_VARIABLE}" }}')
        .limit(20)
    )
    return (
        p.grid("Recent traces", "The DAG's latest run traces in the trace store; click a trace id to open it.")
        .with_target(query)
        .datasource(p.TRACES)
    )


def _logs():
    # The toolkit's JSON log lines carry dag_id, task_id and trace_id (plugins/observability/logs.py).
    query = f'{{job=~".+"}} |= "${DAG_VARIABLE}" | json | dag_id = "${DAG_VARIABLE}"'
    return (
        logs.Panel()
        .title("Logs")
        .description("The toolkit's JSON logs of this DAG, with trace ids.")
        .span(24)
        .height(10)
        .datasource(p.LOGS)
        .with_target(p.loki_query(query))
    )


def build() -> db.Dashboard:
    dag = f"${DAG_VARIABLE}"
    return (
        db.Dashboard("Airflow DAG")
        .uid(DAG_DASHBOARD_UID)
        .tags(["airflow", "airflow-obs"])
        .time("now-7d", "now")
        .refresh("1m")
        .variables(_variables())
        .links(
            [
                p.dashboard_link("Overview", OVERVIEW_DASHBOARD_UID),
                p.link("DAG in Airflow", p.airflow_dag_link(dag)),
                p.link("Runs in Airflow", p.airflow_runs_link(dag)),
            ]
        )
        .with_row(p.row("Runs"))
        .with_panel(
            p.single(
                "Latest run failed",
                "1 when the DAG's latest finished run failed.",
                p.prom(f"max(airflow_dag_last_run_failed{{{DAG}}})"),
                steps=[(None, "green"), (1, "red")],
            ).data_links([p.link("Runs in Airflow", p.airflow_runs_link(dag))])
        )
        .with_panel(
            p.single(
                "Since the last success",
                "Time since a run of this DAG last succeeded.",
                p.prom(f"time() - max(airflow_dag_last_success_timestamp_seconds{{{DAG}}})"),
                unit="s",
            )
        )
        .with_panel(
            p.single(
                "Runs in range",
                "Finished runs in the dashboard's time range, by final state.",
                p.prom(f"sum by (state) (increase(airflow_dag_runs_completed_total{{{DAG}}}[$__range]))", "{{state}}"),
                width=12,
            ).data_links([p.link("Runs in Airflow", p.airflow_runs_link(dag))])
        )
        .with_panel(
            p.graph(
                "Run outcomes per hour",
                "Finished runs per hour, by state (recording rule airflow:dag_runs_completed:rate1h).",
                p.prom(f"sum by (state) (airflow:dag_runs_completed:rate1h{{{DAG}}}) * 3600", "{{state}}"),
            )
        )
        .with_panel(
            p.graph(
                "Run duration against the baseline",
                "Mean duration of recent successful runs, the learned p50/p95 baseline, and the running run's age.",
                p.prom(
                    f'sum(rate(airflow_dag_run_duration_seconds_sum{{{DAG}, state="success"}}[1h]))\n'
                    f'/ sum(rate(airflow_dag_run_duration_seconds_count{{{DAG}, state="success"}}[1h]))',
                    "mean duration (1h)",
                    ref="A",
                ),
                p.prom(f"max(airflow_dag_run_duration_baseline_p50_seconds{{{DAG}}})", "baseline p50", ref="B"),
                p.prom(f"max(airflow_dag_run_duration_baseline_p95_seconds{{{DAG}}})", "baseline p95", ref="C"),
                p.prom(f"max(airflow_dag_run_oldest_running_age_seconds{{{DAG}}})", "running for", ref="D"),
                unit="s",
            )
        )
        .with_row(p.row("Tasks"))
        .with_panel(
            p.graph(
                "Task duration (mean, StatsD)",
                "Mean duration of each task's tries (Airflow's task.duration).",
                p.prom(
                    f"sum by (task_id) (rate(airflow_task_duration_seconds_sum{{{TASK}}}[$__rate_interval]))\n"
                    f"/ sum by (task_id) (rate(airflow_task_duration_seconds_count{{{TASK}}}[$__rate_interval]))",
                    "{{task_id}}",
                ),
                unit="s",
            )
        )
        .with_panel(
            p.grid(
                "Failures and retries by task",
                "Failed tries and retries per task in the time range. Click a task to open it in Airflow.",
                # `or ZERO_PER_TASK`: a task with no failure shows 0, not an empty cell (and the query has data).
                p.prom(
                    f"sum by (task_id) (increase(airflow_task_instances_finished_total"
                    f'{{{TASK}, state="failed"}}[$__range]))\nor {ZERO_PER_TASK}',
                    ref="A",
                    instant=True,
                ),
                p.prom(
                    f"sum by (task_id) (increase(airflow_task_instance_retries_total{{{TASK}}}[$__range]))\n"
                    f"or {ZERO_PER_TASK}",
                    ref="B",
                    instant=True,
                ),
                p.prom(
                    f"sum by (task_id) (increase(airflow_task_instances_finished_total{{{TASK}}}[$__range]))",
                    ref="C",
                    instant=True,
                ),
                width=12,
            )
            .with_transformation(p.transform("merge", {}))
            .with_transformation(
                p.transform(
                    "organize",
                    {
                        "excludeByName": {"Time": True},
                        "renameByName": {"Value #A": "Failed", "Value #B": "Retries", "Value #C": "Finished"},
                    },
                )
            )
            .data_links([p.link("Open ${__data.fields.task_id}", p.airflow_task_link(dag, "${__data.fields.task_id}"))])
        )
        .with_panel(
            p.graph(
                "Task outcomes",
                "Task tries finishing per second, by task and state.",
                p.prom(
                    f"sum by (task_id, state) "
                    f"(rate(airflow_task_instances_finished_total{{{TASK}}}[$__rate_interval]))",
                    "{{task_id}} {{state}}",
                ),
                unit="ops",
            ).data_links(
                [p.link("Open ${__field.labels.task_id}", p.airflow_task_link(dag, "${__field.labels.task_id}"))]
            )
        )
        .with_row(p.row("Traces and logs"))
        .with_panel(_traces())
        .with_panel(_logs())
        .build()
    )
