"""Health checks of the stack's components, each reached through its connection id with a short timeout.

A check never raises for a component that is down or unconfigured: it returns an unhealthy CheckResult whose
`detail` says why, so the caller can record it and decide what fails.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import requests

from dag_suite import connections
from dag_suite.monitoring.endpoints import ConnectionNotConfigured, endpoint

AIRFLOW_HEALTH_PATH = "/api/v2/monitor/health"
# Airflow's own components in its health report (besides the metadatabase, which is its own row).
AIRFLOW_COMPONENTS = ("scheduler", "triggerer", "dag_processor")
# Component name -> (connection id, path answering 200 when ready). Airflow's check is separate (JSON body).
READY_PATHS = {
    "prometheus": (connections.PROMETHEUS, "/-/ready"),
    "alertmanager": (connections.ALERTMANAGER, "/-/ready"),
    "exporter": (connections.EXPORTER, "/healthz"),
}
COMPONENTS = ("airflow_api", "metadata_db", *READY_PATHS)
DEFAULT_TIMEOUT = (3.0, 5.0)  # seconds: connect, read


@dataclass(frozen=True)
class CheckResult:
    component: str
    healthy: bool
    latency_ms: float | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _short(exc: Exception, limit: int = 200) -> str:
    """The exception's type and the part of requests' long message that says what happened."""
    text = str(exc)
    if isinstance(exc, requests.ConnectionError) and (errno := re.search(r"\[Errno -?\d+\][^'\")]*", text)):
        text = errno.group(0).strip()
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _timed_get(url: str, timeout: tuple[float, float]) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.get(url, timeout=timeout)
    return response, round((time.monotonic() - started) * 1000, 1)


def check_ready(component: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> CheckResult:
    """GET the component's readiness path; healthy on HTTP 200."""
    conn_id, path = READY_PATHS[component]
    try:
        url = endpoint(conn_id).url(path)
    except ConnectionNotConfigured as exc:
        return CheckResult(component, False, None, str(exc))
    try:
        response, latency = _timed_get(url, timeout)
    except requests.RequestException as exc:
        return CheckResult(component, False, None, f"GET {url} failed: {_short(exc)}")
    if response.status_code != 200:
        return CheckResult(component, False, latency, f"GET {url} answered HTTP {response.status_code}")
    return CheckResult(component, True, latency, f"GET {path} answered HTTP 200")


def _status(report: dict[str, Any], name: str) -> str:
    status = (report.get(name) or {}).get("status")
    return status or "not reported"


def check_airflow(timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> list[CheckResult]:
    """Airflow's API health report: one result for the API (and its scheduler, triggerer, dag-processor), one
    for the metadata DB as the API reports it. If the API cannot be asked, the DB's state is unknown: unhealthy."""
    try:
        url = endpoint(connections.AIRFLOW_API).url(AIRFLOW_HEALTH_PATH)
    except ConnectionNotConfigured as exc:
        return [CheckResult("airflow_api", False, None, str(exc)), CheckResult("metadata_db", False, None, str(exc))]
    try:
        response, latency = _timed_get(url, timeout)
        report = response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError) as exc:
        detail = f"GET {url} failed: {_short(exc)}"
        return [CheckResult("airflow_api", False, None, detail), CheckResult("metadata_db", False, None, detail)]
    if not isinstance(report, dict):
        detail = f"GET {url} answered HTTP {response.status_code}" + ("" if report is None else " without JSON object")
        unknown = f"unknown: {detail}"
        return [CheckResult("airflow_api", False, latency, detail), CheckResult("metadata_db", False, None, unknown)]
    states = {name: _status(report, name) for name in AIRFLOW_COMPONENTS}
    unhealthy = [f"{name}={state}" for name, state in states.items() if state != "healthy"]
    api = CheckResult(
        "airflow_api",
        not unhealthy,
        latency,
        ", ".join(unhealthy) if unhealthy else f"{', '.join(AIRFLOW_COMPONENTS)} healthy",
    )
    db_state = _status(report, "metadatabase")
    db = CheckResult("metadata_db", db_state == "healthy", None, f"metadatabase={db_state} (Airflow's health report)")
    return [api, db]


def check_stack(timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> list[CheckResult]:
    """Every component's result, in COMPONENTS order."""
    return [*check_airflow(timeout), *(check_ready(component, timeout) for component in READY_PATHS)]


def pretend_down(results: list[dict[str, Any]], component: str) -> list[dict[str, Any]]:
    """The `bad_data` demo fault: `component` reported unhealthy, with a detail that says it is a demo."""
    demo = {"healthy": False, "detail": "demo fault switch bad_data: reported down on purpose"}
    return [{**r, **demo} if r["component"] == component else r for r in results]
