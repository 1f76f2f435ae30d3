"""The DAG-level "Monitoring" page, served by the api-server (a `fastapi_apps` mount) inside the DAG page's tab.

Why a page of our own rather than a view pointing straight at Grafana: the UI only fills in `{DAG_ID}` (and run,
task, map index placeholders on deeper pages), so "the DAG's latest trace" needs a DB read that only a server can
do, and one place to see the dashboard, the firing alerts and that trace beats three tabs. The page is plain HTML
with three links and no script: the UI frames external views in an iframe sandboxed without `allow-popups` or
`allow-top-navigation`, so `target="_blank"` would be dead there; plain links open inside the tab (Alertmanager
allows framing; Grafana needs `allow_embedding`) and in a new browser tab when the page is opened on its own.

It reads run ids, so it is authorised like the REST API's DAG-run endpoints: the Airflow session cookie the
browser sends (same origin) or a bearer token, checked by the auth manager for GET on the DAG's runs.

The same app serves the runbooks (pages/runbooks.py) to anyone who may see Airflow's UI. A browser that arrives from
an alert without a session is sent to Airflow's login page, which brings it back to the page afterwards.
"""

from __future__ import annotations

from html import escape

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import DagAccessEntity, requires_access_dag, requires_access_view
from airflow.models import DagRun
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from observability import links
from observability.pages.runbooks import INDEX, RunbookNotFound, render_runbook
from observability.settings import settings
from observability.trace_context import hex_trace_id, trace_id_of_run


def latest_run_id(session: Session, dag_id: str) -> str | None:
    """The run that would be shown first in the UI's run list: the latest `run_after`, then the newest row."""
    query = (
        select(DagRun.run_id)
        .where(DagRun.dag_id == dag_id)
        .order_by(DagRun.run_after.desc(), DagRun.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def monitoring_links(dag_id: str, run_id: str | None) -> dict[str, str]:
    """Link text -> URL for the page: the dashboard, the firing alerts and, once the DAG has run, its trace."""
    found = {
        "Grafana dashboard": links.dag_dashboard_url(settings(), dag_id),
        "Firing alerts in Alertmanager": links.alertmanager_alerts_url(settings(), dag_id),
    }
    if run_id is not None:
        trace_id = hex_trace_id(trace_id_of_run(dag_id, run_id))
        found[f"Latest trace (run {run_id})"] = links.trace_url(settings(), trace_id)
    return found


def render_page(dag_id: str, run_id: str | None) -> str:
    items = "".join(
        f'<li><a href="{escape(url)}">{escape(text)}</a></li>' for text, url in monitoring_links(dag_id, run_id).items()
    )
    no_run = "" if run_id is not None else "<p>No run yet, so no trace to show.</p>"
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>Monitoring: {escape(dag_id)}</title></head>"
        f"<body><h1>Monitoring: {escape(dag_id)}</h1><ul>{items}</ul>{no_run}</body></html>"
    )


def create_app() -> FastAPI:
    # No docs or OpenAPI: the page is for people, and the REST API documents itself elsewhere.
    app = FastAPI(title="airflow-obs monitoring", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def login_first(request: Request, exc: StarletteHTTPException) -> Response:
        """No session (401) or an expired one: Airflow's login page, back here afterwards. Refusals stay refusals."""
        if exc.status_code == 401:
            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)

    may_see_airflow = [Depends(requires_access_view(AccessView.WEBSITE))]

    @app.get(links.RUNBOOK_PAGES_ROUTE + "/", response_class=HTMLResponse, dependencies=may_see_airflow)
    def runbook_index() -> HTMLResponse:
        return HTMLResponse(render_runbook(settings().runbooks_path, INDEX, "./"))

    @app.get(links.RUNBOOK_PAGES_ROUTE + "/{name}.md", response_class=HTMLResponse, dependencies=may_see_airflow)
    def runbook(name: str) -> HTMLResponse:
        try:
            return HTMLResponse(render_runbook(settings().runbooks_path, name, "./"))
        except RunbookNotFound as missing:
            raise HTTPException(404, str(missing)) from None

    @app.get(
        links.MONITORING_PAGE_ROUTE,
        response_class=HTMLResponse,
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))],
    )
    def monitoring_page(dag_id: str, session: SessionDep) -> HTMLResponse:
        return HTMLResponse(render_page(dag_id, latest_run_id(session, dag_id)))

    return app
