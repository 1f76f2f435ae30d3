"""The plugin's alerts as Alertmanager receives them (`POST /api/v2/alerts`): what failed, for whom, and where to look.

Three alerts, each identified by its labels (Alertmanager merges posts with the same labels into one alert, so
the same failure posted twice, by two processes or after a retry of the post, pages once):

    AirflowTaskFailed    {dag_id, task_id, error_fingerprint}  a task's last try failed (no retry left)   critical
    AirflowDagRunFailed  {dag_id, error_fingerprint}           a run failed with no task failing          critical
    AirflowDagRecovered  {dag_id}                              a DAG succeeded again: routed to nobody, it only
                                                               mutes the exporter's DAG-level alerts until
                                                               Prometheus has seen the success

Run id, try and map index are annotations, not labels: the next failure of the same task with the same error is
the same incident, and a label per run would make every run a new page. `error_fingerprint` (fingerprint.py) is
a label: Alertmanager groups by it, so one cause failing many tasks is one notification, and two causes are two.

A firing alert carries an end time (`FIRING_TTL`), so an alert nobody resolves (its DAG deleted) ends by itself;
the scheduler's reconciler renews it while the failure holds and ends it when the task or the DAG succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_obs.observability import links
from airflow_obs.observability.events import DagRunEvent, TaskEvent
from airflow_obs.observability.impact import NO_IMPACT, Impact
from airflow_obs.observability.notify import messages
from airflow_obs.observability.notify.fingerprint import fingerprint
from airflow_obs.observability.settings import PluginSettings

TASK_FAILED = "AirflowTaskFailed"
DAG_RUN_FAILED = "AirflowDagRunFailed"
DAG_RECOVERED = "AirflowDagRecovered"
PLUGIN_ALERTS = (TASK_FAILED, DAG_RUN_FAILED, DAG_RECOVERED)
# A Deadline Alert's callback posts it (observability/deadlines.py). Not in PLUGIN_ALERTS: the reconciler does not
# renew or resolve it; it ends by itself (its `ends_at`), as the exporter's alert about the same miss does.
DAG_RUN_DEADLINE_MISSED = "AirflowDagRunDeadlineMissed"
# Routing reads the severity (alert_rules/alertmanager.yml); the marker's "none" matches no severity route.
SEVERITY = {
    TASK_FAILED: "critical",
    DAG_RUN_FAILED: "critical",
    DAG_RECOVERED: "none",
    DAG_RUN_DEADLINE_MISSED: "warning",
}

# How long a posted firing alert lasts unless renewed: long enough to outlive a scheduler restart, short enough
# that an alert whose DAG was deleted does not fire for days. The reconciler renews it at half-life.
FIRING_TTL = timedelta(hours=6)
# How long the recovery marker holds after a DAG succeeds: past the exporter's scrape and the rule's evaluation,
# so the exporter's "latest run failed" cannot page in between.
RECOVERY_HOLD = timedelta(minutes=10)

# Annotations the reconciler reads back from Alertmanager to decide what still holds.
FAILED_AT = "failed_at"
RUN_ID = "run_id"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:  # Airflow's dates are UTC; a naive one is too
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


@dataclass(frozen=True)
class Alert:
    """One alert document; `key` names it in logs and the spool (never a secret)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    generator_url: str = ""

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    @property
    def key(self) -> str:
        where = ".".join(self.labels[name] for name in ("dag_id", "task_id") if self.labels.get(name))
        return f"{self.name}:{where}"

    @property
    def resolved(self) -> bool:
        return self.ends_at <= now_utc()

    def body(self) -> dict[str, Any]:
        """The JSON Alertmanager takes. Empty labels are left out: Alertmanager reads an empty label as absent."""
        document: dict[str, Any] = {
            "labels": {name: value for name, value in self.labels.items() if value},
            "annotations": {name: value for name, value in self.annotations.items() if value},
            "startsAt": iso(self.starts_at),
            "endsAt": iso(self.ends_at),
        }
        if self.generator_url:
            document["generatorURL"] = self.generator_url
        return document

    def ended(self, at: datetime | None = None) -> Alert:
        """The same alert, resolved: Alertmanager sends "resolved" to every receiver that was told it fired."""
        return Alert(self.labels, self.annotations, self.starts_at, at or now_utc(), self.generator_url)

    def renewed(self, at: datetime | None = None, lasting: timedelta = FIRING_TTL) -> Alert:
        return Alert(self.labels, self.annotations, self.starts_at, (at or now_utc()) + lasting, self.generator_url)


def _labels(settings: PluginSettings, name: str, severity: str, event: TaskEvent | DagRunEvent, **more: str):
    return {
        "alertname": name,
        "dag_id": event.dag_id,
        **more,
        "severity": severity,
        "owner": event.owner,
        "team": event.team,
        "environment": settings.environment,
    }


def task_failed(
    settings: PluginSettings, event: TaskEvent, trace_id: str, cause: str = "", impact: Impact = NO_IMPACT
) -> Alert:
    """A task failed for good: the try's log link, its redacted error, the DAG's dashboard, trace and runbook, and
    what the failure affects downstream (impact.py).

    `cause`, when given, is a fixed text the error fingerprint is taken from instead of the error itself."""
    found = links.links_for_try(settings, event, trace_id, TASK_FAILED)
    target = f"{event.dag_id}.{event.task_id}" + (f"[{event.map_index}]" if event.map_index >= 0 else "")
    tries = event.max_tries + 1
    try_text = f"try {event.try_number} of {tries}" if tries >= event.try_number > 0 else f"try {event.try_number}"
    failed_at = event.end_date or now_utc()
    return Alert(
        labels=_labels(
            settings,
            TASK_FAILED,
            SEVERITY[TASK_FAILED],
            event,
            task_id=event.task_id,
            # A fixed cause is fingerprinted as it is: the failing task's ids are not in it to be replaced.
            error_fingerprint=fingerprint(cause)
            if cause
            else fingerprint(event.error, dag_id=event.dag_id, task_id=event.task_id, run_id=event.run_id),
        ),
        annotations={
            "summary": f"Task {target} failed for good ({try_text}).",
            "description": (
                f"The last try of {target} in run {event.run_id} failed and no retry is left: the run fails and "
                "its downstream tasks do not run. The task log has the error; the runbook says what to do."
            ),
            "error": event.error,
            RUN_ID: event.run_id,
            "try_number": str(event.try_number),
            "map_index": str(event.map_index) if event.map_index >= 0 else "",
            FAILED_AT: iso(failed_at),
            "airflow_url": found["log"],
            "log_url": found["log"],
            "dashboard_url": found["dashboard"],
            "trace_url": found["trace"] if trace_id else "",
            "runbook_url": found["runbook"],
            **impact.annotations(),
        },
        starts_at=failed_at,
        ends_at=now_utc() + FIRING_TTL,
        generator_url=found["log"],
    )


def dag_run_failed(
    settings: PluginSettings, event: DagRunEvent, why: str, trace_id: str, impact: Impact = NO_IMPACT
) -> Alert:
    """A run failed and no task failed for good (timed out, deadlocked, set failed by hand): no task alert covers it."""
    run_url = links.dag_run_url(settings, event.dag_id, event.run_id)
    failed_at = event.end_date or now_utc()
    return Alert(
        labels=_labels(
            settings,
            DAG_RUN_FAILED,
            SEVERITY[DAG_RUN_FAILED],
            event,
            error_fingerprint=fingerprint(why, dag_id=event.dag_id, run_id=event.run_id),
        ),
        annotations={
            "summary": f"A run of DAG {event.dag_id} failed without a task failing.",
            "description": why,
            RUN_ID: event.run_id,
            FAILED_AT: iso(failed_at),
            "airflow_url": run_url,
            "dashboard_url": links.dag_dashboard_url(settings, event.dag_id),
            "trace_url": links.trace_url(settings, trace_id) if trace_id else "",
            "runbook_url": links.runbook_url(settings, messages.RUNBOOK_DAG_RUN_FAILED),
            **impact.annotations(),
        },
        starts_at=failed_at,
        ends_at=now_utc() + FIRING_TTL,
        generator_url=run_url,
    )


def dag_recovered(
    settings: PluginSettings, dag_id: str, owner: str, team: str, run_id: str, at: datetime | None = None
) -> Alert:
    """The marker that holds the exporter's DAG-level alerts back while Prometheus catches up with a success."""
    now = at or now_utc()
    event = DagRunEvent(dag_id, run_id, "success", "", owner, team, None, None, "")
    return Alert(
        labels=_labels(settings, DAG_RECOVERED, SEVERITY[DAG_RECOVERED], event),
        annotations={
            "summary": f"DAG {dag_id} succeeded again.",
            "description": "Routed to nobody: it mutes the exporter's DAG-level failure alerts until they resolve.",
            RUN_ID: run_id,
            "airflow_url": links.dag_run_url(settings, dag_id, run_id) if run_id else links.dag_url(settings, dag_id),
            "runbook_url": links.runbook_url(settings, messages.RUNBOOK_DAG_RECOVERED),
        },
        starts_at=now,
        ends_at=now + RECOVERY_HOLD,
    )


def dag_run_deadline_missed(
    settings: PluginSettings,
    event: DagRunEvent,
    summary: str,
    description: str,
    deadline_at: datetime,
    lasting: timedelta,
    impact: Impact = NO_IMPACT,
) -> Alert:
    """A run passed a Deadline Alert's time before succeeding: the run, the freshness dashboard, the runbook, and who
    waits downstream for its data (impact.py)."""
    run_url = links.dag_run_url(settings, event.dag_id, event.run_id)
    now = now_utc()
    return Alert(
        labels=_labels(settings, DAG_RUN_DEADLINE_MISSED, SEVERITY[DAG_RUN_DEADLINE_MISSED], event),
        annotations={
            "summary": summary,
            "description": description,
            RUN_ID: event.run_id,
            "deadline_at": iso(deadline_at),
            "airflow_url": run_url,
            # The freshness dashboard holds the "Deadline misses" panel (the exporter's alert links it too).
            "dashboard_url": links.dashboard_url(settings, links.FRESHNESS_DASHBOARD_UID),
            "runbook_url": links.runbook_url(settings, messages.RUNBOOK_DAG_RUN_DEADLINE_MISSED),
            **impact.annotations(),
        },
        starts_at=now,
        ends_at=now + lasting,
        generator_url=run_url,
    )


def from_alertmanager(document: dict[str, Any]) -> Alert | None:
    """An alert as `GET /api/v2/alerts` returns it (None if it is not one of ours or is damaged)."""
    labels = {str(name): str(value) for name, value in (document.get("labels") or {}).items()}
    starts, ends = parse_iso(str(document.get("startsAt", ""))), parse_iso(str(document.get("endsAt", "")))
    if labels.get("alertname") not in PLUGIN_ALERTS or not labels.get("dag_id") or starts is None or ends is None:
        return None
    annotations = {str(name): str(value) for name, value in (document.get("annotations") or {}).items()}
    return Alert(labels, annotations, starts, ends, str(document.get("generatorURL") or ""))
