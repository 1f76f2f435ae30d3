"""Where a page goes: to Alertmanager, the one router of every alert, or, when it cannot take it, straight to the sinks.

- With `[observability] alertmanager_api_url` set, a page is an alert posted to Alertmanager: its routes, grouping,
  inhibitions and silences then apply as they do to Prometheus's alerts.
- If Alertmanager cannot take a firing alert within half the budget (down, hanging, 5xx, or it refused it), the
  page goes to the configured Slack, email and webhook sinks directly, and says so in the log. The alert is not
  also queued for Alertmanager: it would page a second time when Alertmanager comes back. With no direct sink
  configured, the alert itself is spooled and redelivered to Alertmanager.
- A resolved alert is spooled when Alertmanager is down (it cannot page twice: Alertmanager only sends "resolved"
  to receivers it told about the firing alert).
- With no Alertmanager configured, every page goes to the sinks directly (deployments without Alertmanager).

Nothing here raises: the caller is a listener, and telemetry never changes a task's outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from airflow_obs.observability.notify import messages
from airflow_obs.observability.notify.alertmanager import SINK, alertmanager_sink
from airflow_obs.observability.notify.alerts import Alert
from airflow_obs.observability.notify.delivery import Outcome, deliver
from airflow_obs.observability.notify.redaction import redact
from airflow_obs.observability.notify.retries import DeliveryError, Policy, send_with_retries
from airflow_obs.observability.notify.sinks import prepare_sinks
from airflow_obs.observability.notify.spool import Spool, new_envelope
from airflow_obs.observability.settings import PluginSettings

log = logging.getLogger("airflow_obs.notify")

# Share of a page's budget Alertmanager may use before the page goes to the sinks directly.
ROUTER_SHARE = 0.5
# Pages already sent by this process (a listener and a callback, or two listeners, reporting one try).
_RECENT_LIMIT = 1024
_recent: OrderedDict[str, None] = OrderedDict()
_recent_lock = threading.Lock()

ALERTMANAGER, DIRECT, SPOOLED, DUPLICATE, NOWHERE = "alertmanager", "direct", "spooled", "duplicate", "nowhere"


def _first_time(identity: str) -> bool:
    with _recent_lock:
        if identity in _recent:
            return False
        _recent[identity] = None
        while len(_recent) > _RECENT_LIMIT:
            _recent.popitem(last=False)
        return True


def _direct(current: PluginSettings, build: Callable[[tuple[str, ...]], messages.Notification], deadline: float):
    """Build the notification (given the secrets it must not show) and deliver it to every enabled sink."""
    sinks = prepare_sinks(current)
    if not sinks.names:
        return []
    note = build(sinks.secrets)
    return deliver(
        sinks.envelopes(note, current),
        sinks.senders,
        spool=Spool(current.spool_path),
        policy=Policy.from_settings(current),
        deadline=deadline,
        unavailable=sinks.unavailable,
    )


def _spool_for_alertmanager(current: PluginSettings, alert: Alert, deadline: float) -> list[Outcome]:
    """Deliver through the spool: what Alertmanager does not take now waits there for the reconciler's next pass."""
    envelope = new_envelope(alert.key.replace(":", "-").replace("/", "-"), SINK, {"alerts": [alert.body()]})
    sink = alertmanager_sink(current.alertmanager_api_url)
    return deliver(
        [envelope], {SINK: sink.send}, spool=Spool(current.spool_path), policy=Policy.from_settings(current),
        deadline=deadline,
    )  # fmt: skip


def _post_now(current: PluginSettings, alerts: list[Alert], deadline: float) -> DeliveryError | None:
    sink = alertmanager_sink(current.alertmanager_api_url)
    envelope = new_envelope("post", SINK, {"alerts": [alert.body() for alert in alerts]})
    try:
        send_with_retries(sink.send, envelope, policy=Policy.from_settings(current), deadline=deadline)
    except DeliveryError as error:
        return error
    return None


@dataclass(frozen=True)
class Page:
    """One firing alert to raise: once per `identity` in this process; `direct` builds it for the sinks."""

    alert: Alert
    identity: str
    direct: Callable[[tuple[str, ...]], messages.Notification]


def page(current: PluginSettings, pages: list[Page], budget_seconds: float | None = None) -> list[str]:
    """Raise firing alerts, in one request to Alertmanager (tries one cause failed arrive together, so Alertmanager
    sends them in one notification); returns where each went (for logs and the trace)."""
    where = [DUPLICATE if not _first_time(item.identity) else NOWHERE for item in pages]
    fresh = [item for item, went in zip(pages, where, strict=True) if went != DUPLICATE]
    try:
        if fresh:
            outcome = _raise(current, fresh, budget_seconds)
            where = [outcome if went != DUPLICATE else went for went in where]
    except Exception as error:  # never reach Airflow; the spool and logs say what happened to each message
        log.error("alerts %s could not be raised: %s", _keys(fresh), type(error).__name__, exc_info=True)
    return where


def _keys(pages: list[Page]) -> str:
    return ", ".join(item.alert.key for item in pages)


def _raise(current: PluginSettings, pages: list[Page], budget_seconds: float | None) -> str:
    budget = current.notify_timeout_seconds if budget_seconds is None else budget_seconds
    started = time.monotonic()
    deadline = started + budget
    if not current.routes_through_alertmanager:
        sent = [bool(_direct(current, item.direct, deadline)) for item in pages]
        if all(sent):
            return DIRECT
        log.warning("alerts %s reach nobody: no Alertmanager and no Slack, email or webhook is set", _keys(pages))
        return NOWHERE
    error = _post_now(current, [item.alert for item in pages], started + budget * ROUTER_SHARE)
    if error is None:
        log.info("alerts %s posted to Alertmanager", _keys(pages))
        return ALERTMANAGER
    reason = redact(error.reason)
    if prepare_sinks(current).names:
        log.warning(
            "Alertmanager did not take alerts %s (%s): paging Slack, email and the webhook directly instead",
            _keys(pages),
            reason,
        )
        for item in pages:
            _direct(current, item.direct, deadline)
        return DIRECT
    log.warning("Alertmanager did not take alerts %s (%s) and no direct sink is set: spooled", _keys(pages), reason)
    for item in pages:
        _spool_for_alertmanager(current, item.alert, deadline)
    return SPOOLED


def page_directly(
    current: PluginSettings, identity: str, build: Callable[[tuple[str, ...]], messages.Notification]
) -> str:
    """A message only the sinks can carry (a recovery after a page that bypassed Alertmanager), once per identity."""
    try:
        if not _first_time(identity):
            return DUPLICATE
        outcomes = _direct(current, build, time.monotonic() + current.notify_timeout_seconds)
        return DIRECT if outcomes else NOWHERE
    except Exception as error:
        log.error("message %s could not be sent: %s", identity.split("\x1f")[0], type(error).__name__, exc_info=True)
        return NOWHERE


def update(current: PluginSettings, alerts: list[Alert], budget_seconds: float | None = None) -> None:
    """Post alerts that cannot page twice (resolutions, renewals, the recovery marker); spooled while Alertmanager
    is down, since Alertmanager only tells "resolved" to receivers it told about the firing alert."""
    if not alerts or not current.routes_through_alertmanager:
        return
    budget = current.notify_timeout_seconds if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    for alert in alerts:
        try:
            outcomes = _spool_for_alertmanager(current, alert, deadline)
            if all(outcome.status == "delivered" for outcome in outcomes):
                log.info("alert %s %s in Alertmanager", alert.key, "resolved" if alert.resolved else "renewed")
        except Exception as error:
            log.error("alert %s could not be updated: %s", alert.key, type(error).__name__, exc_info=True)
