"""Every URL the toolkit puts in a message: one function per link, so each format lives in one place.

The Airflow 3 UI's task-instance page opens on the try's log:
`{airflow}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}[/mapped/{map_index}]?try_number={n}`.
Ids are percent-encoded as path segments (a manual run_id holds `:` and `+`).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from airflow_obs.observability.events import TaskEvent
from airflow_obs.observability.settings import PluginSettings

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
# The console's top-level page (also a navigation entry of the UI) and its trace waterfall, in the same app.
CONSOLE_ROUTE = "/console"
CONSOLE_VIEW_HREF = MONITORING_APP_PREFIX + CONSOLE_ROUTE
TRACE_PAGE_ROUTE = "/traces/{trace_id}"
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


def console_url(settings: PluginSettings) -> str:
    """The console's top-level page: every firing alert, component health, failing and late DAGs."""
    return f"{settings.airflow_url}{MONITORING_APP_PREFIX}{CONSOLE_ROUTE}"


def console_dag_url(settings: PluginSettings, dag_id: str) -> str:
    """The console's page of one DAG (the page its Monitoring tab shows)."""
    return f"{settings.airflow_url}{MONITORING_APP_PREFIX}{MONITORING_PAGE_ROUTE.replace('{dag_id}', _segment(dag_id))}"


def console_trace_url(settings: PluginSettings, trace_id: str) -> str:
    return f"{settings.airflow_url}{MONITORING_APP_PREFIX}{TRACE_PAGE_ROUTE.replace('{trace_id}', _segment(trace_id))}"


def dashboard_url(settings: PluginSettings, uid: str, **variables: str) -> str:
    """A Grafana dashboard, with its template variables set (`var-<name>=<value>`).

    With no Grafana configured, the console page that shows the same: the DAG's page for the DAG dashboard
    (variable `dag_id`), else the top-level page.
    """
    if not settings.grafana_url:
        dag_id = variables.get(DAG_DASHBOARD_VARIABLE.removeprefix("var-"))
        return console_dag_url(settings, dag_id) if dag_id else console_url(settings)
    query = urlencode({f"var-{name}": value for name, value in variables.items()})
    return f"{settings.grafana_url}/d/{_segment(uid)}" + (f"?{query}" if query else "")


def dag_dashboard_url(settings: PluginSettings, dag_id: str) -> str:
    return dashboard_url(settings, DAG_DASHBOARD_UID, **{DAG_DASHBOARD_VARIABLE.removeprefix("var-"): dag_id})


def task_dashboard_url(settings: PluginSettings, dag_id: str, task_id: str) -> str:
    """The DAG dashboard narrowed to one task (its `task_id` variable set too)."""
    variables = {DAG_DASHBOARD_VARIABLE.removeprefix("var-"): dag_id, DAG_DASHBOARD_TASK_VARIABLE: task_id}
    return dashboard_url(settings, DAG_DASHBOARD_UID, **variables)


# The labels that say which alert it is (not the run or the error): what a silence from the console matches.
SILENCE_LABELS = ("alertname", "dag_id", "task_id", "component", "pool", "queue", "instance")


def label_matcher(name: str, value: str) -> str:
    """`name="value"`, the value escaped so it stays one double-quoted string, as Alertmanager parses it."""
    return f'{name}="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _alertmanager_filter(settings: PluginSettings, page: str, matchers: list[str]) -> str:
    # The UI routes in the fragment; its query is decoded like any query, so encode the matchers whole.
    return f"{settings.alertmanager_url}/#/{page}?filter={quote('{' + ','.join(matchers) + '}', safe='')}"


def alertmanager_alerts_url(settings: PluginSettings, dag_id: str) -> str:
    """Alertmanager's alert list filtered to one DAG's alerts (the `dag_id` label), e.g. `{dag_id="etl"}`."""
    return _alertmanager_filter(settings, "alerts", [label_matcher("dag_id", dag_id)])


def alertmanager_silence_url(settings: PluginSettings, labels: dict[str, str]) -> str:
    """Alertmanager's new-silence form, prefilled with the labels that identify the alert."""
    matchers = [label_matcher(name, labels[name]) for name in SILENCE_LABELS if labels.get(name)]
    return _alertmanager_filter(settings, "silences/new", matchers)


def trace_url(settings: PluginSettings, trace_id: str) -> str:
    """The trace in the configured viewer (Grafana's Explore on Tempo by default); the console's waterfall when the
    template needs a Grafana and none is configured."""
    if not settings.grafana_url and "{grafana_url}" in settings.trace_url_template:
        return console_trace_url(settings, trace_id)
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
