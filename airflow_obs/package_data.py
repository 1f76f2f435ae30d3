"""Where the shipped files are: the rules, Alertmanager templates, dashboards, runbooks and StatsD mapping.

Installed, they are package data under airflow_obs/data/, laid out as in the repository (pyproject's wheel
sources); in a checkout they are the repository's own folders, so an edit there is what every command reads.
"""

from __future__ import annotations

from pathlib import Path

from airflow_obs import _CHECKOUT, _is_checkout

_ROOT = _CHECKOUT if _is_checkout() else Path(__file__).resolve().parent / "data"

RULES_DIR = _ROOT / "alert_rules"
ALERTMANAGER_TEMPLATES_DIR = RULES_DIR / "templates"
ALERTMANAGER_ROUTING_FILE = RULES_DIR / "alertmanager.yml"
DASHBOARDS_DIR = _ROOT / "dashboards"
RUNBOOKS_DIR = _ROOT / "runbooks"
STATSD_MAPPING_FILE = _ROOT / "exporters" / "statsd_mapping.yml"
