"""Settings of the local stack, read once from environment variables: the one source of truth for ports.

The pydantic models below say what each AIRFLOW_OBS_* variable may hold; _read hands them the variables of the
mapping it is given and turns pydantic's ValidationError into a SettingsError naming each bad variable, its value and
what is expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from airflow_obs.exporter.config import DEFAULT_PORT as EXPORTER_DEFAULT_PORT
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    create_model,
    model_validator,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
# Prometheus's external label `environment` and the plugin's alerts carry the same value: Alertmanager's
# inhibitions compare it (`equal: [environment]`).
STACK_ENVIRONMENT = "local"
ENV_PREFIX = "AIRFLOW_OBS_"


class SettingsError(ValueError):
    """A setting has a value the stack cannot use; the message names the variable and what is expected."""


@dataclass(frozen=True)
class PortSpec:
    """A loopback port of one component, overridable by one environment variable."""

    component: str
    env_var: str
    default: int
    purpose: str
    needs: str = ""  # "" (always bound), "postgres" (AIRFLOW_OBS_DB=postgres) or "celery" (AIRFLOW_OBS_EXECUTOR=celery)


PG, CELERY = "postgres", "celery"  # what a port is needed for, beyond the default stack (PortSpec.needs)

# Every port the local stack binds. README's port table is generated from this list (python -m local_stack ports).
PORTS: tuple[PortSpec, ...] = (
    PortSpec("airflow", "AIRFLOW_OBS_AIRFLOW_PORT", 18080, "Airflow UI and REST API (api-server)"),
    PortSpec("exporter", "AIRFLOW_OBS_EXPORTER_PORT", EXPORTER_DEFAULT_PORT, "the toolkit's Prometheus exporter"),
    PortSpec("prometheus", "AIRFLOW_OBS_PROMETHEUS_PORT", 19090, "Prometheus"),
    PortSpec("alertmanager", "AIRFLOW_OBS_ALERTMANAGER_PORT", 19093, "Alertmanager"),
    PortSpec("node_exporter", "AIRFLOW_OBS_NODE_EXPORTER_PORT", 19100, "node_exporter (host metrics)"),
    PortSpec("slack_capture", "AIRFLOW_OBS_SLACK_CAPTURE_PORT", 19201, "Slack incoming-webhook capture"),
    PortSpec("webhook_capture", "AIRFLOW_OBS_WEBHOOK_CAPTURE_PORT", 19202, "generic/pager webhook capture"),
    PortSpec("smtp_capture", "AIRFLOW_OBS_SMTP_CAPTURE_PORT", 19025, "SMTP capture (mail relay)"),
    PortSpec("source_api", "AIRFLOW_OBS_SOURCE_API_PORT", 19300, "orders source service the ETL extracts from"),
    PortSpec("worker_log_server", "AIRFLOW_OBS_WORKER_LOG_PORT", 18793, "Airflow worker log server"),
    PortSpec("trigger_log_server", "AIRFLOW_OBS_TRIGGER_LOG_PORT", 18794, "Airflow triggerer log server"),
    PortSpec("postgres", "AIRFLOW_OBS_POSTGRES_PORT", 15432, "private PostgreSQL (AIRFLOW_OBS_DB=postgres)", PG),
    PortSpec("postgres_exporter", "AIRFLOW_OBS_POSTGRES_EXPORTER_PORT", 19187, "postgres_exporter", PG),
    PortSpec("redis", "AIRFLOW_OBS_REDIS_PORT", 16379, "Redis, the Celery broker", CELERY),
    PortSpec("redis_exporter", "AIRFLOW_OBS_REDIS_EXPORTER_PORT", 19121, "redis_exporter (queue depth)", CELERY),
    PortSpec("flower", "AIRFLOW_OBS_FLOWER_PORT", 15555, "Flower (Celery workers: UI and metrics)", CELERY),
    PortSpec("worker_2_log_server", "AIRFLOW_OBS_WORKER_2_LOG_PORT", 18795, "Celery worker 2 log server", CELERY),
)

DbKind = Literal["sqlite", "postgres"]
Executor = Literal["local", "celery"]
DB_KINDS: tuple[str, ...] = get_args(DbKind)
EXECUTORS: tuple[str, ...] = get_args(Executor)


# --- reading: the AIRFLOW_OBS_* variables of a mapping ---------------------------------------------------------------


class _FromEnviron(BaseModel):
    """Fields read from AIRFLOW_OBS_<FIELD>. Each field's description is the "expected ..." of its error message."""

    # Variables no field names are left alone: AIRFLOW_OBS_ALERT_* (alert_rules/alerting/thresholds.py),
    # AIRFLOW_OBS_EXPORTER_* (the exporter) and the timings have other readers.
    model_config = ConfigDict(extra="ignore")


_Model = TypeVar("_Model", bound=_FromEnviron)


def _read(model: type[_Model], environ: Mapping[str, str]) -> _Model:
    """`model` from the AIRFLOW_OBS_* variables of `environ` only, or a SettingsError naming each bad variable.

    Only that mapping: tests and benchmarks describe a stack by the environment its processes will get, never mixed
    with their own. An empty value means unset (`AIRFLOW_OBS_DB= make up`).
    """
    values = {
        name.removeprefix(ENV_PREFIX).lower(): value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and value
    }
    try:
        return model.model_validate(values)
    except ValidationError as invalid:
        # `from None`: a ValidationError shows every input, a webhook token included.
        raise SettingsError("; ".join(_problem(model, error) for error in invalid.errors())) from None


def _problem(model: type[_FromEnviron], error: Mapping[str, Any]) -> str:
    raised = error.get("ctx", {}).get("error")
    if isinstance(raised, SettingsError):  # a rule across variables: its validator wrote the whole message
        return str(raised)
    name = str(error["loc"][0])
    field = model.model_fields[name]
    shown = repr(error["input"]) if field.repr else _redacted(str(error["input"]))
    return f"{ENV_PREFIX}{name.upper()}={shown} is not valid: expected {field.description or error['msg']}"


def _redacted(value: str) -> str:
    """What a message may show of a secret: its URL scheme, if any (a webhook URL carries its token)."""
    scheme = urlsplit(value).scheme
    return f"{scheme}://[redacted]" if scheme and value.startswith(f"{scheme}://") else "[redacted]"


# --- what each variable may hold --------------------------------------------------------------------------------------


def _lowercase(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _supervisord_path(path: Path) -> Path:
    path = path.expanduser().resolve()
    # supervisord expands % in its values (some twice) and cannot quote '"' in an environment line.
    if any(char in str(path) for char in '%"\n\r'):
        raise ValueError("not expressible in supervisord.conf")
    return path


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise ValueError("not an http(s) URL")
    return value


def _host_port(value: str) -> str:
    if value:
        parts = urlsplit(f"//{value}")
        if not parts.hostname or parts.port is None:  # .port raises ValueError itself when not a number
            raise ValueError("not host:port")
    return value


class _Stack(_FromEnviron):
    """The stack's folder and shape; the fields of StackSettings of the same names."""

    home: Annotated[Path, AfterValidator(_supervisord_path)] = Field(
        REPO_ROOT / ".stack", description="a path without '%', '\"' or newlines"
    )
    executor: Annotated[Executor, BeforeValidator(_lowercase)] = Field(
        "local", description=f"one of {', '.join(EXECUTORS)}"
    )
    # None (unset): chosen by the executor, below.
    db: Annotated[DbKind | None, BeforeValidator(_lowercase)] = Field(None, description=f"one of {', '.join(DB_KINDS)}")
    parallelism: PositiveInt = Field(8, description="a positive integer")

    @model_validator(mode="after")
    def _db_fits_executor(self) -> _Stack:
        # Celery workers and the scheduler write the metadata DB at once, which SQLite cannot take.
        if self.executor == "celery" and self.db == "sqlite":
            raise SettingsError(
                f"AIRFLOW_OBS_EXECUTOR=celery with AIRFLOW_OBS_DB={self.db!r}: CeleryExecutor needs a metadata DB that "
                "several machines write at once; expected AIRFLOW_OBS_DB=postgres (or unset)"
            )
        if self.db is None:
            self.db = "postgres" if self.executor == "celery" else "sqlite"
        return self


def _port_field(spec: PortSpec) -> str:
    """The field of a port's variable: AIRFLOW_OBS_WORKER_LOG_PORT is worker_log_port."""
    return spec.env_var.removeprefix(ENV_PREFIX).lower()


class _PortsBase(_FromEnviron):
    """The ports of PORTS, one field each (_Ports below), all distinct."""

    @model_validator(mode="after")
    def _distinct(self) -> _PortsBase:
        used: dict[int, str] = {}
        for spec in PORTS:
            port = getattr(self, _port_field(spec))
            if port in used:
                raise SettingsError(
                    f"{spec.env_var} and {used[port]} both ask for port {port}: expected distinct ports"
                )
            used[port] = spec.env_var
        return self

    def by_component(self) -> dict[str, int]:
        return {spec.component: getattr(self, _port_field(spec)) for spec in PORTS}


Port = Annotated[int, Field(ge=1, le=65535, description="an integer from 1 to 65535")]
# One field per row of PORTS, generated so that the table stays the only place a port is declared.
_Ports = create_model("_Ports", __base__=_PortsBase, **{_port_field(spec): (Port, spec.default) for spec in PORTS})

# repr=False keeps a value out of repr() and out of error messages: a webhook URL carries its token.
_WebhookUrl = Annotated[str, AfterValidator(_http_url), Field(repr=False, description="an http(s) URL")]


class AlertEndpoints(_FromEnviron):
    """Where Alertmanager delivers; empty values mean the local captures."""

    model_config = ConfigDict(frozen=True)  # StackSettings is frozen: so is what it holds

    slack_webhook_url: _WebhookUrl = ""
    smtp_smarthost: Annotated[str, AfterValidator(_host_port)] = Field("", description="host:port")
    smtp_from: str = "airflow-alerts@localhost"
    smtp_to: str = "oncall@localhost"
    smtp_username: str = ""
    smtp_password_file: str = ""  # a path for Alertmanager (smtp_auth_password_file): its content is never read here
    smtp_require_tls: bool = Field(False, description="true or false (also 1/0, yes/no, on/off)")
    pager_webhook_url: _WebhookUrl = ""
    heartbeat_webhook_url: _WebhookUrl = ""


# --- the result -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackSettings:
    """Everything `make up` needs to know, validated (by load_settings).

    A plain dataclass rather than a pydantic model: its values are final, and callers derive variants of it
    with dataclasses.replace.
    """

    home: Path
    db: str
    ports: Mapping[str, int]
    endpoints: AlertEndpoints
    parallelism: int
    executor: str

    def binds(self, spec: PortSpec) -> bool:
        """Whether this stack listens on `spec`'s port (PostgreSQL and Celery ports only when chosen)."""
        return spec.needs == "" or (spec.needs == "postgres" and self.db == "postgres") or spec.needs == self.executor

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def captures_dir(self) -> Path:
        return self.home / "captures"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def data_dir(self) -> Path:
        """The DAG suite's files: landing data, SQLite warehouse, model registry, reports, backups."""
        return self.home / "data"

    @property
    def generated_dir(self) -> Path:
        return self.home / "generated"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def supervisor_conf(self) -> Path:
        return self.generated_dir / "supervisord.conf"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.home / "supervisord.pid"

    @property
    def supervisor_socket(self) -> Path:
        return self.home / "supervisor.sock"

    def url(self, component: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[component]}"

    def capture_file(self, kind: str) -> Path:
        return self.captures_dir / f"{kind}.jsonl"


def load_settings(env: Mapping[str, str] | None = None) -> StackSettings:
    """Read and validate the stack's settings from `env` (default: the process environment)."""
    environ = os.environ if env is None else env
    stack = _read(_Stack, environ)
    return StackSettings(
        **dict(stack),  # home, db, executor, parallelism
        ports=_read(_Ports, environ).by_component(),
        endpoints=_read(AlertEndpoints, environ),
    )
