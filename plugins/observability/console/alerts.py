"""The alerts the console shows, read from Alertmanager's API: the router of every alert, so what it holds is what
paged (or was silenced, or muted by a cause) whichever of Prometheus or the plugin raised it.

Read with a short timeout: the console must open while Alertmanager is down, saying so, rather than hang.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_obs.observability import links
from airflow_obs.observability.notify.alertmanager import AlertmanagerAPI, describe
from airflow_obs.observability.notify.alerts import DAG_RECOVERED
from airflow_obs.observability.settings import PluginSettings

READ_TIMEOUT_SECONDS = 2.0
NO_TEAM = "no team"
# Always firing or routed to nobody, and never a problem: the pipeline's heartbeat and the recovery marker.
NOT_PROBLEMS = frozenset({"Watchdog", DAG_RECOVERED})


@dataclass(frozen=True)
class ShownAlert:
    name: str
    state: str  # firing, silenced or inhibited
    severity: str
    dag_id: str
    task_id: str
    team: str
    summary: str
    since: datetime | None
    labels: dict[str, str]
    runbook_url: str
    log_url: str
    silence_url: str


@dataclass
class AlertsView:
    alerts: list[ShownAlert] = field(default_factory=list)
    error: str = ""  # Alertmanager could not be read: why, for the page to say

    def in_state(self, state: str) -> list[ShownAlert]:
        return [alert for alert in self.alerts if alert.state == state]

    def by_team(self) -> dict[str, list[ShownAlert]]:
        """Firing alerts by team, teams in name order and the alerts without one last."""
        teams: dict[str, list[ShownAlert]] = defaultdict(list)
        for alert in self.in_state("firing"):
            teams[alert.team].append(alert)
        return dict(sorted(teams.items(), key=lambda item: (item[0] == NO_TEAM, item[0])))


def _state(alert: dict[str, Any]) -> str:
    status = alert.get("status") or {}
    if status.get("silencedBy"):
        return "silenced"
    if status.get("inhibitedBy"):
        return "inhibited"
    return "firing"


def _since(raw: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None


def shown(settings: PluginSettings, alert: dict[str, Any]) -> ShownAlert:
    labels = {str(key): str(value) for key, value in (alert.get("labels") or {}).items()}
    annotations = {str(key): str(value) for key, value in (alert.get("annotations") or {}).items()}
    name = labels.get("alertname", "")
    return ShownAlert(
        name=name,
        state=_state(alert),
        severity=labels.get("severity", ""),
        dag_id=labels.get("dag_id", ""),
        task_id=labels.get("task_id", ""),
        team=labels.get("team") or NO_TEAM,
        summary=annotations.get("summary", ""),
        since=_since(alert.get("startsAt")),
        labels=labels,
        runbook_url=annotations.get("runbook_url") or links.runbook_url(settings, name),
        log_url=annotations.get("log_url", ""),
        silence_url=links.alertmanager_silence_url(settings, labels),
    )


def read_alerts(settings: PluginSettings, matchers: list[str] | None = None) -> AlertsView:
    """Every unresolved alert matching `matchers` (all of them without), newest first; never raises."""
    api = AlertmanagerAPI(settings.alertmanager_api_url or settings.alertmanager_url)
    try:
        found = api.alerts(matchers or [], READ_TIMEOUT_SECONDS)
    except Exception as error:  # the page says what went wrong instead of failing
        return AlertsView(error=f"Alertmanager at {api.base_url} could not be read: {describe(error, api.secrets)}")
    alerts = [
        shown(settings, alert) for alert in found if (alert.get("labels") or {}).get("alertname") not in NOT_PROBLEMS
    ]
    alerts.sort(key=lambda alert: alert.since.timestamp() if alert.since else 0.0, reverse=True)
    return AlertsView(alerts)


def dag_matcher(dag_id: str) -> str:
    return links.label_matcher("dag_id", dag_id)
