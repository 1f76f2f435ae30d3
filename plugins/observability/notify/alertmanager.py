"""Alertmanager's API as a sink: post alerts (`POST /api/v2/alerts`), read back the firing ones (`GET`).

Failures are sorted like every sink's (retries.py): 5xx, 408, 429 and network errors are worth another try, any
other 4xx is not. A 400 names what Alertmanager refused (its answer is short, e.g. `invalid label set: ...`) and
never the URL. A reverse proxy's basic-auth login may sit in the URL (`https://user:pass@am.example.com`): it is
sent as a header and redacted from every reason.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from airflow_obs.observability.notify.redaction import redact
from airflow_obs.observability.notify.retries import DeliveryError
from airflow_obs.observability.notify.sinks import (
    USER_AGENT,
    Sink,
    _NoRedirects,
    _redacted,
    http_failure,
    network_failure,
)
from airflow_obs.observability.notify.spool import Envelope

SINK = "alertmanager"
ALERTS_PATH = "/api/v2/alerts"


class AlertmanagerAPI:
    """One Alertmanager, as the plugin reaches it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.secrets: tuple[str, ...] = ()
        self._headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if parts.username or parts.password:
            login = f"{parts.username or ''}:{parts.password or ''}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
            self.secrets = tuple(secret for secret in (parts.password, login, url) if secret)
            parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
        self.base_url = urlunsplit(parts).rstrip("/")
        self._opener = urllib.request.build_opener(_NoRedirects())

    def _call(self, method: str, path: str, timeout: float, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(  # noqa: S310 - settings accept http(s) URLs only
            self.base_url + path, data=body, headers=self._headers, method=method
        )
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            with error:
                detail = error.read(300).decode("utf-8", errors="replace").strip().strip('"')
                failure = http_failure(error.code, error.headers.get("Retry-After"), detail)
                raise _redacted(failure, self.secrets) from None
        except Exception as error:
            raise _redacted(network_failure(error), self.secrets) from None

    def post(self, alerts: list[dict[str, Any]], timeout: float) -> None:
        """Create, renew or resolve alerts (Alertmanager merges them with earlier posts of the same labels)."""
        self._call("POST", ALERTS_PATH, timeout, json.dumps(alerts, ensure_ascii=False).encode())

    def alerts(self, matchers: list[str], timeout: float) -> list[dict[str, Any]]:
        """Unresolved alerts matching every matcher (e.g. `alertname=~"A|B"`), silenced and inhibited ones too."""
        query = "&".join(f"filter={quote(matcher, safe='')}" for matcher in matchers)
        raw = self._call("GET", f"{ALERTS_PATH}?active=true&silenced=true&inhibited=true&{query}", timeout)
        try:
            found = json.loads(raw)
        except ValueError:
            raise DeliveryError("Alertmanager answered with something that is not JSON", retryable=True) from None
        if not isinstance(found, list):
            raise DeliveryError("Alertmanager answered with JSON that is not a list of alerts", retryable=True)
        return [alert for alert in found if isinstance(alert, dict)]


def alertmanager_sink(url: str) -> Sink:
    """The sink for the delivery machinery (bounded sends, retries, spool); an envelope's body: `{"alerts": [...]}`."""
    api = AlertmanagerAPI(url)

    def send(envelope: Envelope, timeout: float) -> None:
        api.post(list(envelope.body["alerts"]), timeout)

    return Sink(SINK, send, api.secrets)


def describe(error: BaseException, secrets: tuple[str, ...] = ()) -> str:
    return redact(getattr(error, "reason", None) or type(error).__name__, secrets)
