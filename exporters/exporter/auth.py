"""HTTP basic auth for the exporter, checked against bcrypt hashes like the Prometheus exporter-toolkit."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import bcrypt
from airflow_obs.exporter.config import ConfigError, is_bcrypt_hash

WSGIApp = Callable[..., Iterable[bytes]]

# Enough for every scraper and person using the exporter; the oldest entry is dropped beyond it.
_CACHE_SIZE = 256
# bcrypt refuses longer passwords rather than silently truncating them.
_BCRYPT_MAX_PASSWORD_BYTES = 72


class BasicAuthVerifier:
    """Checks user:password pairs; remembers pairs that passed, so each scrape does not pay ~0.2 s of bcrypt."""

    def __init__(self, users: Mapping[str, str]) -> None:
        for name, hashed in users.items():
            if not is_bcrypt_hash(hashed):
                raise ConfigError(f"basic auth user {name!r}: expected a bcrypt hash ($2a$, $2b$ or $2y$)")
        self._users = [(name.encode(), hashed.encode()) for name, hashed in users.items()]
        # An unknown user is checked against this, so a wrong name costs as much as a wrong password.
        cost = min(int(hashed[4:6]) for _, hashed in self._users)  # "$2b$12$...": 12 is the cost
        self._dummy_hash = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=cost))
        # Cache keys are keyed SHA-256 digests of (user, password), never the password; the random per-process
        # key stops a memory dump of the cache from being brute-forced offline at SHA-256 speed.
        self._cache_key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, username: str, password: str) -> bool:
        user, secret = username.encode(), password.encode()
        # Length-prefixed, so ("a:b", "c") and ("a", "b:c") can never share a cache entry.
        message = len(user).to_bytes(4, "big") + user + secret
        digest = hmac.new(self._cache_key, message, hashlib.sha256).digest()
        with self._lock:
            if digest in self._verified:
                self._verified.move_to_end(digest)
                return True
        hashed = None
        for name, candidate in self._users:  # visit every user: no early exit that timing could reveal
            if hmac.compare_digest(name, user):
                hashed = candidate
        if len(secret) > _BCRYPT_MAX_PASSWORD_BYTES:
            bcrypt.checkpw(b"", self._dummy_hash)
            return False
        ok = bcrypt.checkpw(secret, hashed or self._dummy_hash) and hashed is not None
        if ok:
            with self._lock:
                self._verified[digest] = None
                if len(self._verified) > _CACHE_SIZE:
                    self._verified.popitem(last=False)
        return ok


def _credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def require_basic_auth(app: WSGIApp, users: Mapping[str, str], realm: str = "airflow-exporter") -> WSGIApp:
    """`app` behind HTTP basic auth for `users` (name -> bcrypt hash); `app` itself when `users` is empty.

    Every path needs credentials, /healthz included: one rule is simpler to reason about than a list of
    exceptions, and a probe that can scrape can also send credentials.
    """
    if not users:
        return app
    verifier = BasicAuthVerifier(users)
    challenge = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("WWW-Authenticate", f'Basic realm="{realm}", charset="UTF-8"'),
    ]

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        credentials = _credentials(environ.get("HTTP_AUTHORIZATION", ""))
        if credentials is not None and verifier.check(*credentials):
            return app(environ, start_response)
        start_response("401 Unauthorized", list(challenge))
        return [b"unauthorized: this exporter requires basic auth\n"]

    return guarded
