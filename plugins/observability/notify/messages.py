"""What a notification says: one neutral `Notification`, rendered as Slack Block Kit, an email and a JSON body.

Every URL comes from `observability.links`. The error is redacted before it gets here (events.py, and with each
sink's own secrets in paging.py), and each renderer escapes for its own medium, so a task's error text can never
add markup or links.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_obs.observability import links
from airflow_obs.observability.events import DagRunEvent, TaskEvent
from airflow_obs.observability.impact import NO_IMPACT, Impact
from airflow_obs.observability.settings import PluginSettings

# The runbook each kind of message links to (runbooks/<name>.md).
RUNBOOK_TASK_FAILED = "AirflowTaskFailed"
RUNBOOK_DAG_RECOVERED = "AirflowDagRecovered"
RUNBOOK_DAG_RUN_FAILED = "AirflowDagRunFailed"
RUNBOOK_DAG_RUN_DEADLINE_MISSED = "AirflowDagRunDeadlineMissed"

TASK_FAILED = "task_failed"
DAG_RUN_FAILED = "dag_run_failed"
DAG_RECOVERED = "dag_recovered"
DEADLINE_MISSED = "deadline_missed"

# kind -> (severity, headline verb, Slack emoji)
KINDS: dict[str, tuple[str, str, str]] = {
    TASK_FAILED: ("critical", "failed", ":red_circle:"),
    DAG_RUN_FAILED: ("critical", "run failed", ":red_circle:"),
    DAG_RECOVERED: ("resolved", "recovered", ":large_green_circle:"),
    DEADLINE_MISSED: ("warning", "missed its deadline", ":warning:"),
}

WEBHOOK_SCHEMA = "airflow-obs.notification/v1"

# Button labels, in the order buttons appear.
LINK_LABELS = {
    "log": "Task log",
    "run": "DAG run",
    "failed_run": "Failed run",
    "dashboard": "Dashboard",
    "trace": "Trace",
    "runbook": "Runbook",
}


def trace_id_for(dag_id: str, run_id: str) -> str:
    """The run's trace id, or "" while tracing is unavailable (the trace link is then left out)."""
    try:
        from airflow_obs.observability.tracing import trace_id_for_run
    except ImportError:
        return ""
    try:
        return str(trace_id_for_run(dag_id, run_id) or "")
    except Exception:  # a link less is better than a message less
        return ""


@dataclass(frozen=True)
class Notification:
    """One message for on-call engineers, before it is shaped for a sink."""

    id: str  # stable for the same try or recovery: receivers may deduplicate on it
    kind: str
    dag_id: str
    run_id: str
    owner: str
    team: str
    error: str
    links: dict[str, str]
    task_id: str = ""
    map_index: int = -1
    try_number: int = 0
    max_tries: int = 0
    previous_run_id: str = ""
    affects: str = ""  # impact.py: the DAGs and teams downstream of the failure
    upstream_failing: str = ""  # impact.py: a failing DAG upstream that may explain this one
    occurred_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]

    @property
    def subject(self) -> str:
        """Short: the Slack fallback text, the email subject."""
        target = f"{self.dag_id}.{self.task_id}" if self.task_id else self.dag_id
        if self.map_index >= 0:
            target += f"[{self.map_index}]"
        what = f"{'Task' if self.task_id else 'DAG'} {target} {KINDS[self.kind][1]}"
        return f"{what} (try {self.try_display})" if self.task_id else what

    @property
    def try_display(self) -> str:
        total = self.max_tries + 1  # max_tries counts retries; the first try is not one
        return f"{self.try_number} of {total}" if total >= self.try_number > 0 else str(self.try_number)

    def facts(self) -> list[tuple[str, str]]:
        """The labelled facts every rendering shows, in order."""
        rows = [("DAG", self.dag_id)]
        if self.task_id:
            rows.append(("Task", self.task_id))
            if self.map_index >= 0:
                rows.append(("Map index", str(self.map_index)))
            rows.append(("Try", self.try_display))
        rows.append(("Run", self.run_id))
        if self.previous_run_id:
            rows.append(("Failed run", self.previous_run_id))
        rows.append(("Owner", self.owner or "-"))
        if self.team:
            rows.append(("Team", self.team))
        if self.affects:
            rows.append(("Affects", self.affects))
        if self.upstream_failing:
            rows.append(("Upstream failing", self.upstream_failing))
        return rows


def _notification_id(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:20]


def _without_empty_trace(found: dict[str, str], trace_id: str) -> dict[str, str]:
    return {name: url for name, url in found.items() if name != "trace" or trace_id}


def _about_run(kind: str, event: DagRunEvent, error: str, found: dict[str, str], **more: Any) -> Notification:
    """A message about one DAG run (failed, late, recovered): one id per kind and run."""
    return Notification(
        id=_notification_id(kind, event.dag_id, event.run_id),
        kind=kind,
        dag_id=event.dag_id,
        run_id=event.run_id,
        owner=event.owner,
        team=event.team,
        error=error,
        links=found,
        **more,
    )


def task_notification(
    settings: PluginSettings, event: TaskEvent, kind: str, trace_id: str, impact: Impact = NO_IMPACT
) -> Notification:
    """A task's final failure, as the sinks get it when it is paged directly."""
    found = links.links_for_try(settings, event, trace_id, RUNBOOK_TASK_FAILED)
    return Notification(
        id=_notification_id(kind, event.dag_id, event.run_id, event.task_id, event.map_index, event.try_number),
        kind=kind,
        dag_id=event.dag_id,
        run_id=event.run_id,
        owner=event.owner,
        team=event.team,
        error=event.error,
        links=_without_empty_trace(found, trace_id),
        task_id=event.task_id,
        map_index=event.map_index,
        try_number=event.try_number,
        max_tries=event.max_tries,
        affects=impact.affects_text(),
        upstream_failing=impact.upstream_text(),
    )


def recovery_notification(
    settings: PluginSettings, event: DagRunEvent, failed_run_id: str, trace_id: str
) -> Notification:
    """A DAG whose last run failed has succeeded again."""
    found = {
        "run": links.dag_run_url(settings, event.dag_id, event.run_id),
        "failed_run": links.dag_run_url(settings, event.dag_id, failed_run_id) if failed_run_id else "",
        "dashboard": links.dag_dashboard_url(settings, event.dag_id),
        "trace": links.trace_url(settings, trace_id),
        "runbook": links.runbook_url(settings, RUNBOOK_DAG_RECOVERED),
    }
    shown = {name: url for name, url in _without_empty_trace(found, trace_id).items() if url}
    return _about_run(DAG_RECOVERED, event, "", shown, previous_run_id=failed_run_id)


# Why Airflow failed a run (the DAG callback's `reason`) when no task failure explains it.
TASK_FAILURE_REASON = "task_failure"  # a task failed for good: its own page already went out
MANUAL_REASON = "manually set"  # the api-server's "Dag Run's state was manually set to `failed`."
RUN_FAILURE_REASONS = {
    "timed_out": "The run exceeded its dagrun_timeout{timeout}: the scheduler failed it and skipped its unfinished "
    "tasks.",
    "all_tasks_deadlocked": "No task of the run could be scheduled any more (deadlocked): check trigger rules and "
    "upstream states.",
}


def run_failure_reason(reason: str | None, dagrun_timeout: object = None) -> str:
    """What to tell the engineer about a run that failed for `reason` (Airflow's words when we have none)."""
    template = RUN_FAILURE_REASONS.get(reason or "")
    if template is None:
        return f"The run failed ({reason or 'no reason given'}) without a task failing for good."
    return template.format(timeout=f" ({dagrun_timeout})" if dagrun_timeout else "")


def run_failure_notification(
    settings: PluginSettings, event: DagRunEvent, why: str, trace_id: str, impact: Impact = NO_IMPACT
) -> Notification:
    """A run that failed with no task failing for good (timed out, deadlocked): no task page covers it."""
    found = {
        "run": links.dag_run_url(settings, event.dag_id, event.run_id),
        "dashboard": links.dag_dashboard_url(settings, event.dag_id),
        "trace": links.trace_url(settings, trace_id),
        "runbook": links.runbook_url(settings, RUNBOOK_DAG_RUN_FAILED),
    }
    return _about_run(
        DAG_RUN_FAILED,
        event,
        why,
        _without_empty_trace(found, trace_id),
        affects=impact.affects_text(),
        upstream_failing=impact.upstream_text(),
    )


def deadline_notification(settings: PluginSettings, event: DagRunEvent, description: str) -> Notification:
    """A run that missed a Deadline Alert, as the sinks get it when Alertmanager cannot take the alert."""
    found = {
        "run": links.dag_run_url(settings, event.dag_id, event.run_id),
        "dashboard": links.dashboard_url(settings, links.FRESHNESS_DASHBOARD_UID),
        "runbook": links.runbook_url(settings, RUNBOOK_DAG_RUN_DEADLINE_MISSED),
    }
    return _about_run(DEADLINE_MISSED, event, description, found)


# --- Slack (Block Kit) ---------------------------------------------------------------------------------
# Limits from Slack's Block Kit reference: header 150 chars, field 2000, section text 3000,
# button text 75, button URL 3000.


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    """Text Slack shows literally: its control characters escaped, no way to open a link or mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(note: Notification) -> dict[str, Any]:
    """An incoming-webhook body: a header, the facts, the error and one button per link."""
    emoji = KINDS[note.kind][2]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(f"{emoji} {note.subject}", 150), "emoji": True}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{label}*\n{_mrkdwn(value)}", 2000)} for label, value in note.facts()
            ][:10],
        },
    ]
    if note.error:
        error = _mrkdwn(note.error).replace("```", "'''")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"*Error*\n```{error}```", 3000)}})
    buttons = [
        {
            "type": "button",
            "action_id": f"airflow_obs_{name}",
            "text": {"type": "plain_text", "text": LINK_LABELS.get(name, name)},
            "url": url,
            **({"style": "primary"} if name in ("log", "run") else {}),
        }
        for name, url in note.links.items()
        if len(url) <= 3000
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    context = f"severity: {note.severity} · team: {note.team or '-'} · {note.occurred_at}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(context)}]})
    return {"text": note.subject, "blocks": blocks}


# --- Email -----------------------------------------------------------------------------------------------


def email_content(note: Notification) -> dict[str, str]:
    """Subject and HTML body; every value is escaped, links are the notification's own."""
    tag = {"critical": "FAILED", "warning": "LATE", "resolved": "RECOVERED"}[note.severity]
    rows = "".join(
        f"<tr><th align='left'>{html.escape(label)}</th><td><code>{html.escape(value)}</code></td></tr>"
        for label, value in note.facts()
    )
    error = f"<h3>Error</h3><pre>{html.escape(note.error)}</pre>" if note.error else ""
    anchors = " | ".join(
        f'<a href="{html.escape(url, quote=True)}">{html.escape(LINK_LABELS.get(name, name))}</a>'
        for name, url in note.links.items()
    )
    body = (
        f"<html><body><h2>{html.escape(note.subject)}</h2><table>{rows}</table>{error}"
        f"<p>{anchors}</p><p><small>severity: {html.escape(note.severity)} · {html.escape(note.occurred_at)}"
        f" · id {html.escape(note.id)}</small></p></body></html>"
    )
    return {"subject": f"[Airflow {tag}] {note.subject}", "html": body}


# --- Generic webhook ---------------------------------------------------------------------------------------


def webhook_payload(note: Notification) -> dict[str, Any]:
    """A flat, versioned JSON document; `links` holds the same URLs as the Slack buttons."""
    return {
        "schema": WEBHOOK_SCHEMA,
        "id": note.id,
        "kind": note.kind,
        "severity": note.severity,
        "summary": note.subject,
        "occurred_at": note.occurred_at,
        "dag_id": note.dag_id,
        "run_id": note.run_id,
        "task_id": note.task_id or None,
        "map_index": note.map_index if note.task_id else None,
        "try_number": note.try_number if note.task_id else None,
        "max_tries": note.max_tries if note.task_id else None,
        "previous_run_id": note.previous_run_id or None,
        "owner": note.owner,
        "team": note.team,
        "error": note.error,
        "affects": note.affects or None,
        "upstream_failing": note.upstream_failing or None,
        "links": dict(note.links),
    }
