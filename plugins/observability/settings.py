"""Every setting of the plugin: the `[observability]` section of Airflow's configuration, read in one place.

Airflow reads it as it reads its own sections: airflow.cfg, `AIRFLOW__OBSERVABILITY__<KEY>` variables (and their
`_CMD`/`_SECRET` forms), with the defaults here; the section is declared to Airflow (types, defaults,
descriptions) by provider_info.py, so `airflow config list` shows it. Without Airflow (`airflow-obs rules export`
in a Prometheus image) the same variables are read from the environment.

A bad value fails at plugin load with the key, the value and what was expected (never a silent
fallback): a typo in a notification setting must not turn into alerts that quietly go nowhere.
Secrets are not settings: Slack, SMTP and webhook credentials live in Airflow connections, which
the settings only name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow_obs.package_data import RUNBOOKS_DIR


class SettingsError(ValueError):
    """A plugin setting has a value the plugin cannot use."""


def _url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("an http(s) URL such as https://airflow.example.com")
    return raw.rstrip("/")


def _optional_url(raw: str) -> str:
    return _url(raw) if raw.strip() else ""


def _label_value(raw: str) -> str:
    value = raw.strip()
    if any(not char.isprintable() for char in value):
        raise ValueError("a printable label value such as production (or empty)")
    return value


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not low < value <= high:
            raise ValueError(f"a number of seconds > {low:g} and <= {high:g}")
        return value

    return parse


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.strip().isdigit() or not low <= int(raw) <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return int(raw)

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(f"one of {', '.join(options)}")
        return raw

    return parse


def _trace_template(raw: str) -> str:
    if "{trace_id}" not in raw:
        raise ValueError("a URL template containing {trace_id} (and optionally {grafana_url})")
    return raw


def _text(raw: str) -> str:
    return raw.strip()


def _emails(raw: str) -> tuple[str, ...]:
    addresses = tuple(address.strip() for address in raw.split(",") if address.strip())
    if any("@" not in address for address in addresses):
        raise ValueError("comma-separated email addresses")
    return addresses


def _observability_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "observability"


# Grafana's Explore view on the trace store (Tempo in the compose stack), opened on one trace. Placeholders are
# replaced literally (links.trace_url), so the JSON's braces are written as they are.
DEFAULT_TRACE_URL_TEMPLATE = (
    '{grafana_url}/explore?left={"datasource":"tempo","queries":[{"refId":"A","query":"{trace_id}"}]}'
)


SECTION = "observability"


# Airflow's variables for the section: AIRFLOW__OBSERVABILITY__<KEY>.
ENV_PREFIX = f"AIRFLOW__{SECTION.upper()}__"


def env_var(name: str) -> str:
    """The variable Airflow reads a key of the section from."""
    return f"{ENV_PREFIX}{name.upper()}"


@dataclass(frozen=True)
class Setting:
    default: str
    parse: Callable[[str], Any]
    meaning: str
    kind: str = "string"  # as Airflow's config types it: string, integer, float


# key of the [observability] section -> how it is read. docs/plugin.md's table is checked against this.
SETTINGS: dict[str, Setting] = {
    "airflow_url": Setting("http://127.0.0.1:8080", _url, "Airflow UI base URL in every link"),
    # Empty (no Grafana, as on the embedded stack): dashboard and trace links open the console pages instead.
    "grafana_url": Setting("", _optional_url, "Grafana base URL in links ('' for the console's pages)"),
    # What the console reads: the learned baselines and component health (Prometheus), traces (Tempo).
    "prometheus_url": Setting("", _optional_url, "Prometheus the console reads baselines from ('' for none)"),
    "tempo_url": Setting("", _optional_url, "Tempo's API the console reads traces from ('' for the JSONL store)"),
    # The compose stack's Alertmanager port; `make up` moves it (AIRFLOW_OBS_ALERTMANAGER_PORT) and sets this.
    "alertmanager_url": Setting("http://127.0.0.1:9093", _url, "Alertmanager base URL in the Monitoring view"),
    # Where the plugin posts its alerts (Alertmanager's API, as the plugin reaches it: in Kubernetes a service
    # name, not the public URL of alertmanager_url). Empty: no router, the plugin pages Slack, email and the webhook
    # itself.
    "alertmanager_api_url": Setting(
        "",
        _optional_url,
        "Alertmanager that routes the plugin's alerts ('' to page directly)",
    ),
    # Prometheus's external label of the same name: Alertmanager's inhibitions compare it (`equal: [environment]`).
    "environment": Setting("", _label_value, "environment label on the plugin's alerts (as Prometheus's)"),
    "reconcile_interval_seconds": Setting(
        "10",
        _number(0, 300),
        "how often the scheduler resolves recovered alerts and redelivers the spool",
        "float",
    ),
    # Empty: the api-server's own runbook pages ({airflow_url}/observability/runbooks), which open wherever Airflow
    # runs; a team's wiki or repository folder of <Alert>.md pages instead, when set.
    "runbook_base_url": Setting(
        "",
        _optional_url,
        "where runbook links point ('' for the runbook pages the api-server serves)",
    ),
    "runbooks_dir": Setting(
        "",
        _text,
        "folder of <Alert>.md files the api-server serves (default: the toolkit's runbooks/)",
    ),
    "trace_url_template": Setting(DEFAULT_TRACE_URL_TEMPLATE, _trace_template, "link to one trace"),
    "traces_file": Setting(
        "",
        _text,
        "JSONL file for spans when no OTLP endpoint is set (default: under AIRFLOW_HOME)",
    ),
    "spool_dir": Setting("", _text, "undeliverable notifications wait here (default: under AIRFLOW_HOME)"),
    "notify_timeout_seconds": Setting("5", _number(0, 60), "most time one notification may add to a task", "float"),
    "notify_max_attempts": Setting("3", _count(1, 10), "delivery attempts (5xx, 429) before spooling", "integer"),
    "slack_conn_id": Setting("obs_slack", _text, "Slack incoming-webhook connection ('' to disable)"),
    "smtp_conn_id": Setting("obs_smtp", _text, "SMTP connection ('' to disable)"),
    "email_to": Setting("", _emails, "recipients of email notifications (none: no email)"),
    "webhook_conn_id": Setting("obs_webhook", _text, "generic JSON webhook connection ('' to disable)"),
    "log_format": Setting("json", _choice("json", "text"), "the toolkit's own log lines"),
}


@dataclass(frozen=True)
class PluginSettings:
    airflow_url: str
    grafana_url: str
    prometheus_url: str
    tempo_url: str
    alertmanager_url: str
    alertmanager_api_url: str
    environment: str
    reconcile_interval_seconds: float
    runbook_base_url: str
    runbooks_dir: str
    trace_url_template: str
    traces_file: str
    spool_dir: str
    notify_timeout_seconds: float
    notify_max_attempts: int
    slack_conn_id: str
    smtp_conn_id: str
    email_to: tuple[str, ...]
    webhook_conn_id: str
    log_format: str

    @property
    def routes_through_alertmanager(self) -> bool:
        return bool(self.alertmanager_api_url)

    @property
    def traces_path(self) -> Path:
        return Path(self.traces_file) if self.traces_file else _observability_home() / "traces.jsonl"

    @property
    def runbooks_path(self) -> Path:
        return Path(self.runbooks_dir) if self.runbooks_dir else RUNBOOKS_DIR

    @property
    def spool_path(self) -> Path:
        return Path(self.spool_dir) if self.spool_dir else _observability_home() / "spool"


def parse_settings(raw_value: Callable[[str, str], str]) -> PluginSettings:
    """Parse every setting from raw_value(key, default); the first bad one raises SettingsError naming it."""
    values: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        # Set but empty counts as set: that is how a connection id is switched off.
        raw = raw_value(name, setting.default)
        try:
            values[name] = setting.parse(raw)
        except ValueError as reason:
            raise SettingsError(f"[{SECTION}] {name} ({env_var(name)})={raw!r}: expected {reason}") from None
    return PluginSettings(**values)


def read_settings(environ: Mapping[str, str] = os.environ) -> PluginSettings:
    """The settings as the AIRFLOW__OBSERVABILITY__* variables of `environ` set them (no airflow.cfg)."""
    return parse_settings(lambda name, default: environ.get(env_var(name), default))


@cache
def settings() -> PluginSettings:
    """The process's settings, read once (at plugin load): Airflow's configuration, else the environment."""
    try:
        from airflow.configuration import conf
    except ImportError:
        return read_settings()
    return parse_settings(lambda name, default: conf.get(SECTION, name, fallback=default))
