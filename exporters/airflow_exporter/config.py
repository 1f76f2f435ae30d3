"""The exporter's settings: one YAML file (AIRFLOW_OBS_EXPORTER_CONFIG) overridden by AIRFLOW_OBS_EXPORTER_* variables.

TLS and basic auth use the shape of the Prometheus exporter-toolkit web config (`tls_server_config`,
`basic_auth_users`), so operators can reuse what they know from node_exporter and friends.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

CONFIG_ENV = "AIRFLOW_OBS_EXPORTER_CONFIG"
ENV_PREFIX = "AIRFLOW_OBS_EXPORTER_"
USERS_FILE_ENV = ENV_PREFIX + "BASIC_AUTH_USERS_FILE"

# The exporter-toolkit accepts these three prefixes; bcrypt checks all of them.
_BCRYPT_HASH = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")


class ConfigError(ValueError):
    """A setting is missing, malformed or out of range; the message names source, key, value and expectation."""


@dataclass(frozen=True)
class ExporterConfig:
    """Every setting of the exporter; the defaults suit a loopback exporter next to a small Airflow."""

    host: str = "127.0.0.1"
    port: int | None = None  # None: the caller picks (the local stack's port, or a CLI flag)
    # None: Airflow's own sql_alchemy_conn. Kept out of repr: the URL may carry a password.
    db_url: str | None = field(default=None, repr=False)
    scrape_deadline_seconds: float = 1.5
    snapshot_cache_seconds: float = 5.0
    series_budget: int = 50000
    outcome_window_hours: float = 168.0
    baseline_window_days: float = 14.0
    baseline_max_runs: int = 50
    baseline_min_runs: int = 3
    per_task_metrics: bool = False
    heartbeat_timeout_seconds: float | None = None  # None: Airflow's [scheduler] task_instance_heartbeat_timeout
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # username -> bcrypt hash; read-only, unhashable, and kept out of repr so logging a config leaks no hash.
    basic_auth_users: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False, hash=False)


def is_bcrypt_hash(value: object) -> bool:
    return isinstance(value, str) and _BCRYPT_HASH.fullmatch(value) is not None


# --- one rule per kind of value: converts a YAML scalar or an environment string, or raises ValueError ---


@dataclass(frozen=True)
class _Rule:
    expected: str
    convert: Callable[[Any], Any]


def _as_int(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError
    return int(raw)


def _as_float(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError
    return value


def _bounded(convert: Callable[[Any], Any], expected: str, ok: Callable[[Any], bool]) -> _Rule:
    def checked(raw: Any) -> Any:
        value = convert(raw)
        if not ok(value):
            raise ValueError
        return value

    return _Rule(expected, checked)


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if isinstance(raw, str | int) and str(raw).strip().lower() in words:
        return words[str(raw).strip().lower()]
    raise ValueError


def _as_text(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError
    return raw.strip()


def _as_db_url(raw: Any) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = _as_text(raw)
    try:
        make_url(url)
    except ArgumentError as exc:
        raise ValueError from exc
    return url


_TEXT = _Rule("a non-empty string", _as_text)
_PATH = _Rule("a file path", _as_text)
_POSITIVE = _bounded(_as_float, "a number > 0", lambda v: v > 0)


@dataclass(frozen=True)
class _Spec:
    key: str
    rule: _Rule
    nullable: bool = False  # null in YAML keeps the default None
    secret: bool = False  # a bad value is never echoed
    in_file: bool = True  # False: set in the file through tls_server_config instead

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.key.upper()


_SPECS = (
    _Spec("host", _TEXT),
    _Spec("port", _bounded(_as_int, "an integer 1-65535", lambda v: 1 <= v <= 65535), nullable=True),
    _Spec("db_url", _Rule("a SQLAlchemy database URL", _as_db_url), nullable=True, secret=True),
    _Spec("scrape_deadline_seconds", _bounded(_as_float, "a number > 0 and <= 60", lambda v: 0 < v <= 60)),
    _Spec("snapshot_cache_seconds", _bounded(_as_float, "a number >= 0 and <= 300", lambda v: 0 <= v <= 300)),
    _Spec("series_budget", _bounded(_as_int, "an integer > 0", lambda v: v > 0)),
    _Spec("outcome_window_hours", _POSITIVE),
    _Spec("baseline_window_days", _POSITIVE),
    _Spec("baseline_max_runs", _bounded(_as_int, "an integer >= 2", lambda v: v >= 2)),
    _Spec("baseline_min_runs", _bounded(_as_int, "an integer >= 1", lambda v: v >= 1)),
    _Spec("per_task_metrics", _Rule("true or false (also yes/no, 1/0)", _as_bool)),
    _Spec("heartbeat_timeout_seconds", _POSITIVE, nullable=True),
    _Spec("tls_cert_file", _PATH, nullable=True, in_file=False),
    _Spec("tls_key_file", _PATH, nullable=True, in_file=False),
)
_SPEC_BY_KEY = {spec.key: spec for spec in _SPECS}
_TLS_FILE_KEYS = {"cert_file": "tls_cert_file", "key_file": "tls_key_file"}
FILE_KEYS = tuple(sorted([spec.key for spec in _SPECS if spec.in_file] + ["tls_server_config", "basic_auth_users"]))


def _fail(source: str, key: str, expected: str, got: str) -> ConfigError:
    return ConfigError(f"exporter config {source}: key {key!r}: expected {expected}, got {got}")


def _parse(spec: _Spec, raw: Any, source: str, key: str | None = None) -> Any:
    if raw is None and spec.nullable:
        return None
    try:
        return spec.rule.convert(raw)
    except (ValueError, TypeError):
        got = "something else (not shown: it may hold a password)" if spec.secret else repr(raw)
        raise _fail(source, key or spec.key, spec.rule.expected, got) from None


def load_config(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] = os.environ) -> ExporterConfig:
    """Settings from the YAML file at `path` (default: $AIRFLOW_OBS_EXPORTER_CONFIG), then the environment.

    An empty environment variable counts as unset. Raises ConfigError on the first problem found.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # key -> where its value came from, for errors about pairs of keys
    if path is None and environ.get(CONFIG_ENV):
        path = environ[CONFIG_ENV]
    if path is not None:
        file_values = _from_file(Path(path))
        values.update(file_values)
        sources.update(dict.fromkeys(file_values, str(path)))
    for spec in _SPECS:
        raw = environ.get(spec.env_var, "")
        if raw.strip():
            values[spec.key] = _parse(spec, raw, f"${spec.env_var}")
            sources[spec.key] = f"${spec.env_var}"
    if users_file := environ.get(USERS_FILE_ENV, "").strip():
        source = f"${USERS_FILE_ENV} ({users_file})"
        users = _read_yaml(Path(users_file), source)
        if not users:
            raise _fail(source, "basic_auth_users", "a mapping of at least one user to a bcrypt hash", "none")
        values["basic_auth_users"] = _users(users, source)
    _check_tls_files(values, sources)
    config = ExporterConfig(**values)
    if config.baseline_min_runs > config.baseline_max_runs:
        source = sources.get("baseline_min_runs") or sources["baseline_max_runs"]
        expected = f"at most baseline_max_runs ({config.baseline_max_runs})"
        raise _fail(source, "baseline_min_runs", expected, repr(config.baseline_min_runs))
    return config


def _read_yaml(path: Path, source: str) -> dict[Any, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"exporter config {source}: cannot read the file: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"exporter config {source}: invalid YAML{where}: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"exporter config {source}: expected a mapping of keys, got a {type(document).__name__}")
    return document


def _from_file(path: Path) -> dict[str, Any]:
    source = str(path)
    document = _read_yaml(path, source)
    _reject_unknown(document, FILE_KEYS, source)
    values: dict[str, Any] = {}
    for key, raw in document.items():
        if key == "tls_server_config":
            values.update(_tls_server_config(raw, path, source))
        elif key == "basic_auth_users":
            values[key] = _users({} if raw is None else raw, source)
        else:
            values[key] = _parse(_SPEC_BY_KEY[key], raw, source)
    return values


def _reject_unknown(document: Mapping[Any, Any], valid: tuple[str, ...], source: str, within: str = "") -> None:
    for key in document:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"exporter config {source}: unknown key {within}{key!r}{hint}; valid keys: {', '.join(valid)}"
            )


def _tls_server_config(raw: Any, path: Path, source: str) -> dict[str, str | None]:
    if not isinstance(raw, dict):
        raise _fail(source, "tls_server_config", "a mapping with cert_file and key_file", repr(raw))
    _reject_unknown(raw, tuple(_TLS_FILE_KEYS), source, within="tls_server_config.")
    values: dict[str, str | None] = {}
    for file_key, key in _TLS_FILE_KEYS.items():
        if file_key in raw:
            value = _parse(_SPEC_BY_KEY[key], raw[file_key], source, key=f"tls_server_config.{file_key}")
            # Relative to the config file, like the exporter-toolkit, so a config folder can move as a whole.
            values[key] = None if value is None else str(path.parent / value)
    return values


def _users(raw: Any, source: str) -> Mapping[str, str]:
    if not isinstance(raw, dict):
        raise _fail(source, "basic_auth_users", "a mapping of user name to bcrypt hash", f"a {type(raw).__name__}")
    for name, hashed in raw.items():
        if not isinstance(name, str) or not name or ":" in name:
            # Basic auth splits "user:password" on the first colon, so such a user could never log in.
            raise _fail(source, "basic_auth_users", "user names that are non-empty strings without ':'", repr(name))
        if not is_bcrypt_hash(hashed):
            raise _fail(
                source,
                f"basic_auth_users.{name}",
                "a bcrypt hash starting $2a$, $2b$ or $2y$ (e.g. from `htpasswd -nBC 10 '' | tr -d ':\\n'`)",
                "something else (not shown)",
            )
    return MappingProxyType(dict(raw))


def _check_tls_files(values: dict[str, Any], sources: dict[str, str]) -> None:
    cert, key = values.get("tls_cert_file"), values.get("tls_key_file")
    if (cert is None) != (key is None):
        given, missing = ("tls_cert_file", "tls_key_file") if cert is not None else ("tls_key_file", "tls_cert_file")
        raise ConfigError(
            f"exporter config {sources[given]}: key {given!r} is set but {missing!r} is not; "
            "TLS needs both a certificate and its key (or neither)"
        )
    for name in ("tls_cert_file", "tls_key_file"):
        if values.get(name) is None:
            continue
        try:
            with open(values[name], "rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise _fail(sources[name], name, "a readable file", f"{values[name]!r} ({exc.strerror})") from None
