"""The on-call console, served by the api-server (a `fastapi_apps` mount under /observability) and shown inside
the Airflow UI: a DAG's page (its "Monitoring" tab), the top-level page (an "On-call" entry of the navigation), a
trace's waterfall, and the runbooks.

Server-rendered with Jinja2 (autoescaped) and Chart.js for the one chart, so it needs no Grafana and no build step.
Every page is authorised like the REST API: the Airflow session cookie the browser sends (same origin, also inside
the UI's frame) or a bearer token, checked by the auth manager. A DAG's page and a trace need read access to the
DAG's runs; the top-level page lists only the DAGs the user may read; the runbooks need access to the UI. A browser
that arrives from an alert without a session is sent to Airflow's login, which brings it back. Nothing here writes:
silencing goes through Alertmanager's own form.

Each source is read with a short timeout and a failure is shown on the page, never raised: the console must open
while Alertmanager, Prometheus or Tempo are down, which is when it is needed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.api.common.airflow_health import get_airflow_health
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag, requires_access_view
from airflow_obs.observability import links
from airflow_obs.observability.console import dag_facts, overview_facts, prometheus
from airflow_obs.observability.console.alerts import AlertsView, dag_matcher, read_alerts
from airflow_obs.observability.console.runbooks import INDEX, RunbookNotFound, render_markdown
from airflow_obs.observability.console.tempo import TraceUnavailable
from airflow_obs.observability.console.traces import total_duration, trace_spans, waterfall_rows
from airflow_obs.observability.impact import read_impact
from airflow_obs.observability.settings import PluginSettings, settings
from airflow_obs.observability.trace_context import hex_trace_id, trace_id_of_run
from airflow_obs.observability.trace_store import DAG_ID
from airflow_obs.observability.waterfall import format_seconds
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

HERE = Path(__file__).parent
STATIC_ROUTE = "/static"
STATIC_PATH = links.MONITORING_APP_PREFIX + STATIC_ROUTE
MISSED_SCHEDULE_ALERT = "AirflowDagMissedSchedule"

_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def seconds(value: float | None) -> str:
    return "" if value is None else format_seconds(value)


def span_of_time(seconds: float) -> str:
    """Whole units a person reads at a glance: '16s', '3m 20s', '5h 02m', '2d 4h'."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def ago(moment: datetime | None) -> str:
    """'3m 20s ago' (or 'in 40s' for a future moment); '' for none."""
    if moment is None:
        return ""
    delta = (_now() - moment).total_seconds()
    return f"{span_of_time(delta)} ago" if delta >= 0 else f"in {span_of_time(-delta)}"


def when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S %Z} ({ago(moment)})"


def _render(name: str, **values: Any) -> HTMLResponse:
    page = _templates.get_template(name).render(
        static=STATIC_PATH, ago=ago, seconds=seconds, span=span_of_time, when=when, **values
    )
    return HTMLResponse(page)


def _page_links(obs: PluginSettings) -> dict[str, Any]:
    """The link builders every page uses (all from `links`, relative to the console when they are its own)."""
    return {
        "dag_page": lambda dag_id: links.console_dag_url(obs, dag_id),
        "run_url": lambda *ids: links.dag_run_url(obs, *ids),
        "alertmanager_url": obs.alertmanager_url,
    }


def dag_page(obs: PluginSettings, session: Any, dag_id: str) -> HTMLResponse:
    runs = dag_facts.recent_runs(session, dag_id)
    freshness = dag_facts.freshness(session, dag_id, runs)
    try:
        baseline, baseline_missing = prometheus.baseline_seconds(obs, dag_id), "No baseline learned yet."
    except prometheus.PrometheusUnavailable as missing:
        baseline, baseline_missing = None, f"No baseline to compare with: {missing}."
    latest = runs[0] if runs else None
    spans, rows, trace_error, trace_id = [], [], "No run yet, so no trace.", ""
    if latest is not None:
        trace_id = hex_trace_id(trace_id_of_run(dag_id, latest.run_id))
        try:
            spans = trace_spans(obs, trace_id)
            rows, trace_error = waterfall_rows(spans), ""
        except (TraceUnavailable, ValueError) as missing:
            if latest.state in ("queued", "running"):
                trace_error = f"The run is {latest.state}: its spans are written as its tries end."
            else:
                trace_error = f"No trace to show: {missing}."
    oldest_first = list(reversed(runs))
    return _render(
        "dag.html",
        title=f"{dag_id} · on-call",
        crumbs=(("On-call", links.console_url(obs)),),
        dag_id=dag_id,
        runs=runs,
        latest_run=latest,
        trouble=dag_facts.task_trouble(session, dag_id, [run.run_id for run in runs]),
        freshness=freshness,
        overdue=freshness.overdue_seconds(_now()) if freshness else 0.0,
        alerts=read_alerts(obs, [dag_matcher(dag_id)]),
        # The same impact the DAG's pages carry (impact.py), read the same way.
        impact=read_impact(obs, dag_id, prometheus.READ_TIMEOUT_SECONDS),
        impact_known=bool(obs.prometheus_url),
        baseline=baseline,
        baseline_missing=baseline_missing,
        chart={
            "labels": [run.run_id for run in oldest_first],
            "seconds": [run.duration_seconds for run in oldest_first],
            "states": [run.state for run in oldest_first],
            "baseline": baseline,
        },
        rows=rows,
        trace_error=trace_error,
        trace_total=total_duration(spans),
        trace_link=links.trace_url(obs, trace_id) if trace_id and obs.grafana_url else "",
        airflow_dag_url=links.dag_url(obs, dag_id),
        grafana_url=links.dag_dashboard_url(obs, dag_id) if obs.grafana_url else "",
        log_url=lambda task: links.task_log_url(
            obs, dag_id, task.latest_failed_run_id, task.task_id, task.latest_failed_try, task.latest_failed_map_index
        ),
        **_page_links(obs),
    )


def overview_page(obs: PluginSettings, session: Any, readable: set[str]) -> HTMLResponse:
    alerts = read_alerts(obs)
    # Alerts about a DAG the user may not read are not shown; alerts about no DAG (components) are.
    alerts = AlertsView(
        [alert for alert in alerts.alerts if not alert.dag_id or alert.dag_id in readable], alerts.error
    )
    health = get_airflow_health()
    missed = {alert.dag_id for alert in alerts.in_state("firing") if alert.name == MISSED_SCHEDULE_ALERT}
    overdue = overview_facts.overdue_seconds(session, readable, _now())
    return _render(
        "overview.html",
        title="On-call",
        crumbs=(),
        alerts=alerts,
        airflow_health={name: (health.get(name) or {}).get("status") for name in health},
        targets=prometheus.targets(obs),
        failing=overview_facts.failing_dags(session, readable),
        failing_log_url=lambda dag: links.task_log_url(
            obs, dag.dag_id, dag.run_id, dag.task_id, dag.try_number, dag.map_index
        ),
        late=sorted(overdue.items(), key=lambda item: -item[1]),
        missed=missed,
        grafana_url=links.dashboard_url(obs, links.OVERVIEW_DASHBOARD_UID) if obs.grafana_url else "",
        **_page_links(obs),
    )


def _may_read_runs(user: Any, dag_id: str) -> bool:
    return get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )


def create_app() -> FastAPI:
    # No docs or OpenAPI: the pages are for people, and the REST API documents itself elsewhere.
    app = FastAPI(title="airflow-obs console", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount(STATIC_ROUTE, StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(StarletteHTTPException)
    async def login_first(request: Request, exc: StarletteHTTPException) -> Response:
        """No session, or an expired one: a 401 whose page sends a browser on to Airflow's login, which comes back
        here afterwards (a script or a probe sees the 401). Refusals and errors stay what they are."""
        if exc.status_code == 401:
            login = get_auth_manager().get_url_login(next_url=str(request.url))
            page = _templates.get_template("sign_in.html").render(login=login, static=STATIC_PATH, title="Sign in")
            return HTMLResponse(page, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)

    may_see_airflow = [Depends(requires_access_view(AccessView.WEBSITE))]

    @app.get(
        links.MONITORING_PAGE_ROUTE,
        response_class=HTMLResponse,
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))],
    )
    def dag_console(dag_id: str, session: SessionDep) -> HTMLResponse:
        return dag_page(settings(), session, dag_id)

    @app.get(links.CONSOLE_ROUTE, response_class=HTMLResponse, dependencies=may_see_airflow)
    def console(session: SessionDep, user: GetUserDep) -> HTMLResponse:
        readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
        return overview_page(settings(), session, set(readable))

    @app.get(links.TRACE_PAGE_ROUTE, response_class=HTMLResponse, dependencies=may_see_airflow)
    def trace(trace_id: str, user: GetUserDep) -> HTMLResponse:
        obs = settings()
        try:
            spans = trace_spans(obs, trace_id.lower())
        except ValueError as bad:
            raise HTTPException(400, str(bad)) from None
        except TraceUnavailable as missing:
            spans, error = [], f"{missing}."
        else:
            error = ""
        # A trace names its DAG on every span: it is shown only to who may read that DAG's runs.
        dag_ids = {str(span.attributes[DAG_ID]) for span in spans if span.attributes.get(DAG_ID)}
        if not all(_may_read_runs(user, dag_id) for dag_id in dag_ids):
            raise HTTPException(403, "Forbidden")
        return _render(
            "trace.html",
            title=f"trace {trace_id}",
            crumbs=(("On-call", links.console_url(obs)),),
            trace_id=trace_id,
            rows=waterfall_rows(spans),
            trace_total=total_duration(spans),
            trace_link="",
            trace_error=error,
        )

    @app.get(links.RUNBOOK_PAGES_ROUTE + "/", response_class=HTMLResponse, dependencies=may_see_airflow)
    def runbook_index() -> HTMLResponse:
        return _runbook(INDEX)

    @app.get(links.RUNBOOK_PAGES_ROUTE + "/{name}.md", response_class=HTMLResponse, dependencies=may_see_airflow)
    def runbook(name: str) -> HTMLResponse:
        return _runbook(name)

    return app


def _runbook(name: str) -> HTMLResponse:
    try:
        body = render_markdown(settings().runbooks_path, name)
    except RunbookNotFound as missing:
        raise HTTPException(404, str(missing)) from None
    crumbs = (("Runbooks", "./"),) if name != INDEX else ()
    return _render("runbook.html", title="Runbooks" if name == INDEX else name, crumbs=crumbs, body=body)
