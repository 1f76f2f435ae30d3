"""Settings of the local stack, read once from environment variables: the one source of truth for ports."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
# Prometheus's external label `environment` and the plugin's alerts carry the same value: Alertmanager's
# inhibitions compare it (`equal: [environment]`).
STACK_ENVIRONMENT = "local"


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

# Every port the local stack binds. README's port table is generated from this list (airflow-obs ports).
PORTS: tuple[PortSpec, ...] = (
    PortSpec("airflow", "AIRFLOW_OBS_AIRFLOW_PORT", 18080, "Airflow UI and REST API (api-server)"),
    PortSpec("exporter", "AIRFLOW_OBS_EXPORTER_PORT", 19112, "the toolkit's Prometheus exporter"),
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

DB_KINDS = ("sqlite", "postgres")
EXECUTORS = ("local", "celery")


@dataclass(frozen=True)
class AlertEndpoints:
    """Where Alertmanager delivers; empty values mean the local captures."""

    slack_webhook_url: str = ""
    smtp_smarthost: str = ""
    smtp_from: str = "airflow-alerts@localhost"
    smtp_to: str = "oncall@localhost"
    smtp_username: str = ""
    smtp_password_file: str = ""
    smtp_require_tls: bool = False
    pager_webhook_url: str = ""
    heartbeat_webhook_url: str = ""


@dataclass(frozen=True)
class StackSettings:
    """Everything `airflow-obs up` needs to know, validated."""

    home: Path
    db: str
    ports: Mapping[str, int]
    endpoints: AlertEndpoints = field(default_factory=AlertEndpoints)
    parallelism: int = 8
    executor: str = "local"

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


def _port(env: Mapping[str, str], spec: PortSpec) -> int:
    raw = env.get(spec.env_var, "").strip()
    if not raw:
        return spec.default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65535:
        raise SettingsError(f"{spec.env_var}={raw!r} is not a port: expected an integer from 1 to 65535")
    return int(raw)


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise SettingsError(f"{name}={raw!r} is not valid: expected a positive integer")
    return int(raw)


def load_settings(env: Mapping[str, str] | None = None) -> StackSettings:
    """Read and validate the stack's settings from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    executor = env.get("AIRFLOW_OBS_EXECUTOR", "local").strip().lower() or "local"
    if executor not in EXECUTORS:
        raise SettingsError(
            f"AIRFLOW_OBS_EXECUTOR={executor!r} is not supported: expected one of {', '.join(EXECUTORS)}"
        )
    # Celery workers and the scheduler write the metadata DB at once, which SQLite cannot take: celery means postgres.
    db = env.get("AIRFLOW_OBS_DB", "").strip().lower() or ("postgres" if executor == "celery" else "sqlite")
    if db not in DB_KINDS:
        raise SettingsError(f"AIRFLOW_OBS_DB={db!r} is not supported: expected one of {', '.join(DB_KINDS)}")
    if executor == "celery" and db != "postgres":
        raise SettingsError(
            f"AIRFLOW_OBS_EXECUTOR=celery with AIRFLOW_OBS_DB={db!r}: CeleryExecutor needs a metadata DB that "
            "several machines write at once; expected AIRFLOW_OBS_DB=postgres (or unset)"
        )

    ports = {spec.component: _port(env, spec) for spec in PORTS}
    used: dict[int, str] = {}
    for spec in PORTS:
        port = ports[spec.component]
        if port in used:
            raise SettingsError(f"{spec.env_var} and {used[port]} both ask for port {port}: expected distinct ports")
        used[port] = spec.env_var

    home = Path(env.get("AIRFLOW_OBS_HOME", "") or REPO_ROOT / ".stack").expanduser().resolve()
    if any(char in str(home) for char in '%"\n\r'):
        # supervisord expands % in its values (some twice) and cannot quote '"' in an environment line.
        raise SettingsError(
            f"AIRFLOW_OBS_HOME={str(home)!r} is not usable: expected a path without '%', '\"' or newlines"
        )
    endpoints = AlertEndpoints(
        slack_webhook_url=env.get("AIRFLOW_OBS_SLACK_WEBHOOK_URL", ""),
        smtp_smarthost=env.get("AIRFLOW_OBS_SMTP_SMARTHOST", ""),
        smtp_from=env.get("AIRFLOW_OBS_SMTP_FROM", "") or AlertEndpoints.smtp_from,
        smtp_to=env.get("AIRFLOW_OBS_SMTP_TO", "") or AlertEndpoints.smtp_to,
        smtp_username=env.get("AIRFLOW_OBS_SMTP_USERNAME", ""),
        smtp_password_file=env.get("AIRFLOW_OBS_SMTP_PASSWORD_FILE", ""),
        smtp_require_tls=env.get("AIRFLOW_OBS_SMTP_REQUIRE_TLS", "").lower() in {"1", "true", "yes"},
        pager_webhook_url=env.get("AIRFLOW_OBS_PAGER_WEBHOOK_URL", ""),
        heartbeat_webhook_url=env.get("AIRFLOW_OBS_HEARTBEAT_WEBHOOK_URL", ""),
    )
    for name, value in (
        ("AIRFLOW_OBS_SLACK_WEBHOOK_URL", endpoints.slack_webhook_url),
        ("AIRFLOW_OBS_PAGER_WEBHOOK_URL", endpoints.pager_webhook_url),
        ("AIRFLOW_OBS_HEARTBEAT_WEBHOOK_URL", endpoints.heartbeat_webhook_url),
    ):
        if value and not value.startswith(("http://", "https://")):
            raise SettingsError(f"{name} must be an http(s) URL, got a value starting {value[:8]!r}")
    if endpoints.smtp_smarthost and ":" not in endpoints.smtp_smarthost:
        raise SettingsError(f"AIRFLOW_OBS_SMTP_SMARTHOST={endpoints.smtp_smarthost!r} is not valid: expected host:port")
    return StackSettings(
        home=home,
        db=db,
        ports=ports,
        endpoints=endpoints,
        parallelism=_positive_int(env, "AIRFLOW_OBS_PARALLELISM", 8),
        executor=executor,
    )
