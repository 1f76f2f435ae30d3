"""Every URL the toolkit puts in a message: one function per link, so each format lives in one place.

The Airflow 3 UI's task-instance page opens on the try's log:
`{airflow}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}[/mapped/{map_index}]?try_number={n}`.
Ids are percent-encoded as path segments (a manual run_id holds `:` and `+`).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from observability.events import TaskEvent
from observability.settings import PluginSettings

# The Grafana dashboards links open ([6/7] generates them with these uids); a DAG's takes the dag_id variable.
DAG_DASHBOARD_UID = "airflow-dag"
DAG_DASHBOARD_VARIABLE = "var-dag_id"
DAG_DASHBOARD_TASK_VARIABLE = "task_id"  # the DAG dashboard's optional second variable
OVERVIEW_DASHBOARD_UID = "airflow-overview"
INFRA_DASHBOARD_UID = "airflow-infra"  # scheduler, executor, host, PostgreSQL, Redis
FRESHNESS_DASHBOARD_UID = "airflow-freshness"

# The plugin's page in the api-server (a `fastapi_apps` mount; the prefix must avoid Airflow's reserved ones) and
# the DAG-level "Monitoring" view that shows it. `{DAG_ID}` is the UI's placeholder: the UI fills it in,
# percent-encoded, before loading the href in the DAG page's frame. A path relative to the UI's origin keeps the
# page same-origin, so the browser sends the Airflow session cookie the page is authorised with.
MONITORING_APP_PREFIX = "/observability"
MONITORING_PAGE_ROUTE = "/dags/{dag_id}/monitoring"  # FastAPI's route pattern inside the app
MONITORING_VIEW_HREF = MONITORING_APP_PREFIX + MONITORING_PAGE_ROUTE.replace("{dag_id}", "{DAG_ID}")
# The runbooks, rendered, in the same app: `<base>/<Alert>.md` as on a code host, the list at `<base>/`.
RUNBOOK_PAGES_ROUTE = "/runbooks"
RUNBOOK_PAGES_PATH = MONITORING_APP_PREFIX + RUNBOOK_PAGES_ROUTE


def _segment(value: str) -> str:
    return quote(value, safe="")


def dag_url(settings: PluginSettings, dag_id: str) -> str:
    return f"{settings.airflow_url}/dags/{_segment(dag_id)}"


def dag_run_url(settings: PluginSettings, dag_id: str, run_id: str) -> str:
    return f"{dag_url(settings, dag_id)}/runs/{_segment(run_id)}"


def task_log_url(
    settings: PluginSettings, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
) -> str:
    """The task instance's log for one try; a mapped task's instance is addressed by its map index."""
    url = f"{dag_run_url(settings, dag_id, run_id)}/tasks/{_segment(task_id)}"
    if map_index >= 0:
        url += f"/mapped/{map_index}"
    return f"{url}?{urlencode({'try_number': try_number})}"


def dashboard_url(settings: PluginSettings, uid: str, **variables: str) -> str:
    """A Grafana dashboard, with its template variables set (`var-<name>=<value>`)."""
    query = urlencode({f"var-{name}": value for name, value in variables.items()})
    return f"{settings.grafana_url}/d/{_segment(uid)}" + (f"?{query}" if query else "")


def dag_dashboard_url(settings: PluginSettings, dag_id: str) -> str:
    return dashboard_url(settings, DAG_DASHBOARD_UID, **{DAG_DASHBOARD_VARIABLE.removeprefix("var-"): dag_id})


def task_dashboard_url(settings: PluginSettings, dag_id: str, task_id: str) -> str:
    """The DAG dashboard narrowed to one task (its `task_id` variable set too)."""
    variables = {DAG_DASHBOARD_VARIABLE.removeprefix("var-"): dag_id, DAG_DASHBOARD_TASK_VARIABLE: task_id}
    return dashboard_url(settings, DAG_DASHBOARD_UID, **variables)


def alertmanager_alerts_url(settings: PluginSettings, dag_id: str) -> str:
    """Alertmanager's alert list filtered to one DAG's alerts (the `dag_id` label), e.g. `{dag_id="etl"}`."""
    # A matcher's value is a double-quoted string: escape what would end it early.
    value = dag_id.replace("\\", "\\\\").replace('"', '\\"')
    # The UI routes in the fragment; its query is decoded like any query, so encode the matcher whole.
    matcher = '{dag_id="' + value + '"}'
    return f"{settings.alertmanager_url}/#/alerts?filter={quote(matcher, safe='')}"


def trace_url(settings: PluginSettings, trace_id: str) -> str:
    # The template may hold JSON (Grafana Explore's `left=`): substitute, then encode only what a URL cannot carry.
    url = settings.trace_url_template.replace("{grafana_url}", settings.grafana_url).replace("{trace_id}", trace_id)
    return quote(url, safe=":/?&=%#,")


def runbook_base_url(settings: PluginSettings) -> str:
    """Where runbooks/<Alert>.md are published: the configured base, else the api-server's runbook pages."""
    return settings.runbook_base_url or f"{settings.airflow_url}{RUNBOOK_PAGES_PATH}"


def runbook_url(settings: PluginSettings, alert_name: str) -> str:
    return f"{runbook_base_url(settings)}/{_segment(alert_name)}.md"


def links_for_task(
    settings: PluginSettings,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int,
    map_index: int,
    trace_id: str,
    runbook: str,
) -> dict[str, str]:
    """The links every task notification carries, by name (the Slack buttons and the webhook's `links`)."""
    return {
        "log": task_log_url(settings, dag_id, run_id, task_id, try_number, map_index),
        "dashboard": dag_dashboard_url(settings, dag_id),
        "trace": trace_url(settings, trace_id),
        "runbook": runbook_url(settings, runbook),
    }


def links_for_try(settings: PluginSettings, event: TaskEvent, trace_id: str, runbook: str) -> dict[str, str]:
    """`links_for_task` for the try an event describes."""
    return links_for_task(
        settings,
        dag_id=event.dag_id,
        run_id=event.run_id,
        task_id=event.task_id,
        try_number=event.try_number,
        map_index=event.map_index,
        trace_id=trace_id,
        runbook=runbook,
    )
