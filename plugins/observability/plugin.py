"""The AirflowPlugin that registers the toolkit with Airflow: its listeners, the DAG-level Monitoring view and
the task-level Trace and Grafana links.

Settings are read when Airflow loads the plugin: a bad one raises SettingsError (the variable, its value and
what was expected), which Airflow logs ("Failed to load plugin observability") and records as the plugin's
import error (GET /api/v2/plugins/importErrors, which the UI reads); the listeners stay unregistered.
"""

from __future__ import annotations

import importlib
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow_obs.observability import links, logs
from airflow_obs.observability import listeners as listener_hooks
from airflow_obs.observability.extra_links import TASK_LINKS
from airflow_obs.observability.settings import settings


class LazyASGIApp:
    """An ASGI app built on its first request from `module:function`.

    Every process that loads plugins imports this module (each task runner twice), but only the api-server
    serves `fastapi_apps`: deferring the import keeps the api-server's security and ORM modules out of tasks.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self._app: Any = None

    def load(self) -> Any:
        if self._app is None:
            module, _, function = self.target.partition(":")
            self._app = getattr(importlib.import_module(module), function)()
        return self._app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.load()(scope, receive, send)


class ObservabilityPlugin(AirflowPlugin):
    name = "observability"
    listeners = [listener_hooks]
    fastapi_apps = [
        {
            "app": LazyASGIApp("airflow_obs.observability.console.app:create_app"),
            "url_prefix": links.MONITORING_APP_PREFIX,
            "name": "airflow-obs console",
        }
    ]
    # The console: a DAG page's "Monitoring" tab, and the "On-call" entry of the navigation.
    external_views = [
        {"name": "Monitoring", "href": links.MONITORING_VIEW_HREF, "destination": "dag", "url_route": "monitoring"},
        {"name": "On-call", "href": links.CONSOLE_VIEW_HREF, "destination": "nav", "url_route": "oncall"},
    ]
    global_operator_extra_links = TASK_LINKS

    @classmethod
    def on_load(cls, *args, **kwargs) -> None:
        """Called by each plugin manager that loads the plugin (two in a task runner): idempotent."""
        settings()
        logs.ensure_logging()
