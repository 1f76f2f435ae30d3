"""Links from the Airflow UI back to monitoring: their URL formats, and how the plugin registers them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow_obs.observability import links
from airflow_obs.observability.extra_links import DashboardLink, TraceLink
from airflow_obs.observability.plugin import LazyASGIApp, ObservabilityPlugin
from airflow_obs.observability.settings import SettingsError, read_settings
from airflow_obs.observability.trace_context import derived_trace_id, hex_trace_id

from tests.conftest import REPO_ROOT

ODD_RUN_ID = "manual__2026-11-25T12:00:00+00:00 #2/?"


@pytest.fixture
def obs_settings():
    return read_settings(
        {
            "AIRFLOW__OBSERVABILITY__GRAFANA_URL": "https://grafana.example.com/",
            "AIRFLOW__OBSERVABILITY__ALERTMANAGER_URL": "https://am:9093/",
        }
    )


def test_the_alertmanager_link_filters_the_alert_list_on_the_dags_label(obs_settings) -> None:
    url = links.alertmanager_alerts_url(obs_settings, "etl.orders-v2")

    assert url == "https://am:9093/#/alerts?filter=%7Bdag_id%3D%22etl.orders-v2%22%7D"


def test_the_alertmanager_matcher_stays_one_quoted_value_whatever_the_dag_id_holds(obs_settings) -> None:
    fragment = urlsplit(links.alertmanager_alerts_url(obs_settings, 'a "b"&c=\\d')).fragment

    path, _, query = fragment.partition("?")
    assert path == "/alerts"
    assert parse_qs(query) == {"filter": ['{dag_id="a \\"b\\"&c=\\\\d"}']}


def test_the_alertmanager_url_has_a_documented_default_and_is_validated() -> None:
    assert read_settings({}).alertmanager_url == "http://127.0.0.1:9093"
    with pytest.raises(SettingsError) as error:
        read_settings({"AIRFLOW__OBSERVABILITY__ALERTMANAGER_URL": "alertmanager:9093"})
    assert (
        "[observability] alertmanager_url (AIRFLOW__OBSERVABILITY__ALERTMANAGER_URL)='alertmanager:9093': "
        "expected an http(s) URL" in str(error.value)
    )


def test_the_task_dashboard_link_sets_both_variables_encoded(obs_settings) -> None:
    url = urlsplit(links.task_dashboard_url(obs_settings, "a dag&x", "load/part=1"))

    assert url.netloc == "grafana.example.com" and url.path == "/d/airflow-dag"
    assert parse_qs(url.query) == {"var-dag_id": ["a dag&x"], "var-task_id": ["load/part=1"]}
    assert " " not in url.query and url.query.count("&") == 1


def test_the_trace_extra_link_opens_the_trace_of_the_task_instances_run(obs_settings, monkeypatch) -> None:
    monkeypatch.setattr("airflow_obs.observability.extra_links.settings", lambda: obs_settings)
    key = TaskInstanceKey(dag_id="etl", task_id="load", run_id=ODD_RUN_ID, try_number=2, map_index=3)

    url = TraceLink().get_link(None, ti_key=key)

    expected_trace = hex_trace_id(derived_trace_id("etl", ODD_RUN_ID))
    assert url == links.trace_url(obs_settings, expected_trace)
    assert f'"query":"{expected_trace}"' in unquote(url)


def test_the_grafana_extra_link_opens_the_dag_dashboard_on_the_task(obs_settings, monkeypatch) -> None:
    monkeypatch.setattr("airflow_obs.observability.extra_links.settings", lambda: obs_settings)
    key = TaskInstanceKey(dag_id="etl.orders", task_id="group.load", run_id=ODD_RUN_ID)

    url = DashboardLink().get_link(None, ti_key=key)

    assert parse_qs(urlsplit(url).query) == {"var-dag_id": ["etl.orders"], "var-task_id": ["group.load"]}


def test_the_plugin_adds_a_monitoring_tab_to_the_dag_page_served_by_its_own_app() -> None:
    view, nav = ObservabilityPlugin.external_views
    (app,) = ObservabilityPlugin.fastapi_apps

    assert view["name"] == "Monitoring" and view["destination"] == "dag"
    # The UI substitutes only its own placeholders; the href must be one of the app's routes once it does.
    assert view["href"] == "/observability/dags/{DAG_ID}/monitoring"
    assert view["href"].startswith(app["url_prefix"] + "/")
    assert nav == {"name": "On-call", "href": "/observability/console", "destination": "nav", "url_route": "oncall"}
    assert not any(app["url_prefix"].startswith(reserved) for reserved in ("/api/v2", "/ui", "/execution", "/auth"))


def test_the_monitoring_app_is_built_only_when_first_served() -> None:
    lazy = LazyASGIApp("airflow_obs.observability.console.app:create_app")

    assert lazy._app is None
    routes = [getattr(route, "path", "") for route in lazy.load().routes]
    assert links.MONITORING_PAGE_ROUTE in routes
    assert lazy.load() is lazy.load()


# In a fresh interpreter: loading plugins configures the plugin's logging, and Airflow caches what it loaded.
LIST_UI_PLUGINS = """
import json
from airflow import plugins_manager
views, _ = plugins_manager._get_ui_plugins()
apps, _ = plugins_manager.get_fastapi_plugins()
print(json.dumps({
    "views": views,
    "prefixes": [app["url_prefix"] for app in apps],
    "links": sorted(link.name for link in plugins_manager.get_global_operator_extra_links()),
}))
"""


def test_airflow_registers_the_view_the_app_and_both_task_links_from_the_plugin(tmp_path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", LIST_UI_PLUGINS], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])

    assert [view for view in found["views"] if view["name"] in ("Monitoring", "On-call")] == (
        ObservabilityPlugin.external_views
    )
    assert found["prefixes"].count(links.MONITORING_APP_PREFIX) == 1
    assert found["links"] == ["Dashboard", "Trace"]
