"""Alertmanager's config for the local stack: the committed routing plus this deployment's endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from local_stack.secrets import write_private
from local_stack.settings import LOOPBACK, REPO_ROOT, StackSettings

ROUTING_FILE = REPO_ROOT / "alert_rules" / "alertmanager.yml"

# Which endpoint each receiver's webhooks deliver to, and the capture path that stands in for it.
WEBHOOK_ENDPOINTS = {
    "oncall-critical": ("pager_webhook_url", "/pager"),
    "heartbeat": ("heartbeat_webhook_url", "/heartbeat"),
}


def _capture_url(settings: StackSettings, component: str, path: str) -> str:
    return f"http://{LOOPBACK}:{settings.ports[component]}{path}"


def render_alertmanager_config(settings: StackSettings, routing_file: Path = ROUTING_FILE) -> dict[str, Any]:
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
    if endpoints.smtp_username:
        glob["smtp_auth_username"] = endpoints.smtp_username
    if endpoints.smtp_password_file:
        glob["smtp_auth_password_file"] = endpoints.smtp_password_file
    config["templates"] = [str(REPO_ROOT / "alert_rules" / t) for t in config.get("templates", [])]

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


def write_alertmanager_config(settings: StackSettings) -> Path:
    path = settings.generated_dir / "alertmanager.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(render_alertmanager_config(settings), sort_keys=False))
    return path
