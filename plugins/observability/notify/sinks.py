"""The three destinations, each reached through its Airflow connection, each sorting failures into retry or not.

- slack: the slack provider's incoming-webhook connection (`slackwebhook`: the password is the webhook
  token, or the whole webhook URL). Sent through the provider's SlackWebhookHook client, with its own
  retries off (ours apply) and its logger silenced (slack_sdk logs the URL, which holds the token).
- email: the smtp provider's connection, through SmtpHook with its retries off and our time bound.
- webhook: an `http` connection: the URL is the host when it holds a scheme (as the http provider reads
  it), else `<conn_type>://host[:port]/<schema>` (the URI form `http://:SECRET@host:port/path`). The body
  is signed: `X-Airflow-Obs-Signature: sha256=<hex HMAC-SHA256 of the exact body>`, keyed by the password.

A failure is described by its kind and status only (never `str()` of a network error, which can quote
the URL), and redacted with the sink's secrets on top.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from airflow_obs.observability.notify import messages
from airflow_obs.observability.notify.redaction import redact
from airflow_obs.observability.notify.retries import DeliveryError, Sender
from airflow_obs.observability.notify.spool import Envelope, new_envelope
from airflow_obs.observability.settings import PluginSettings

log = logging.getLogger("airflow_obs.notify")

SIGNATURE_HEADER = "X-Airflow-Obs-Signature"
DELIVERY_HEADER = "X-Airflow-Obs-Delivery"
DEFAULT_FROM = "airflow-observability@localhost"
USER_AGENT = "airflow-observability-notify/1"

# slack_sdk logs its request URL (the token) when its logger is at DEBUG or NOTSET: give it one that never logs.
_SLACK_SDK_LOG = logging.getLogger("airflow_obs.notify.slack_sdk")
_SLACK_SDK_LOG.setLevel(logging.CRITICAL + 1)
_SLACK_SDK_LOG.propagate = False
_SLACK_SDK_LOG.addHandler(logging.NullHandler())


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: receivers recompute it over the raw body and compare in constant time."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds (it may be a number of seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def http_failure(status: int, retry_after: str | None, detail: str = "") -> DeliveryError:
    """5xx and 429 are worth another try (429 after Retry-After); any other 4xx will fail the same way again."""
    reason = f"HTTP {status}" + (f" {detail[:80]}" if detail else "")
    retryable = status >= 500 or status in (408, 429)
    return DeliveryError(reason, retryable=retryable, retry_after=retry_after_seconds(retry_after))


def network_failure(error: BaseException) -> DeliveryError:
    """Refused, reset, timed out, unresolvable: all worth another try. Only the kind is kept."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 5:  # the hooks wrap the socket error: look underneath
        chain.append(current)
        reason = getattr(current, "reason", None) if isinstance(current, urllib.error.URLError) else None
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)
    if any(isinstance(link, TimeoutError) or "timed out" in str(link) for link in chain):
        return DeliveryError("network error: timed out", retryable=True)
    return DeliveryError(f"network error: {type(chain[-1]).__name__}", retryable=True)


@dataclass
class Sink:
    """A destination ready to send: its sender and the secrets nothing may show."""

    name: str
    send: Sender
    secrets: tuple[str, ...] = ()


def _redacted(error: DeliveryError, secrets: Iterable[str]) -> DeliveryError:
    error.reason = redact(error.reason, secrets)
    error.args = (error.reason,)
    return error


def _connection(conn_id: str):
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def _extra_secrets(conn) -> list[str]:
    extra = conn.extra_dejson if conn.extra else {}
    return [str(value) for key, value in extra.items() if any(word in key.lower() for word in ("secret", "token"))]


# --- Slack ---------------------------------------------------------------------------------------------------


def slack_sink(conn_id: str) -> Sink:
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    conn = _connection(conn_id)
    client = SlackWebhookHook(slack_webhook_conn_id=conn_id, retry_handlers=[], logger=_SLACK_SDK_LOG).client
    secrets = (client.url, str(conn.password or "").strip(), *_extra_secrets(conn))

    def send(envelope: Envelope, timeout: float) -> None:
        client.timeout = timeout  # urllib takes a float; one lane (one thread) per client
        try:
            response = client.send_dict(envelope.body)
        except Exception as error:  # URLError, timeouts, resets; SlackRequestError for a bad URL
            if type(error).__name__ == "SlackRequestError":
                raise _redacted(
                    DeliveryError("invalid webhook URL in the connection", retryable=False), secrets
                ) from None
            raise _redacted(network_failure(error), secrets) from None
        if response.status_code != 200:
            headers = {key.lower(): value for key, value in (response.headers or {}).items()}
            retry_after = headers.get("retry-after")
            if isinstance(retry_after, list):
                retry_after = retry_after[0] if retry_after else None
            raise _redacted(http_failure(response.status_code, retry_after, str(response.body or "")), secrets)

    return Sink("slack", send, secrets)


# --- Email ---------------------------------------------------------------------------------------------------


def email_sink(conn_id: str) -> Sink:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    conn = _connection(conn_id)

    class BoundedSmtpHook(SmtpHook):
        """SmtpHook with the connection already read, no retries of its own, and our time bound."""

        attempt_timeout = 5.0

        def get_connection(self, _conn_id):  # the lookup happened on the caller's thread
            return conn

        @property
        def timeout(self) -> float:  # type: ignore[override]
            return min(float(conn.extra_dejson.get("timeout", 30)), self.attempt_timeout)

        @property
        def smtp_retry_limit(self) -> int:
            return 0

    secrets = (str(conn.password or ""), *_extra_secrets(conn))

    def send(envelope: Envelope, timeout: float) -> None:
        hook = BoundedSmtpHook(smtp_conn_id=conn_id)
        hook.attempt_timeout = timeout
        try:
            with hook:
                hook.send_email_smtp(
                    to=list(envelope.body["to"]),
                    subject=envelope.body["subject"],
                    html_content=envelope.body["html"],
                    from_email=hook.from_email or DEFAULT_FROM,
                )
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            refused = DeliveryError(f"SMTP recipients refused {codes}", retryable=min(codes) < 500)
            raise _redacted(refused, secrets) from None
        except smtplib.SMTPResponseException as error:
            # 4xx is "try again later"; 5xx (bad credentials, unknown mailbox, policy) will not change.
            retryable = error.smtp_code < 500
            raise _redacted(DeliveryError(f"SMTP {error.smtp_code}", retryable=retryable), secrets) from None
        except Exception as error:  # refused, disconnected, timed out, the hook's "Unable to connect"
            raise _redacted(network_failure(error), secrets) from None

    return Sink("email", send, secrets)


# --- Generic webhook -------------------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the 3xx it is: a POST must not turn into a GET somewhere else."""

    def redirect_request(self, *args, **kwargs):
        return None


def webhook_url(conn) -> str:
    host = str(conn.host or "")
    if "://" in host:
        return host
    scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{host}{port}/{str(conn.schema or '').lstrip('/')}"


def webhook_sink(conn_id: str) -> Sink:
    conn = _connection(conn_id)
    key = str(conn.password or "")
    if not key:
        raise ValueError(f"connection {conn_id!r} has no password: it keys the webhook's HMAC signature")
    url = webhook_url(conn)
    opener = urllib.request.build_opener(_NoRedirects())
    secrets = (url, key, *_extra_secrets(conn))

    def send(envelope: Envelope, timeout: float) -> None:
        body = webhook_body(envelope.body)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature(key, body),
            DELIVERY_HEADER: envelope.id,
        }
        if not url.startswith(("http://", "https://")):
            raise _redacted(DeliveryError("the webhook connection is not an http(s) URL", retryable=False), secrets)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read()
        except urllib.error.HTTPError as error:
            with error:
                detail = error.read(200).decode("utf-8", errors="replace")
                raise _redacted(http_failure(error.code, error.headers.get("Retry-After"), detail), secrets) from None
        except Exception as error:
            raise _redacted(network_failure(error), secrets) from None

    return Sink("webhook", send, secrets)


# --- All of them -------------------------------------------------------------------------------------------------

RENDERERS: dict[str, Callable[[messages.Notification, PluginSettings], dict[str, Any]]] = {
    "slack": lambda note, settings: messages.slack_payload(note),
    "email": lambda note, settings: {**messages.email_content(note), "to": list(settings.email_to)},
    "webhook": lambda note, settings: messages.webhook_payload(note),
}


def enabled_sinks(settings: PluginSettings) -> dict[str, Callable[[], Sink]]:
    """The sinks the settings switch on, each with how to reach it (not yet called: it reads a connection)."""
    factories: dict[str, Callable[[], Sink]] = {}
    if settings.slack_conn_id:
        factories["slack"] = lambda: slack_sink(settings.slack_conn_id)
    if settings.smtp_conn_id and settings.email_to:
        factories["email"] = lambda: email_sink(settings.smtp_conn_id)
    if settings.webhook_conn_id:
        factories["webhook"] = lambda: webhook_sink(settings.webhook_conn_id)
    return factories


_warned_missing: set[str] = set()


@dataclass
class PreparedSinks:
    """The sinks to send to now; those whose connection could not be read now (their messages are spooled)."""

    ready: dict[str, Sink] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def senders(self) -> dict[str, Sender]:
        return {name: sink.send for name, sink in self.ready.items()}

    @property
    def names(self) -> list[str]:
        return [*self.ready, *self.unavailable]

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(secret for sink in self.ready.values() for secret in sink.secrets if secret)

    def envelopes(self, note: messages.Notification, settings: PluginSettings) -> list[Envelope]:
        return [new_envelope(note.id, name, RENDERERS[name](note, settings)) for name in self.names]


def prepare_sinks(settings: PluginSettings, only: Iterable[str] | None = None) -> PreparedSinks:
    """Read each enabled sink's connection. A connection that does not exist switches its sink off (with one
    warning per process); any other failure to read it leaves the sink unavailable for now."""
    from airflow_obs.observability.compat import AirflowNotFoundException

    prepared = PreparedSinks()
    wanted = set(only) if only is not None else None
    for name, factory in enabled_sinks(settings).items():
        if wanted is not None and name not in wanted:
            continue
        try:
            prepared.ready[name] = factory()
        except Exception as error:
            if isinstance(error, AirflowNotFoundException):
                if name not in _warned_missing:
                    _warned_missing.add(name)
                    log.warning("notification sink %s is off: its connection is not defined", name)
                continue
            reason = f"connection could not be read: {type(error).__name__}"
            if isinstance(error, ValueError):
                reason = redact(str(error))
            prepared.unavailable[name] = reason
            log.warning("notification sink %s unavailable now: %s", name, reason)
    return prepared
