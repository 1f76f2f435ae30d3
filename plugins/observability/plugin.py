"""The AirflowPlugin that registers the toolkit with Airflow: its listeners ([4/7]); views and links come in [6/7].

Settings are read when Airflow loads the plugin: a bad one raises SettingsError (the variable, its value and
what was expected), which Airflow logs ("Failed to load plugin observability") and records as the plugin's
import error (GET /api/v2/plugins/importErrors, which the UI reads); the listeners stay unregistered.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from observability import listeners as listener_hooks
from observability import logs
from observability.settings import settings


class ObservabilityPlugin(AirflowPlugin):
    name = "observability"
    listeners = [listener_hooks]

    @classmethod
    def on_load(cls, *args, **kwargs) -> None:
        """Called by each plugin manager that loads the plugin (two in a task runner): idempotent."""
        settings()
        logs.ensure_logging()
