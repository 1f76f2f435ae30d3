"""Secrets out of everything a notification carries or logs: known values first, then known shapes.

Known values are the sinks' own credentials (connection passwords, the Slack and webhook URLs) plus
whatever Airflow's secrets masker already hides in logs (every connection a task fetched). Shapes catch
what nobody registered: Slack webhook URLs and tokens, credentials in URLs, `password=...` pairs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "[redacted]"

# Shorter values are not replaced: blanking every "abc" would garble the text and hide nothing useful.
MIN_SECRET_LENGTH = 4

# Names whose values are credentials (a regex alternation, not a credential itself).
_SECRET_NAMES = "|".join(
    ("password", "passwd", "pwd", "secret", "token", r"api[_-]?key", r"access[_-]?key", r"private[_-]?key",
     "signature", "authorization", "credential")
)  # fmt: skip
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A Slack incoming webhook URL is itself the credential.
    (re.compile(r"https?://hooks\.slack(?:-gov)?\.com/\S*", re.IGNORECASE), REDACTED),
    (re.compile(r"\bT[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{8,}"), REDACTED),
    # Slack bot, user, app and configuration tokens.
    (re.compile(r"\bx(?:ox[a-z]|app)-[A-Za-z0-9-]{8,}"), REDACTED),
    # user:password@ in any URL.
    (re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/\s:@]*:[^/\s@]*@", re.IGNORECASE), rf"\g<scheme>{REDACTED}@"),
    (re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), rf"\1 {REDACTED}"),
    # password=..., "token": "...", api_key: ...
    (
        re.compile(
            rf"(?P<key>\b[\w-]*(?:{_SECRET_NAMES})[\w-]*)(?P<sep>[\"']?\s*[=:]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&'\"}})]+)",
            re.IGNORECASE,
        ),
        rf"\g<key>\g<sep>{REDACTED}",
    ),
)


# The Task SDK's masker. One this process never imported has never been given a secret, and importing it would
# load all of Airflow (a second of start-up and its configuration's own log lines) into the exporter or the CLI.
_SDK_MASKER = "airflow.sdk._shared.secrets_masker"


def _airflow_masked(text: str) -> str:
    """The text as Airflow's secrets masker would log it (a no-op where the masker was never loaded)."""
    masker = sys.modules.get(_SDK_MASKER)
    if masker is None:
        return text
    try:
        masked = masker.redact(text, replacement=REDACTED)
    except Exception:  # the masker is a bonus, never a reason to lose the message
        return text
    return masked if isinstance(masked, str) else text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret (also percent-encoded) and every secret-shaped string replaced."""
    values = {value for value in secrets if value and len(value) >= MIN_SECRET_LENGTH}
    for value in sorted(values, key=len, reverse=True):  # longest first: a URL before the token inside it
        for form in {value, quote(value, safe=""), quote(value)}:
            text = text.replace(form, REDACTED)
    text = _airflow_masked(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def short_error(error: BaseException | str | None, secrets: Iterable[str] = (), limit: int = 500) -> str:
    """A one-paragraph error for a message: redacted first, so a cut can never leave half a secret."""
    if error is None:
        return ""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    text = redact(text, secrets).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
