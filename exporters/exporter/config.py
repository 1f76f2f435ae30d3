"""The exporter's settings: one YAML file (AIRFLOW_OBS_EXPORTER_CONFIG) overridden by AIRFLOW_OBS_EXPORTER_* variables.

TLS and basic auth use the shape of the Prometheus exporter-toolkit web config (`tls_server_config`,
`basic_auth_users`), so operators can reuse what they know from node_exporter and friends.

load_config merges the sources itself, remembering where each key came from, and lets a pydantic model (`_Settings`)
parse and check the result; each problem becomes one ConfigError that names the source, key, value and expectation.
The rest of the exporter sees only the plain, frozen `ExporterConfig`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

CONFIG_ENV = "AIRFLOW_OBS_EXPORTER_CONFIG"
ENV_PREFIX = "AIRFLOW_OBS_EXPORTER_"
USERS_FILE_ENV = ENV_PREFIX + "BASIC_AUTH_USERS_FILE"
# Where the exporter listens when neither the config nor the command line names a port.
DEFAULT_PORT = 19112

# The exporter-toolkit accepts these three prefixes; bcrypt checks all of them.
_BCRYPT_HASH = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")


class ConfigError(ValueError):
    """A setting is missing, malformed or out of range; the message names source, key, value and expectation."""


@dataclass(frozen=True)
class ExporterConfig:
    """Every setting of the exporter; the defaults suit a loopback exporter next to a small Airflow."""

    host: str = "127.0.0.1"
    port: int | None = None  # None: the command line's --port, else DEFAULT_PORT
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
    # The asset graph (airflow_dag_downstream_*): how many hops to follow, and how many DAGs to list per DAG.
    downstream_max_depth: int = 3
    downstream_max_dags: int = 20
    heartbeat_timeout_seconds: float | None = None  # None: Airflow's [scheduler] task_instance_heartbeat_timeout
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # username -> bcrypt hash; read-only, unhashable, and kept out of repr so logging a config leaks no hash.
    basic_auth_users: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False, hash=False)


def is_bcrypt_hash(value: object) -> bool:
    return isinstance(value, str) and _BCRYPT_HASH.fullmatch(value) is not None


# --- the rules, as pydantic types ---


class _Expected(ValueError):
    """A rule's own "expected ..., got ...", where the field's description is not the whole story."""


def _not_a_bool(raw: Any) -> Any:
    # pydantic takes True for 1, and YAML reads `yes` as True: a number must be written as one.
    if isinstance(raw, bool):
        raise ValueError("a bool is not a number")
    return raw


def _sqlalchemy_url(url: str) -> str:
    # Imported here: importing this module (local_stack does, for DEFAULT_PORT) should not load SQLAlchemy.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError as exc:  # not a ValueError: pydantic would let it escape instead of reporting it
        raise ValueError("not a SQLAlchemy URL") from exc
    return url


def _readable_file(path: str) -> str:
    # A wrong path fails at load, naming its setting; the HTTP server checks what the file holds.
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise _Expected(f"expected a readable file, got {path!r} ({exc.strerror})") from None
    return path


def _user_name(name: Any) -> Any:
    # Basic auth splits "user:password" on the first colon, so such a user could never log in.
    if not isinstance(name, str) or not name or ":" in name:
        raise _Expected(f"expected user names that are non-empty strings without ':', got {name!r}")
    return name


def _bcrypt_hash(hashed: Any) -> Any:
    if not is_bcrypt_hash(hashed):
        raise _Expected(
            "expected a bcrypt hash starting $2a$, $2b$ or $2y$ (e.g. from `htpasswd -nBC 10 '' | tr -d ':\\n'`), "
            "got something else (not shown)"
        )
    return hashed


_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_Int = Annotated[int, BeforeValidator(_not_a_bool)]
_Number = Annotated[float, BeforeValidator(_not_a_bool), Field(allow_inf_nan=False)]
_DbUrl = Annotated[_Text, AfterValidator(_sqlalchemy_url)]
_ReadableFile = Annotated[_Text, AfterValidator(_readable_file)]
_Users = Annotated[
    dict[Annotated[str, BeforeValidator(_user_name)], Annotated[str, BeforeValidator(_bcrypt_hash)]],
    BeforeValidator(lambda raw: {} if raw is None else raw),  # `basic_auth_users:` with nothing under it
]
_TLS_KEYS = ("tls_cert_file", "tls_key_file")  # under tls_server_config in the file, as cert_file and key_file


class _Settings(BaseModel):
    """The parser behind load_config: one field per ExporterConfig attribute.

    A field's type is its rule and its description what a ConfigError says was expected. A field kept out of repr
    holds secrets, and a ConfigError does not show its value either. No defaults: load_config starts from
    ExporterConfig's, the one place they are written, and extra="forbid" catches a field added there but not here.
    """

    model_config = ConfigDict(extra="forbid")

    host: _Text = Field(description="a non-empty string")
    port: _Int | None = Field(ge=1, le=65535, description="an integer 1-65535")
    db_url: _DbUrl | None = Field(repr=False, description="a SQLAlchemy database URL")
    scrape_deadline_seconds: _Number = Field(gt=0, le=60, description="a number > 0 and <= 60")
    snapshot_cache_seconds: _Number = Field(ge=0, le=300, description="a number >= 0 and <= 300")
    series_budget: _Int = Field(gt=0, description="an integer > 0")
    outcome_window_hours: _Number = Field(gt=0, description="a number > 0")
    baseline_window_days: _Number = Field(gt=0, description="a number > 0")
    baseline_max_runs: _Int = Field(ge=2, description="an integer >= 2")
    baseline_min_runs: _Int = Field(ge=1, description="an integer >= 1")
    per_task_metrics: bool = Field(description="true or false (also yes/no, 1/0)")
    downstream_max_depth: _Int = Field(ge=1, le=10, description="an integer 1-10")
    downstream_max_dags: _Int = Field(ge=1, le=1000, description="an integer 1-1000")
    heartbeat_timeout_seconds: _Number | None = Field(gt=0, description="a number > 0")
    tls_cert_file: _ReadableFile | None = Field(description="a readable file")
    tls_key_file: _ReadableFile | None = Field(description="a readable file")
    basic_auth_users: _Users = Field(repr=False, description="a mapping of user name to bcrypt hash")


# The keys of the config file: the settings, with the TLS files under tls_server_config as in the exporter-toolkit.
FILE_KEYS = tuple(sorted(set(_Settings.model_fields) - set(_TLS_KEYS) | {"tls_server_config"}))
# Users come only from files: a variable named like basic_auth_users is ignored, as before, not parsed.
_VARIABLE_KEYS = set(_Settings.model_fields) - {"basic_auth_users"}


def load_config(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] = os.environ) -> ExporterConfig:
    """Settings from the YAML file at `path` (default: $AIRFLOW_OBS_EXPORTER_CONFIG), then the environment.

    An empty environment variable counts as unset. Raises ConfigError on the first problem found.
    """
    if path is None and environ.get(CONFIG_ENV):
        path = environ[CONFIG_ENV]
    # (key, value, where it was set), lowest priority first: the config file, the users file, the variables.
    found = [(key, value, str(path)) for key, value in _file_values(path).items()]
    if users_file := environ.get(USERS_FILE_ENV, "").strip():
        source = f"${USERS_FILE_ENV} ({users_file})"
        found.append(("basic_auth_users", _users_file_values(Path(users_file), source), source))
    for name, value in environ.items():
        key = name.removeprefix(ENV_PREFIX).lower()
        if name.startswith(ENV_PREFIX) and key in _VARIABLE_KEYS and value.strip():
            found.append((key, value, f"${name}"))
    values = vars(ExporterConfig()) | {key: value for key, value, _ in found}
    sources = {key: source for key, _, source in found}  # no entry: the default, which passes every rule
    try:
        settings = _Settings.model_validate(values)
    except ValidationError as exc:
        # from None: the ValidationError holds the bad values, which may be passwords or hashes.
        raise _config_error(exc.errors()[0], sources) from None
    config = ExporterConfig(**dict(settings, basic_auth_users=MappingProxyType(settings.basic_auth_users)))
    _check_pairs(config, sources)
    return config


def _config_error(error: Mapping[str, Any], sources: Mapping[str, str]) -> ConfigError:
    loc = error["loc"]
    setting = _Settings.model_fields[loc[0]]
    raised = error.get("ctx", {}).get("error")
    if isinstance(raised, _Expected):
        detail = str(raised)
    else:
        got = repr(error["input"]) if setting.repr else "something else (not shown: it may hold a secret)"
        detail = f"expected {setting.description}, got {got}"
    # e.g. basic_auth_users.alice for a bad hash; a bad user name (loc ends "[key]") is the mapping's problem.
    key = ".".join(map(str, loc[:1] if loc[-1] == "[key]" else loc))
    return ConfigError(f"exporter config {sources[loc[0]]}: key {key!r}: {detail}")


def _check_pairs(config: ExporterConfig, sources: Mapping[str, str]) -> None:
    """The rules across two keys, each reported against the source of a key that was set."""
    if (config.tls_cert_file is None) != (config.tls_key_file is None):
        given, missing = ("tls_key_file", "tls_cert_file") if config.tls_cert_file is None else _TLS_KEYS
        raise ConfigError(
            f"exporter config {sources[given]}: key {given!r} is set but {missing!r} is not; "
            "TLS needs both a certificate and its key (or neither)"
        )
    if config.baseline_min_runs > config.baseline_max_runs:
        # baseline_min_runs left at its default: then it is baseline_max_runs that was set too low.
        source = sources.get("baseline_min_runs") or sources["baseline_max_runs"]
        expected = f"at most baseline_max_runs ({config.baseline_max_runs})"
        raise ConfigError(
            f"exporter config {source}: key 'baseline_min_runs': expected {expected}, got {config.baseline_min_runs}"
        )


# --- the file: YAML in the exporter-toolkit shape, turned into the shape of the variables ---


def _file_values(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The config file's settings, tls_server_config flattened into tls_cert_file and tls_key_file."""
    if path is None:
        return {}
    values = _read_yaml(Path(path), str(path))
    _reject_unknown(values, FILE_KEYS, str(path))
    if "tls_server_config" in values:
        values.update(_tls_files(values.pop("tls_server_config"), Path(path)))
    return values


def _users_file_values(path: Path, source: str) -> dict[Any, Any]:
    """The users of $AIRFLOW_OBS_EXPORTER_BASIC_AUTH_USERS_FILE, which replace the config file's."""
    users = _read_yaml(path, source)
    if not users:  # an empty users file would quietly turn basic auth off
        expected = "a mapping of at least one user to a bcrypt hash"
        raise ConfigError(f"exporter config {source}: key 'basic_auth_users': expected {expected}, got none")
    return users


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


def _reject_unknown(document: Mapping[Any, Any], valid: tuple[str, ...], source: str, within: str = "") -> None:
    # Not pydantic's extra="forbid": the file's keys are not the fields (tls_server_config), and it suggests nothing.
    for key in document:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"exporter config {source}: unknown key {within}{key!r}{hint}; valid keys: {', '.join(valid)}"
            )


def _tls_files(tls: Any, path: Path) -> dict[str, Any]:
    if not isinstance(tls, dict):
        expected = "a mapping with cert_file and key_file"
        raise ConfigError(f"exporter config {path}: key 'tls_server_config': expected {expected}, got {tls!r}")
    _reject_unknown(tls, ("cert_file", "key_file"), str(path), within="tls_server_config.")
    # Relative to the config file, like the exporter-toolkit, so a config folder can move as a whole.
    return {
        f"tls_{key}": str(path.parent / value.strip()) if isinstance(value, str) and value.strip() else value
        for key, value in tls.items()
    }
