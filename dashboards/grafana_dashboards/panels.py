"""Shared builders: data sources, variables, queries and the panel kinds every dashboard uses.

Every Prometheus query goes through `prom()`, so a panel's data source is always the `datasource` variable:
`airflow-obs dashboards push` maps that one uid to a Grafana's real Prometheus.
"""

from __future__ import annotations

from types import SimpleNamespace

from airflow_obs.observability import links
from airflow_obs.observability.settings import SETTINGS
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import loki, prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
TRACES = model.DataSourceRef(type_val="tempo", uid="${traces}")
LOGS = model.DataSourceRef(type_val="loki", uid="${logs}")

# Grafana percent-encodes variables in data links (since 9.0); the base URL must stay as typed, hence `:raw`.
AIRFLOW_BASE = "${airflow_url:raw}"
_DAG_SENTINEL, _RUN_SENTINEL = "DAGIDSENTINEL", "RUNIDSENTINEL"


def airflow_dag_link(dag_id: str) -> str:
    """`{airflow}/dags/{dag_id}` with Grafana placeholders, built by links.py so the format has one source."""
    url = links.dag_url(SimpleNamespace(airflow_url=AIRFLOW_BASE), _DAG_SENTINEL)
    return url.replace(_DAG_SENTINEL, dag_id)


def airflow_task_link(dag_id: str, task_id: str) -> str:
    # links.py has no task-overview URL (Airflow 3 UI `dags/:dagId/tasks/:taskId`): it extends the DAG's.
    return f"{airflow_dag_link(dag_id)}/tasks/{task_id}"


def airflow_runs_link(dag_id: str) -> str:
    # Prometheus has no run_id label (cardinality), so the run link opens the DAG's run list.
    return f"{airflow_dag_link(dag_id)}/runs"


def link(title: str, url: str) -> db.DashboardLink:
    return db.DashboardLink(title).type(model.DashboardLinkType.LINK).url(url).target_blank(True)


def dashboard_link(title: str, uid: str, keep_vars: bool = False) -> db.DashboardLink:
    return link(title, f"/d/{uid}").keep_time(True).include_vars(keep_vars)


def datasource_variables(traces: bool = False, logs: bool = False) -> list[db.DatasourceVariable]:
    variables = [db.DatasourceVariable("datasource").label("Prometheus").type("prometheus")]
    if traces:
        variables.append(db.DatasourceVariable("traces").label("Traces").type("tempo"))
    if logs:
        variables.append(db.DatasourceVariable("logs").label("Logs").type("loki"))
    return variables


def airflow_url_variable() -> db.TextBoxVariable:
    """The Airflow UI base for links; the default is the plugin's, a deployment sets `var-airflow_url`."""
    default = SETTINGS["airflow_url"].default
    return (
        db.TextBoxVariable("airflow_url")
        .label("Airflow URL")
        .default_value(default)
        .current(model.VariableOption(selected=True, text=default, value=default))
        .hide(model.VariableHide.HIDE_VARIABLE)
    )


def label_variable(name: str, query: str, label: str, include_all: bool = False) -> db.QueryVariable:
    variable = (
        db.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    if include_all:
        # `.*` rather than Grafana's own list of values: a task that ran before the range still matches.
        variable = variable.include_all(True).all_value(".*")
    return variable


def prom(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(PROMETHEUS).legend_format(legend or "__auto")
    if instant:
        query = query.instant().format(PromQueryFormat.TABLE)
    return query


def _thresholds(steps: list[tuple[float | None, str]]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def graph(title: str, description: str, *queries: prometheus.Dataquery, unit: str = "short", width: int = 12):
    panel = timeseries.Panel().title(title).description(description).unit(unit).span(width).height(8)
    for query in queries:
        panel = panel.with_target(query)
    return panel.datasource(PROMETHEUS)


def single(
    title: str,
    description: str,
    query: prometheus.Dataquery,
    *,
    unit: str = "short",
    width: int = 6,
    steps: list[tuple[float | None, str]] | None = None,
):
    panel = stat.Panel().title(title).description(description).unit(unit).span(width).height(5)
    panel = panel.with_target(query).datasource(PROMETHEUS)
    return panel.thresholds(_thresholds(steps or [(None, "green")]))


def grid(title: str, description: str, *queries: prometheus.Dataquery, width: int = 24, height: int = 8):
    panel = table.Panel().title(title).description(description).span(width).height(height)
    for query in queries:
        panel = panel.with_target(query)
    return panel.datasource(PROMETHEUS)


def transform(kind: str, options: dict) -> model.DataTransformerConfig:
    return model.DataTransformerConfig(id_val=kind, options=options)


def row(title: str) -> db.Row:
    return db.Row(title)


def loki_query(expr: str) -> loki.Dataquery:
    return loki.Dataquery().expr(expr).ref_id("A").datasource(LOGS)
