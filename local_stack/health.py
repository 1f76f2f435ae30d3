"""Health checks of each component of the local stack, as the README and `make status` describe them."""

from __future__ import annotations

import http.client
import json
import smtplib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from local_stack import redis_broker
from local_stack.programs import CELERY_WORKERS
from local_stack.settings import LOOPBACK, REPO_ROOT, StackSettings

AIRFLOW_HEALTH_PATH = "/api/v2/monitor/health"
AIRFLOW_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


def _get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we built
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _guard(check: Callable[[], Health]) -> Callable[[], Health]:
    def guarded() -> Health:
        try:
            return check()
        # HTTPException: a server still starting can close a response early (IncompleteRead).
        except (OSError, ValueError, KeyError, smtplib.SMTPException, http.client.HTTPException) as exc:
            return Health(False, f"{type(exc).__name__}: {exc}")

    return guarded


def airflow_health(settings: StackSettings) -> Health:
    status, body = _get(settings.url("airflow") + AIRFLOW_HEALTH_PATH)
    if status != 200:
        return Health(False, f"HTTP {status}")
    report = json.loads(body)
    states = {name: (report.get(name) or {}).get("status") for name in AIRFLOW_COMPONENTS}
    unhealthy = [f"{name}={state}" for name, state in states.items() if state != "healthy"]
    return Health(not unhealthy, ", ".join(unhealthy) or "metadatabase, scheduler, triggerer, dag_processor healthy")


def exporter_health(settings: StackSettings) -> Health:
    status, _ = _get(settings.url("exporter") + "/healthz")
    if status != 200:
        return Health(False, f"/healthz HTTP {status}")
    status, metrics = _get(settings.url("exporter") + "/metrics")
    if status != 200 or "airflow_up 1.0" not in metrics:
        return Health(False, f"/metrics HTTP {status}, airflow_up is not 1")
    return Health(True, "/metrics serving, airflow_up 1")


def expected_rule_groups(rules_dir: Path = REPO_ROOT / "alert_rules") -> set[str]:
    names: set[str] = set()
    for path in sorted(rules_dir.glob("*.rules.yml")):
        names.update(group["name"] for group in yaml.safe_load(path.read_text())["groups"])
    return names


def prometheus_health(settings: StackSettings) -> Health:
    base = settings.url("prometheus")
    status, _ = _get(base + "/-/ready")
    if status != 200:
        return Health(False, f"/-/ready HTTP {status}")
    targets = json.loads(_get(base + "/api/v1/targets")[1])["data"]["activeTargets"]
    down = [f"{t['labels']['job']}={t['health']}" for t in targets if t["health"] != "up"]
    groups = json.loads(_get(base + "/api/v1/rules")[1])["data"]["groups"]
    missing = expected_rule_groups() - {g["name"] for g in groups}
    problems = ([f"targets not up: {', '.join(down)}"] if down else []) + (
        [f"rule groups not loaded: {', '.join(sorted(missing))}"] if missing else []
    )
    if problems:
        return Health(False, "; ".join(problems))
    return Health(True, f"{len(targets)} targets up, {len(groups)} rule groups loaded")


def alertmanager_health(settings: StackSettings) -> Health:
    status, _ = _get(settings.url("alertmanager") + "/-/ready")
    return Health(status == 200, f"/-/ready HTTP {status}")


def node_exporter_health(settings: StackSettings) -> Health:
    status, _ = _get(settings.url("node_exporter") + "/metrics")
    return Health(status == 200, f"/metrics HTTP {status}")


def http_healthz(component: str) -> Callable[[StackSettings], Health]:
    def check(settings: StackSettings) -> Health:
        status, _ = _get(settings.url(component) + "/healthz")
        return Health(status == 200, f"/healthz HTTP {status}")

    return check


def smtp_capture_health(settings: StackSettings) -> Health:
    with smtplib.SMTP(LOOPBACK, settings.ports["smtp_capture"], timeout=3) as client:
        code, _ = client.noop()
    return Health(code == 250, f"NOOP answered {code}")


def postgres_health(settings: StackSettings) -> Health:
    from local_stack.postgres import superuser_connection

    try:
        superuser_connection(settings).close()
    except Exception as exc:  # psycopg2.OperationalError and friends
        return Health(False, str(exc).strip().splitlines()[0])
    return Health(True, "accepting connections")


def metrics_contain(component: str, sample: str) -> Callable[[StackSettings], Health]:
    """An exporter is healthy when its /metrics has `sample`: it serves, and it reaches what it watches."""

    def check(settings: StackSettings) -> Health:
        status, metrics = _get(settings.url(component) + "/metrics")
        if status != 200:
            return Health(False, f"/metrics HTTP {status}")
        if sample not in metrics:
            return Health(False, f"/metrics serving, but no `{sample}`")
        return Health(True, f"/metrics serving, {sample}")

    return check


def redis_health(settings: StackSettings) -> Health:
    try:
        return Health(redis_broker.ping(settings), "answers PING")
    except Exception as exc:  # redis.ConnectionError, AuthenticationError...
        return Health(False, f"{type(exc).__name__}: {exc}")


def flower_health(settings: StackSettings) -> Health:
    status, body = _get(settings.url("flower") + "/healthcheck")
    return Health(status == 200 and body.strip() == "OK", f"/healthcheck HTTP {status}")


def celery_worker_health(celery_name: str) -> Callable[[StackSettings], Health]:
    """A worker is healthy when Flower has its heartbeat: it is connected to the broker and consuming."""

    def check(settings: StackSettings) -> Health:
        status, metrics = _get(settings.url("flower") + "/metrics")
        if status != 200:
            return Health(False, f"Flower, which reports worker liveness, answered HTTP {status}")
        if f'flower_worker_online{{worker="{celery_name}"}} 1.0' not in metrics:
            return Health(False, f"Flower has no heartbeat from {celery_name}")
        return Health(True, f"online in Flower as {celery_name}")

    return check


# Supervisor program name -> its health check. Programs of one component share Airflow's check.
CHECKS: dict[str, Callable[[StackSettings], Health]] = {
    "postgres": postgres_health,
    "airflow-api-server": airflow_health,
    "airflow-scheduler": airflow_health,
    "airflow-dag-processor": airflow_health,
    "airflow-triggerer": airflow_health,
    "exporter": exporter_health,
    "prometheus": prometheus_health,
    "alertmanager": alertmanager_health,
    "node-exporter": node_exporter_health,
    "slack-capture": http_healthz("slack_capture"),
    "webhook-capture": http_healthz("webhook_capture"),
    "smtp-capture": smtp_capture_health,
    "source-api": http_healthz("source_api"),
    "postgres-exporter": metrics_contain("postgres_exporter", "pg_up 1"),
    "redis": redis_health,
    "redis-exporter": metrics_contain("redis_exporter", "redis_up 1"),
    "airflow-celery-flower": flower_health,
    **{worker.program: celery_worker_health(worker.celery_name) for worker in CELERY_WORKERS},
}


def check(program: str, settings: StackSettings) -> Health:
    """Run `program`'s health check; never raises for a component that is down."""
    return _guard(lambda: CHECKS[program](settings))()
