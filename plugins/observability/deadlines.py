"""The callback of a DAG's Deadline Alert: a missed deadline is paged like every other alert, through the router.

A DAG names it in its `DeadlineAlert` (Airflow 3's successor of SLAs):

    DeadlineAlert(reference=..., interval=..., callback=AsyncCallback(deadline_missed, kwargs={"owner": o, "team": t}))

It is an AsyncCallback, so it runs in the triggerer, the component Airflow 3.1+ runs every deadline callback in
(3.2 added SyncCallback, which runs as an executor workload: it would wait for a free worker slot, and a missed
deadline often means the workers are busy or stuck). The scheduler marks the deadline missed and queues the
callback; the triggerer awaits it with the run's summary (`context["dag_run"]`) and the deadline (`["deadline"]`).
The post to Alertmanager (or, when it cannot take it, the direct sinks) is blocking HTTP, so it runs in a thread:
the triggerer's event loop keeps serving deferred tasks meanwhile.

The alert (`AirflowDagRunDeadlineMissed`) is the same incident as the exporter's `AirflowDagDeadlineMissed`
(its count of missed deadlines), seen sooner and with the run's link: Alertmanager mutes the exporter's while
this one fires (alert_rules/alertmanager.yml), so this one must outlive it: it ends by itself `MISS_MARGIN`
after the exporter's rule stops counting the miss (`deadline_window`, alert_rules/alerting/thresholds.py).
If the triggerer is down, no callback runs and the exporter's alert pages instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_obs.alerting.thresholds import THRESHOLDS, env_var, seconds
from airflow_obs.observability.events import DagRunEvent
from airflow_obs.observability.impact import read_impact
from airflow_obs.observability.notify import alerts, messages, router
from airflow_obs.observability.notify.redaction import redact
from airflow_obs.observability.settings import PluginSettings, settings

log = logging.getLogger("airflow_obs.notify")

CALLBACK_PATH = "airflow_obs.observability.deadlines.deadline_missed"
# Past the exporter's window: its scrape and Prometheus's evaluation and notification delay, with room to spare.
MISS_MARGIN = timedelta(minutes=5)
DEADLINE_WINDOW = "deadline_window"


def exporter_window(environ: Mapping[str, str] = os.environ) -> timedelta:
    """How long the exporter's AirflowDagDeadlineMissed fires after a miss, as this deployment's rules say."""
    raw = environ.get(env_var(DEADLINE_WINDOW), "").strip() or THRESHOLDS[DEADLINE_WINDOW].default
    window = float(seconds(raw))
    if window <= 0:  # not a duration: the rules refuse it too (thresholds.resolve), so take the default
        window = float(seconds(THRESHOLDS[DEADLINE_WINDOW].default))
    return timedelta(seconds=window)


def alert_lifetime(environ: Mapping[str, str] = os.environ) -> timedelta:
    return exporter_window(environ) + MISS_MARGIN


def _moment(value: Any) -> datetime | None:
    """A datetime from the callback's context: a datetime, or ISO text once it has been through JSON."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = alerts.parse_iso(str(value or ""))
        if moment is None:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _duration(delta: timedelta) -> str:
    total = max(0, int(delta.total_seconds()))
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")


def build_alert(
    current: PluginSettings, context: dict[str, Any], owner: str = "", team: str = "", deadline: str = ""
) -> tuple[alerts.Alert, DagRunEvent, str]:
    """The alert, the run it is about and its description, from the context Airflow hands the callback."""
    run = context.get("dag_run") or {}
    found = context.get("deadline") or {}
    event = DagRunEvent(
        dag_id=str(run.get("dag_id") or ""),
        run_id=str(run.get("dag_run_id") or run.get("run_id") or ""),
        state=str(run.get("state") or "unknown"),
        run_type=str(run.get("run_type") or ""),
        owner=owner,
        team=team,
        start_date=_moment(run.get("start_date")),
        end_date=_moment(run.get("end_date")),
        error="",
    )
    now = alerts.now_utc()
    deadline_at = _moment(found.get("deadline_time")) or now
    late = _duration(now - deadline_at)
    named = f"deadline {deadline!r}" if deadline else "its deadline"
    summary = f"A run of DAG {event.dag_id} missed {named} by {late}."
    queued = _moment(run.get("queued_at"))
    since = f", {_duration(deadline_at - queued)} after it was queued" if queued else ""
    where = (
        f"it ended {event.state} without succeeding in time"
        if event.end_date is not None
        else f"it is still {event.state}"
    )
    description = (
        f"Run {event.run_id} of {event.dag_id} had to succeed by {alerts.iso(deadline_at)}{since} ({named}); "
        f"{late} later {where}. Whoever relies on its data does not have it yet: the runbook says what to check."
    )
    impact = read_impact(current, event.dag_id)  # who waits downstream for the late data
    alert = alerts.dag_run_deadline_missed(current, event, summary, description, deadline_at, alert_lifetime(), impact)
    return alert, event, description


def page_deadline_miss(context: dict[str, Any], owner: str = "", team: str = "", deadline: str = "") -> str:
    """Raise the alert through the router, now; returns where it went (router.ALERTMANAGER, DIRECT, SPOOLED...)."""
    try:
        current = settings()
        alert, event, description = build_alert(current, context, owner, team, deadline)
    except Exception as error:  # a damaged context must not fail the triggerer's callback without a trace
        log.error("missed deadline of %r could not be paged: %s", context.get("dag_run"), type(error).__name__,
                  exc_info=True)  # fmt: skip
        return router.NOWHERE

    def direct(secrets: tuple[str, ...]) -> messages.Notification:
        return messages.deadline_notification(current, event, redact(description, secrets))

    deadline_id = str((context.get("deadline") or {}).get("id") or event.run_id)
    identity = f"deadline\x1f{event.dag_id}\x1f{deadline_id}"
    (where,) = router.page(current, [router.Page(alert, identity, direct)])
    log.info("missed deadline of %s run %s: alert %s", event.dag_id, event.run_id, where)
    return where


async def deadline_missed(
    context: dict[str, Any] | None = None, owner: str = "", team: str = "", deadline: str = "", **_: Any
) -> str:
    """The Deadline Alert callback (AsyncCallback, in the triggerer): page the miss off the event loop."""
    return await asyncio.to_thread(page_deadline_miss, context or {}, owner, team, deadline)
