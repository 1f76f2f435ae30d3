"""The local stack's settings and preflight: bad values and busy ports are refused naming the variable."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from local_stack.preflight import (
    PreflightError,
    check_ports,
    check_writable,
    missing_packages,
    port_is_free,
    system_packages,
)
from local_stack.settings import LOOPBACK, PORTS, SettingsError, load_settings
from tests.unit.stack_helpers import (
    CUSTOM_PORTS,
    distinct_free_ports,
    settings_for,
)

# --- settings ---------------------------------------------------------------------------------------------


def test_defaults_are_the_loopback_ports_of_the_port_table(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "home")

    assert dict(settings.ports) == {spec.component: spec.default for spec in PORTS}
    assert settings.home == (tmp_path / "home").resolve()
    assert settings.db == "sqlite"
    for spec in PORTS:
        assert settings.url(spec.component) == f"http://127.0.0.1:{spec.default}"


def test_each_port_variable_moves_its_own_component(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, **CUSTOM_PORTS)

    assert dict(settings.ports) == {spec.component: int(CUSTOM_PORTS[spec.env_var]) for spec in PORTS}


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        pytest.param({"AIRFLOW_OBS_EXPORTER_PORT": "abc"}, ["AIRFLOW_OBS_EXPORTER_PORT", "'abc'"], id="non-numeric"),
        pytest.param({"AIRFLOW_OBS_EXPORTER_PORT": "-5"}, ["AIRFLOW_OBS_EXPORTER_PORT", "'-5'"], id="negative"),
        pytest.param({"AIRFLOW_OBS_PROMETHEUS_PORT": "70000"}, ["AIRFLOW_OBS_PROMETHEUS_PORT", "'70000'"], id="big"),
        pytest.param({"AIRFLOW_OBS_ALERTMANAGER_PORT": "0"}, ["AIRFLOW_OBS_ALERTMANAGER_PORT", "'0'"], id="zero"),
        pytest.param(
            {"AIRFLOW_OBS_PROMETHEUS_PORT": "19112"},
            ["AIRFLOW_OBS_EXPORTER_PORT", "AIRFLOW_OBS_PROMETHEUS_PORT", "19112"],
            id="same-port-as-a-default",
        ),
        pytest.param(
            {"AIRFLOW_OBS_SLACK_CAPTURE_PORT": "20000", "AIRFLOW_OBS_SMTP_CAPTURE_PORT": "20000"},
            ["AIRFLOW_OBS_SLACK_CAPTURE_PORT", "AIRFLOW_OBS_SMTP_CAPTURE_PORT", "20000"],
            id="two-variables-same-port",
        ),
        pytest.param({"AIRFLOW_OBS_DB": "mysql"}, ["AIRFLOW_OBS_DB", "'mysql'"], id="db-kind"),
        pytest.param(
            {"AIRFLOW_OBS_SMTP_SMARTHOST": "smtp.example"},
            ["AIRFLOW_OBS_SMTP_SMARTHOST", "'smtp.example'", "host:port"],
            id="smarthost-without-port",
        ),
        pytest.param(
            {"AIRFLOW_OBS_SMTP_SMARTHOST": "smtp.example:abc"},
            ["AIRFLOW_OBS_SMTP_SMARTHOST", "'smtp.example:abc'", "host:port"],
            id="smarthost-port-not-a-number",
        ),
        pytest.param({"AIRFLOW_OBS_PARALLELISM": "0"}, ["AIRFLOW_OBS_PARALLELISM", "'0'"], id="parallelism"),
        pytest.param(
            {"AIRFLOW_OBS_SMTP_REQUIRE_TLS": "maybe"}, ["AIRFLOW_OBS_SMTP_REQUIRE_TLS", "'maybe'", "true"], id="bool"
        ),
        pytest.param(
            {"AIRFLOW_OBS_PAGER_WEBHOOK_URL": "pager.example/hook"},
            ["AIRFLOW_OBS_PAGER_WEBHOOK_URL", "http(s)"],
            id="pager-url-without-scheme",
        ),
    ],
)
def test_a_bad_setting_raises_naming_the_variable_and_the_value(
    tmp_path: Path, env: dict[str, str], fragments: list[str]
) -> None:
    with pytest.raises(SettingsError) as raised:
        settings_for(tmp_path, **env)

    for fragment in fragments:
        assert fragment in str(raised.value)


def test_a_slack_url_that_is_not_http_is_refused_without_echoing_the_secret(tmp_path: Path) -> None:
    url = "ftp://hooks.example/SECRETTOKEN"

    with pytest.raises(SettingsError) as raised:
        settings_for(tmp_path, AIRFLOW_OBS_SLACK_WEBHOOK_URL=url)

    message = str(raised.value)
    assert "AIRFLOW_OBS_SLACK_WEBHOOK_URL" in message
    assert "ftp://" in message
    assert url not in message
    assert "SECRETTOKEN" not in message


@pytest.mark.parametrize("variable", ["AIRFLOW_OBS_PAGER_WEBHOOK_URL", "AIRFLOW_OBS_HEARTBEAT_WEBHOOK_URL"])
def test_no_webhook_url_is_echoed_neither_in_an_error_nor_in_the_settings_repr(tmp_path: Path, variable: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings_for(tmp_path, **{variable: "hooks.example/SECRETTOKEN"})
    assert variable in str(raised.value)
    assert "SECRETTOKEN" not in str(raised.value)

    settings = settings_for(tmp_path, **{variable: "https://hooks.example/SECRETTOKEN"})
    assert "SECRETTOKEN" not in repr(settings)


def test_every_bad_variable_of_a_group_is_named_at_once(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        settings_for(tmp_path, AIRFLOW_OBS_AIRFLOW_PORT="x", AIRFLOW_OBS_FLOWER_PORT="0")

    assert "AIRFLOW_OBS_AIRFLOW_PORT='x'" in str(raised.value)
    assert "AIRFLOW_OBS_FLOWER_PORT='0'" in str(raised.value)


def test_empty_values_are_defaults_and_other_readers_variables_are_left_alone(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        AIRFLOW_OBS_DB="",
        AIRFLOW_OBS_PROMETHEUS_PORT="",
        AIRFLOW_OBS_SMTP_TO="",
        AIRFLOW_OBS_ALERT_QUEUED_TOO_LONG="ten minutes",  # alert_rules/alerting/thresholds.py judges these
        AIRFLOW_OBS_EXPORTER_SERIES_BUDGET="not mine",  # and the exporter these
        AIRFLOW__OBSERVABILITY__AIRFLOW_URL="not mine either",
    )

    assert settings.db == "sqlite"
    assert settings.url("prometheus") == "http://127.0.0.1:19090"
    assert settings.endpoints.smtp_to == "oncall@localhost"


def test_values_are_converted_choices_ignore_case_and_home_is_resolved(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path / "a" / ".." / "home",
        AIRFLOW_OBS_EXECUTOR=" Celery ",
        AIRFLOW_OBS_PARALLELISM="6",
        AIRFLOW_OBS_SMTP_SMARTHOST="smtp.example:587",
        AIRFLOW_OBS_SMTP_REQUIRE_TLS="yes",
        AIRFLOW_OBS_SLACK_WEBHOOK_URL="https://hooks.example/T/B/X",
    )

    assert (settings.executor, settings.db, settings.parallelism) == ("celery", "postgres", 6)
    assert settings.home == (tmp_path / "home").resolve()
    assert settings.airflow_home == settings.home / "airflow"
    assert settings.capture_file("slack") == settings.home / "captures" / "slack.jsonl"
    assert settings.endpoints.smtp_smarthost == "smtp.example:587"
    assert settings.endpoints.smtp_require_tls is True
    assert settings.endpoints.slack_webhook_url == "https://hooks.example/T/B/X"


def test_an_explicit_environment_is_the_only_one_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_OBS_DB", "mysql")
    monkeypatch.setenv("AIRFLOW_OBS_AIRFLOW_PORT", "21080")

    settings = load_settings(env={"AIRFLOW_OBS_HOME": str(tmp_path)})

    assert settings.db == "sqlite"
    assert settings.ports["airflow"] == 18080
    monkeypatch.setenv("AIRFLOW_OBS_HOME", str(tmp_path))
    with pytest.raises(SettingsError, match="AIRFLOW_OBS_DB='mysql'"):
        load_settings()  # the process environment, when none is given


# --- preflight --------------------------------------------------------------------------------------------


def test_a_taken_port_stops_preflight_naming_the_variable_that_moves_it(tmp_path: Path) -> None:
    with distinct_free_ports(len(PORTS)) as ports:
        env = {spec.env_var: str(port) for spec, port in zip(PORTS, ports, strict=True)}
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        taken = listener.getsockname()[1]
        settings = settings_for(tmp_path, **{**env, "AIRFLOW_OBS_EXPORTER_PORT": str(taken)})

        assert not port_is_free(taken)
        with pytest.raises(PreflightError) as raised:
            check_ports(settings)

    message = str(raised.value)
    assert f"port {taken} " in message
    assert "set AIRFLOW_OBS_EXPORTER_PORT to a free port" in message
    # Only the taken port is reported.
    assert [spec.env_var for spec in PORTS if spec.env_var in message] == ["AIRFLOW_OBS_EXPORTER_PORT"]


def test_free_ports_pass_preflight(tmp_path: Path) -> None:
    with distinct_free_ports(len(PORTS)) as ports:
        env = {spec.env_var: str(port) for spec, port in zip(PORTS, ports, strict=True)}
    settings = settings_for(tmp_path, AIRFLOW_OBS_DB="postgres", **env)

    check_ports(settings)  # raises if any is taken


@pytest.mark.parametrize(
    ("variable", "enabling"),
    [
        ("AIRFLOW_OBS_POSTGRES_PORT", {"AIRFLOW_OBS_DB": "postgres"}),
        ("AIRFLOW_OBS_POSTGRES_EXPORTER_PORT", {"AIRFLOW_OBS_DB": "postgres"}),
        ("AIRFLOW_OBS_REDIS_PORT", {"AIRFLOW_OBS_EXECUTOR": "celery"}),
        ("AIRFLOW_OBS_FLOWER_PORT", {"AIRFLOW_OBS_EXECUTOR": "celery"}),
    ],
)
def test_a_port_of_postgres_or_celery_is_only_checked_when_the_stack_runs_it(
    tmp_path: Path, variable: str, enabling: dict[str, str]
) -> None:
    with distinct_free_ports(len(PORTS)) as ports:
        env = {spec.env_var: str(port) for spec, port in zip(PORTS, ports, strict=True)}
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        env[variable] = str(listener.getsockname()[1])

        check_ports(settings_for(tmp_path, **env))
        with pytest.raises(PreflightError, match=variable):
            check_ports(settings_for(tmp_path, **enabling, **env))


def test_an_unwritable_home_stops_preflight_naming_the_variable_that_moves_it(tmp_path: Path) -> None:
    regular_file = tmp_path / "a-file"
    regular_file.write_text("not a folder")
    home = regular_file / "home"  # root cannot create this either: its parent is a file

    with pytest.raises(PreflightError) as raised:
        check_writable(home)

    assert "AIRFLOW_OBS_HOME" in str(raised.value)
    assert str(home) in str(raised.value)


def test_a_writable_home_passes_and_is_left_clean(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"

    check_writable(home)

    assert home.is_dir()
    assert list(home.iterdir()) == []


def test_a_package_whose_proof_file_is_missing_is_reported() -> None:
    assert missing_packages({"x": "/nonexistent/bin"}) == ["x"]
    assert missing_packages({"python": sys.executable, "x": "/nonexistent/bin"}) == ["x"]
    assert missing_packages({"python": sys.executable}) == []


def test_the_system_package_list_includes_prometheus_and_its_binary() -> None:
    packages = system_packages()

    assert packages["prometheus"] == "/usr/bin/prometheus"
    assert packages["prometheus-alertmanager"] == "/usr/bin/prometheus-alertmanager"
    assert all(not name.startswith("#") for name in packages)
