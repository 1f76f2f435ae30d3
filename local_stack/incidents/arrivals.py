"""Alertmanager's notifications as they reach the local captures: which alert, firing or resolved, to which sink.

The captures record everything (the plugin's direct messages too); these are the ones Alertmanager sent:
- Slack: an incoming-webhook body with `attachments`, titled "[FIRING:n] Alertname · dag_id" (templates/slack.tmpl);
- email: the same words as the subject (templates/email.tmpl);
- webhooks: Alertmanager's own JSON (version 4) on the pager and heartbeat paths.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from local_stack.captures.recorder import read_records
from local_stack.settings import StackSettings

_TITLE = re.compile(r"^\[(?P<status>FIRING|RESOLVED)(?::\d+)?\] (?P<alertname>\S+)(?: · (?P<dag_id>\S+))?")


@dataclass(frozen=True)
class Arrival:
    sink: str  # slack, email, pager, heartbeat
    alertname: str
    status: str  # firing or resolved
    dag_id: str
    received_at: datetime
    links: dict[str, str]  # button or link text -> URL, where the sink carries them
    record: dict[str, Any]

    def describe(self) -> str:
        where = f" · {self.dag_id}" if self.dag_id else ""
        return f"{self.received_at:%H:%M:%S} {self.sink:<9} {self.status.upper():<8} {self.alertname}{where}"


def _at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["received_at"])


def _from_title(sink: str, title: str, record: dict[str, Any], links: dict[str, str]) -> Arrival | None:
    match = _TITLE.match(title or "")
    if not match:
        return None
    return Arrival(sink, match["alertname"], match["status"].lower(), match["dag_id"] or "", _at(record), links, record)


def _slack(record: dict[str, Any]) -> Arrival | None:
    body = record.get("body")
    if not isinstance(body, dict) or not body.get("attachments"):
        return None  # the plugin's Block Kit messages have blocks, not attachments
    attachment = body["attachments"][0]
    links = {action.get("text", ""): action.get("url", "") for action in attachment.get("actions") or []}
    return _from_title("slack", attachment.get("title", ""), record, links)


def _email(record: dict[str, Any]) -> Arrival | None:
    found = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', record.get("html") or "")
    links = {html.unescape(text): html.unescape(url) for url, text in found}
    return _from_title("email", record.get("subject") or "", record, links)


def _webhook(record: dict[str, Any]) -> list[Arrival]:
    body = record.get("body")
    if not isinstance(body, dict) or "alerts" not in body or "groupKey" not in body:
        return []  # not Alertmanager's (the plugin's webhook carries its own schema)
    sink = record.get("path", "").strip("/") or "webhook"
    return [
        Arrival(
            sink,
            alert["labels"].get("alertname", ""),
            alert.get("status", body.get("status", "")),
            alert["labels"].get("dag_id", ""),
            _at(record),
            {key: value for key, value in alert.get("annotations", {}).items() if key.endswith("_url")},
            record,
        )
        for alert in body["alerts"]
    ]


def alertmanager_arrivals(settings: StackSettings) -> list[Arrival]:
    """Every Alertmanager notification the captures hold, oldest first (one per alert for webhooks)."""
    arrivals: list[Arrival] = []
    for record in read_records(settings.capture_file("slack")):
        if found := _slack(record):
            arrivals.append(found)
    for record in read_records(settings.capture_file("smtp")):
        if found := _email(record):
            arrivals.append(found)
    for record in read_records(settings.capture_file("webhook")):
        arrivals.extend(_webhook(record))
    return sorted(arrivals, key=lambda arrival: arrival.received_at)
