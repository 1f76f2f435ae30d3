"""A small client of Airflow's REST API (/api/v2) for tasks, which may not touch the metadata DB themselves.

It logs in with the `airflow_api` connection's login/password (`POST /auth/token`, a read-only viewer account is
enough) and pages through list endpoints with limit/offset, a bounded number of pages.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import requests

from dag_suite import connections
from dag_suite.monitoring.endpoints import Endpoint, endpoint

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # Airflow's default [api] maximum_page_limit
MAX_PAGES = 100  # 10,000 rows per listing: more is a sign the window or the filters are wrong
TIMEOUT = (5.0, 30.0)
DAG_RUN_FIELDS = ("dag_id", "dag_run_id", "state", "run_type", "run_after", "start_date", "end_date", "duration")
TASK_INSTANCE_FIELDS = ("dag_id", "dag_run_id", "task_id", "map_index", "state", "try_number")


class AirflowApiError(RuntimeError):
    """The REST API refused or failed a request; the message names the URL and the status."""


class AirflowApi:
    def __init__(self, target: Endpoint, timeout: tuple[float, float] = TIMEOUT) -> None:
        if not target.login or not target.password:
            raise AirflowApiError(
                f"connection {target.conn_id} has no login/password: it needs a (viewer) account of the API"
            )
        self.target = target
        self.timeout = timeout
        self.session = requests.Session()

    @classmethod
    def from_connection(cls, conn_id: str = connections.AIRFLOW_API) -> AirflowApi:
        return cls(endpoint(conn_id))

    def login(self) -> None:
        url = self.target.url("/auth/token")
        body = {"username": self.target.login, "password": self.target.password}
        response = self.session.post(url, json=body, timeout=self.timeout)
        if response.status_code not in (200, 201):
            raise AirflowApiError(
                f"POST {url} as {self.target.login!r} answered HTTP {response.status_code}: check the password "
                f"of connection {self.target.conn_id}"
            )
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if "Authorization" not in self.session.headers:
            self.login()
        url = self.target.url(path)
        response = self.session.get(url, params=params, timeout=self.timeout)
        if response.status_code != 200:
            raise AirflowApiError(f"GET {url} answered HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    def list_all(self, path: str, key: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """Every item of a paginated listing (up to MAX_PAGES pages) and whether it was cut short."""
        items: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            body = self.get(path, {**params, "limit": PAGE_SIZE, "offset": page * PAGE_SIZE})
            batch = body.get(key) or []
            items.extend(batch)
            total = body.get("total_entries")
            if len(batch) < PAGE_SIZE or (total is not None and len(items) >= total):
                return items, False
        log.warning("%s: stopped after %d pages (%d items); the report is truncated", path, MAX_PAGES, len(items))
        return items, True


def _window(start: datetime, end: datetime) -> dict[str, str]:
    return {"run_after_gte": start.isoformat(), "run_after_lt": end.isoformat()}


def _pick(item: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {field: item.get(field) for field in fields}


def dag_runs(api: AirflowApi, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], bool]:
    """DAG runs of every DAG whose run_after is in [start, end): GET /api/v2/dags/~/dagRuns."""
    runs, truncated = api.list_all("/api/v2/dags/~/dagRuns", "dag_runs", {**_window(start, end), "order_by": "id"})
    return [_pick(run, DAG_RUN_FIELDS) for run in runs], truncated


def failed_task_instances(api: AirflowApi, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], bool]:
    """Failed task instances of runs in [start, end): GET /api/v2/dags/~/dagRuns/~/taskInstances?state=failed."""
    params = {**_window(start, end), "state": "failed", "order_by": "id"}
    tis, truncated = api.list_all("/api/v2/dags/~/dagRuns/~/taskInstances", "task_instances", params)
    return [_pick(ti, TASK_INSTANCE_FIELDS) for ti in tis], truncated
