"""The plugin's settings (one module, clear errors) and the URL formats every message uses."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from airflow_obs.observability.links import dag_dashboard_url, runbook_url, task_log_url, trace_url
from airflow_obs.observability.settings import SETTINGS, SettingsError, env_var, read_settings

from tests.conftest import REPO_ROOT


def test_defaults_need_no_environment() -> None:
    settings = read_settings({})

    assert settings.airflow_url == "http://127.0.0.1:8080"
    assert settings.notify_timeout_seconds == 5.0 and settings.notify_max_attempts == 3
    assert settings.email_to == ()
    assert settings.alertmanager_api_url == "" and not settings.routes_through_alertmanager, "pages go direct"
    assert settings.slack_conn_id == "obs_slack"


def test_an_empty_connection_id_switches_that_sink_off() -> None:
    assert read_settings({"AIRFLOW__OBSERVABILITY__SLACK_CONN_ID": ""}).slack_conn_id == ""


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("AIRFLOW__OBSERVABILITY__AIRFLOW_URL", "airflow.example.com", "an http(s) URL"),
        ("AIRFLOW__OBSERVABILITY__NOTIFY_TIMEOUT_SECONDS", "0", "> 0 and <= 60"),
        ("AIRFLOW__OBSERVABILITY__NOTIFY_TIMEOUT_SECONDS", "soon", "> 0 and <= 60"),
        ("AIRFLOW__OBSERVABILITY__NOTIFY_MAX_ATTEMPTS", "11", "from 1 to 10"),
        ("AIRFLOW__OBSERVABILITY__ALERTMANAGER_API_URL", "alertmanager:9093", "an http(s) URL"),
        ("AIRFLOW__OBSERVABILITY__ENVIRONMENT", "prod\nuction", "a printable label value"),
        ("AIRFLOW__OBSERVABILITY__RECONCILE_INTERVAL_SECONDS", "0", "> 0 and <= 300"),
        ("AIRFLOW__OBSERVABILITY__EMAIL_TO", "oncall", "email addresses"),
        ("AIRFLOW__OBSERVABILITY__LOG_FORMAT", "xml", "one of json, text"),
        ("AIRFLOW__OBSERVABILITY__TRACE_URL_TEMPLATE", "https://tempo/trace", "{trace_id}"),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_what_was_expected(variable, value, expected) -> None:
    with pytest.raises(SettingsError) as error:
        read_settings({variable: value})

    assert variable in str(error.value) and repr(value) in str(error.value) and expected in str(error.value)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [env_var(name) for name in SETTINGS if f"`{env_var(name)}`" not in readme]
    assert missing == []


def test_the_task_log_link_addresses_the_try_and_the_mapped_instance_with_encoded_ids() -> None:
    settings = read_settings({"AIRFLOW__OBSERVABILITY__AIRFLOW_URL": "https://airflow.example.com/"})
    run_id = "manual__2026-11-25T12:00:00+00:00"

    plain = task_log_url(settings, "etl_orders", run_id, "load", 2)
    mapped = task_log_url(settings, "etl_orders", run_id, "load", 1, map_index=3)

    assert plain == (
        "https://airflow.example.com/dags/etl_orders/runs/manual__2026-11-25T12%3A00%3A00%2B00%3A00/tasks/load?try_number=2"
    )
    assert urlsplit(mapped).path.endswith("/tasks/load/mapped/3") and urlsplit(mapped).query == "try_number=1"


def test_dashboard_trace_and_runbook_links() -> None:
    settings = read_settings(
        {
            "AIRFLOW__OBSERVABILITY__GRAFANA_URL": "https://grafana.example.com",
            "AIRFLOW__OBSERVABILITY__RUNBOOK_BASE_URL": "https://docs/rb",
        }
    )

    dashboard = urlsplit(dag_dashboard_url(settings, "a dag&b"))
    assert dashboard.path == "/d/airflow-dag" and parse_qs(dashboard.query) == {"var-dag_id": ["a dag&b"]}
    trace = trace_url(settings, "0af7651916cd43dd8448eb211c80319c")
    assert trace.startswith("https://grafana.example.com/explore?left=") and "0af7651916cd43dd8448eb211c80319c" in trace
    assert " " not in trace and '"' not in trace and "%7B%7B" not in trace  # no doubled braces
    assert unquote(trace) == (
        'https://grafana.example.com/explore?left={"datasource":"tempo","queries":'
        '[{"refId":"A","query":"0af7651916cd43dd8448eb211c80319c"}]}'
    )
    assert runbook_url(settings, "AirflowTaskFailed") == "https://docs/rb/AirflowTaskFailed.md"


def test_runbook_links_default_to_the_api_servers_runbook_pages_of_the_airflow_url() -> None:
    settings = read_settings({"AIRFLOW__OBSERVABILITY__AIRFLOW_URL": "https://airflow.example.com/"})

    assert runbook_url(settings, "AirflowTaskFailed") == (
        "https://airflow.example.com/observability/runbooks/AirflowTaskFailed.md"
    )
