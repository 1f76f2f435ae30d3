"""Alertmanager's config for the local stack: the committed routing plus this deployment's endpoints."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from local_stack.secrets import write_private
from local_stack.settings import LOOPBACK, REPO_ROOT, SettingsError, StackSettings

ROUTING_FILE = REPO_ROOT / "alert_rules" / "alertmanager.yml"

# Which endpoint each receiver's webhooks deliver to, and the capture path that stands in for it.
WEBHOOK_ENDPOINTS = {
    "oncall-critical": ("pager_webhook_url", "/pager"),
    "heartbeat": ("heartbeat_webhook_url", "/heartbeat"),
}
# The template of alert_rules/templates/links.tmpl holding the Airflow UI's home (the fallback of the
# Airflow button): a deployment setting, redefined in a generated template file listed after the committed
# ones, since Alertmanager keeps the last definition of a template name.
AIRFLOW_HOME_TEMPLATE = "airflow_obs.airflow_home"


def _capture_url(settings: StackSettings, component: str, path: str) -> str:
    return f"http://{LOOPBACK}:{settings.ports[component]}{path}"


# Grouping timings a test (or an impatient rehearsal) may shorten; every route that sets one gets the override.
TIMING_OVERRIDES = {
    "group_wait": "AIRFLOW_OBS_ALERTMANAGER_GROUP_WAIT",
    "group_interval": "AIRFLOW_OBS_ALERTMANAGER_GROUP_INTERVAL",
    "repeat_interval": "AIRFLOW_OBS_ALERTMANAGER_REPEAT_INTERVAL",
}
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _timing_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    overrides = {}
    for key, variable in TIMING_OVERRIDES.items():
        value = environ.get(variable, "").strip()
        if not value:
            continue
        if not _DURATION.match(value):
            raise SettingsError(f"{variable}={value!r}: expected an Alertmanager duration such as 1s, 5m or 4h")
        overrides[key] = value
    return overrides


def _apply_timings(route: dict[str, Any], overrides: dict[str, str], root: bool = True) -> None:
    for key, value in overrides.items():
        if root or key in route:
            route[key] = value
    for child in route.get("routes", []):
        _apply_timings(child, overrides, root=False)


def render_alertmanager_config(
    settings: StackSettings, routing_file: Path = ROUTING_FILE, environ: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """Return the routing with endpoints filled in: real ones from settings, else the local captures."""
    config = yaml.safe_load(routing_file.read_text())
    endpoints = settings.endpoints

    slack_url = endpoints.slack_webhook_url or _capture_url(settings, "slack_capture", "/services/LOCAL/CAPTURE")
    # Written to a private file and referenced by path, so the URL (a secret) never sits in the config.
    slack_file = settings.secrets_dir / "slack_webhook_url"
    write_private(slack_file, slack_url + "\n")

    glob = config.setdefault("global", {})
    glob["slack_api_url_file"] = str(slack_file)
    glob["smtp_smarthost"] = endpoints.smtp_smarthost or f"{LOOPBACK}:{settings.ports['smtp_capture']}"
    glob["smtp_from"] = endpoints.smtp_from
    glob["smtp_require_tls"] = endpoints.smtp_require_tls
    # The committed placeholders authenticate; the capture takes no login, a real relay gets the configured one.
    glob.pop("smtp_auth_username", None)
    glob.pop("smtp_auth_password_file", None)
    if endpoints.smtp_username:
        glob["smtp_auth_username"] = endpoints.smtp_username
    if endpoints.smtp_password_file:
        glob["smtp_auth_password_file"] = endpoints.smtp_password_file

    # Template paths are relative to the routing file, as Alertmanager reads them; the generated one comes last.
    deployment_templates = settings.generated_dir / "alertmanager_deployment.tmpl"
    deployment_templates.parent.mkdir(parents=True, exist_ok=True)
    airflow_home = settings.url("airflow")
    deployment_templates.write_text('{{ define "' + AIRFLOW_HOME_TEMPLATE + '" }}' + airflow_home + "{{ end }}\n")
    config["templates"] = [str(routing_file.parent.resolve() / t) for t in config.get("templates", [])]
    config["templates"].append(str(deployment_templates))

    _apply_timings(config["route"], _timing_overrides(environ))

    for receiver in config["receivers"]:
        for email in receiver.get("email_configs", []):
            email["to"] = endpoints.smtp_to
        if receiver["name"] in WEBHOOK_ENDPOINTS:
            field, capture_path = WEBHOOK_ENDPOINTS[receiver["name"]]
            url = getattr(endpoints, field) or _capture_url(settings, "webhook_capture", capture_path)
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = url
        elif receiver.get("webhook_configs"):
            raise ValueError(
                f"receiver {receiver['name']!r} in {routing_file} has webhooks but no endpoint: "
                f"expected it in WEBHOOK_ENDPOINTS ({', '.join(WEBHOOK_ENDPOINTS)})"
            )
    return config


class _PlainDumper(yaml.SafeDumper):
    """Writes a mapping merged from a YAML anchor in full each time, not as an &id001 alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_alertmanager_config(settings: StackSettings) -> Path:
    path = settings.generated_dir / "alertmanager.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(render_alertmanager_config(settings), Dumper=_PlainDumper, sort_keys=False))
    return path
