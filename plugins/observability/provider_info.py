"""What Airflow learns about the toolkit through the `apache_airflow_provider` entry point: its config section.

Airflow calls this while it initialises its configuration, so nothing here may import Airflow. Declaring the
section makes `airflow config list` and `airflow config get-value observability <key>` show its keys with their
defaults and descriptions, as they show a provider's.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from airflow_obs.observability.settings import SECTION, SETTINGS

DISTRIBUTION = "airflow-observability"


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # imported from a checkout that was never installed
        return "0+unknown"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": DISTRIBUTION,
        "name": "Airflow observability toolkit",
        "description": "Listeners, alerts with deep links, traces and an on-call console for Airflow 3.",
        "versions": [_version()],
        "config": {
            SECTION: {
                "description": "The observability plugin: where its links point, where it sends alerts, and how.",
                "options": {
                    name: {
                        "description": setting.meaning,
                        "version_added": "0.1.0",
                        "type": setting.kind,
                        "example": None,
                        "default": setting.default,
                        # Braces are our placeholders, not Airflow's: Airflow 3.1 formats a default that is not
                        # marked a template with its own variables, and fails on {grafana_url}.
                        "is_template": "{" in setting.default,
                    }
                    for name, setting in SETTINGS.items()
                },
            }
        },
    }
