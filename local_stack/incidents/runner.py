"""Run one scenario on a running stack: inject, wait for the alert on every sink its route names, recover,
wait for the resolved message; report what arrived and how long it took."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import yaml
from airflow_obs.observability.notify import alerts as plugin_alerts

from local_stack.incidents.arrivals import Arrival, alertmanager_arrivals
from local_stack.incidents.client import IncidentError, StackClient
from local_stack.incidents.scenarios import Scenario
from local_stack.settings import StackSettings

AMTOOL = "/usr/bin/amtool"


@dataclass
class Report:
    scenario: str
    injected_at: datetime
    firing: list[Arrival] = field(default_factory=list)
    resolved: list[Arrival] = field(default_factory=list)
    expected_sinks: dict[str, set[str]] = field(default_factory=dict)  # alertname -> sinks its route names
    recovered_at: datetime | None = None  # when recovery began
    context: dict = field(default_factory=dict)  # what inject() returned (runs, Alertmanager's view...)
    started_at: datetime | None = None  # when inject() began (it may wait for what it caused, such as a failed run)

    def first_notification_seconds(self) -> float | None:
        times = [arrival.received_at for arrival in self.firing]
        return (min(times) - self.injected_at).total_seconds() if times else None

    def seconds_from_start(self) -> float | None:
        """From the start of the fault (inject's first step) to the first notification."""
        times = [arrival.received_at for arrival in self.firing]
        return (min(times) - self.started_at).total_seconds() if times and self.started_at else None


def _alert_labels(settings: StackSettings, alertname: str) -> dict[str, str]:
    """The labels routing looks at, as the stack's rendered rules give them (severity, fixed labels), or as the
    plugin posts them for its own alerts."""
    if alertname in plugin_alerts.SEVERITY:
        return {"alertname": alertname, "severity": plugin_alerts.SEVERITY[alertname]}
    for path in sorted((settings.generated_dir / "rules").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == alertname:
                    return {"alertname": alertname, **rule.get("labels", {})}
    raise IncidentError(f"alert {alertname} is not in the stack's rules ({settings.generated_dir / 'rules'})")


def _routed_receivers(settings: StackSettings, labels: dict[str, str]) -> list[dict]:
    """The receivers Alertmanager routes these labels to, asked of amtool on the stack's rendered config."""
    config_path = settings.generated_dir / "alertmanager.yml"
    result = subprocess.run(
        [AMTOOL, "config", "routes", "test", f"--config.file={config_path}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise IncidentError(f"amtool could not route {labels}: {result.stderr.strip() or result.stdout.strip()}")
    names = {name.strip() for name in result.stdout.strip().split(",") if name.strip()}
    return [receiver for receiver in yaml.safe_load(config_path.read_text())["receivers"] if receiver["name"] in names]


def _sinks(receivers: list[dict], resolved_only: bool = False) -> set[str]:
    """Capture sinks of these receivers (slack, email, and a webhook by its path: pager, heartbeat)."""
    sinks: set[str] = set()
    for receiver in receivers:
        for key, sink in (("slack_configs", "slack"), ("email_configs", "email")):
            # Alertmanager's defaults: send_resolved is off for Slack and email, on for webhooks.
            if any(item.get("send_resolved", False) or not resolved_only for item in receiver.get(key, [])):
                sinks.add(sink)
        for hook in receiver.get("webhook_configs", []):
            if hook.get("send_resolved", True) or not resolved_only:
                sinks.add(urlsplit(hook["url"]).path.strip("/") or "webhook")
    return sinks


def expected_sinks(settings: StackSettings, labels: dict[str, str]) -> set[str]:
    return _sinks(_routed_receivers(settings, labels))


def _arrived(
    settings: StackSettings, since: datetime, alerts: dict[str, set[str]], status: str, dags: tuple[str, ...]
) -> list[Arrival]:
    return [
        arrival
        for arrival in alertmanager_arrivals(settings)
        if arrival.received_at >= since
        and arrival.status == status
        and arrival.alertname in alerts
        # A notification about several DAGs names none in its title: it counts for the scenario's DAGs.
        and (not dags or arrival.dag_id in ("", *dags))
    ]


def _wait_everywhere(
    settings: StackSettings,
    since: datetime,
    alerts: dict[str, set[str]],
    status: str,
    dags: tuple[str, ...],
    timeout: float,
    show: Callable[[Arrival], None],
) -> list[Arrival]:
    deadline = time.monotonic() + timeout
    shown: set[tuple[str, str, datetime]] = set()
    while True:
        arrivals = _arrived(settings, since, alerts, status, dags)
        for arrival in arrivals:
            key = (arrival.sink, arrival.alertname, arrival.received_at)
            if key not in shown:
                shown.add(key)
                show(arrival)
        got = {(arrival.alertname, arrival.sink) for arrival in arrivals}
        missing = [(name, sink) for name, sinks in alerts.items() for sink in sinks if (name, sink) not in got]
        if not missing:
            return arrivals
        if time.monotonic() > deadline:
            raise IncidentError(f"after {timeout:.0f}s still no {status} notification for {missing}")
        time.sleep(1)


def active_alerts(settings: StackSettings, scenario: Scenario) -> list[str] | None:
    """The scenario's alerts Alertmanager holds now (for its DAG only, when it is about one); None if it is down."""
    status, alerts = StackClient(settings)._request("GET", settings.url("alertmanager") + "/api/v2/alerts?active=true")  # noqa: SLF001
    if status != 200:
        return None
    return sorted(
        alert["labels"]["alertname"]
        for alert in alerts
        if alert["labels"]["alertname"] in scenario.alerts
        and (not scenario.dags or alert["labels"].get("dag_id") in scenario.dags)
    )


def wait_until_quiet(settings: StackSettings, scenario: Scenario, timeout: float = 180.0) -> None:
    """Until the scenario's own alerts are resolved (from start-up or an earlier scenario), so every message about
    them that arrives next is the scenario's. Other alerts may fire meanwhile: a fresh stack runs the suite's DAGs."""
    deadline = time.monotonic() + timeout
    while (active := active_alerts(settings, scenario)) != []:
        if time.monotonic() > deadline:
            raise IncidentError(
                f"{active or scenario.alerts} still active after {timeout:.0f}s, before {scenario.name}"
            )
        time.sleep(2)


def run_scenario(
    settings: StackSettings,
    scenario: Scenario,
    *,
    fire_timeout: float = 300.0,
    resolve_timeout: float = 300.0,
    recover: bool = True,
    show: Callable[[Arrival], None] = lambda arrival: None,
    settle_seconds: float = 0.0,
    while_firing: Callable[[Report], None] = lambda report: None,
) -> Report:
    """Inject, wait for every expected firing notification, optionally recover and wait for the resolved ones.

    `settle_seconds` waits that long after the last arrival before reading the captures again, so that a
    duplicate (which must not come) would be in the report. `while_firing` runs once the firing notifications are
    in, before recovery: a look at the incident while it lasts (the console, say).
    """
    if scenario.postgres_only and settings.db != "postgres":
        raise IncidentError(f"scenario {scenario.name} needs a PostgreSQL stack (AIRFLOW_OBS_DB=postgres)")
    if scenario.celery_only and settings.executor != "celery":
        raise IncidentError(f"scenario {scenario.name} needs the Celery stack (AIRFLOW_OBS_EXECUTOR=celery)")
    client = StackClient(settings)
    alerts = {name: expected_sinks(settings, _alert_labels(settings, name)) for name in scenario.alerts}
    started = datetime.now(UTC)
    context = scenario.inject(client)
    report = Report(scenario.name, datetime.now(UTC), expected_sinks=alerts, context=context, started_at=started)
    try:
        _wait_everywhere(settings, started, alerts, "firing", scenario.dags, fire_timeout, show)
        time.sleep(settle_seconds)
        report.firing = _arrived(settings, started, alerts, "firing", scenario.dags)
        while_firing(report)
    finally:
        if recover:
            recovered_from = report.recovered_at = datetime.now(UTC)
            scenario.recover(client, context)
    if recover:
        resolving = {name: sinks & _resolving_sinks(settings, name) for name, sinks in alerts.items()}
        _wait_everywhere(settings, recovered_from, resolving, "resolved", scenario.dags, resolve_timeout, show)
        time.sleep(settle_seconds)
        report.resolved = _arrived(settings, recovered_from, resolving, "resolved", scenario.dags)
    return report


def _resolving_sinks(settings: StackSettings, alertname: str) -> set[str]:
    """Sinks of the alert's receivers that send resolved messages."""
    return _sinks(_routed_receivers(settings, _alert_labels(settings, alertname)), resolved_only=True)
