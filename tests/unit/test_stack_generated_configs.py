"""The configs the local stack generates: Alertmanager, Prometheus, supervisord and Airflow's environment."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from supervisor.options import ServerOptions

from local_stack.airflow_env import airflow_env
from local_stack.alertmanager_config import (
    ROUTING_FILE,
    WEBHOOK_ENDPOINTS,
    render_alertmanager_config,
    write_alertmanager_config,
)
from local_stack.programs import stack_programs
from local_stack.prometheus_config import SCRAPE_JOBS, write_prometheus_config
from local_stack.settings import REPO_ROOT, SettingsError, StackSettings
from local_stack.supervisor_config import render_supervisor_config, write_supervisor_config
from tests.unit.stack_helpers import (
    AIRFLOW_PROGRAMS,
    AMTOOL,
    CUSTOM_PORTS,
    PROMTOOL,
    mode,
    parse_supervisor,
    program_env,
    run,
    settings_for,
)

# --- Alertmanager -----------------------------------------------------------------------------------------


def test_the_rendered_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    path = write_alertmanager_config(settings_for(tmp_path))

    result = run(AMTOOL, "check-config", str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 receivers" in result.stdout


def test_with_default_endpoints_alertmanager_delivers_to_the_local_captures(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, **CUSTOM_PORTS)
    ports = settings.ports

    config = yaml.safe_load(write_alertmanager_config(settings).read_text())

    slack_file = settings.secrets_dir / "slack_webhook_url"
    assert config["global"]["slack_api_url_file"] == str(slack_file)
    assert slack_file.read_text().strip() == f"http://127.0.0.1:{ports['slack_capture']}/services/LOCAL/CAPTURE"
    assert mode(slack_file) == 0o600
    assert config["global"]["smtp_smarthost"] == f"127.0.0.1:{ports['smtp_capture']}"
    assert config["global"]["smtp_require_tls"] is False
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    webhook = f"http://127.0.0.1:{ports['webhook_capture']}"
    assert [hook["url"] for hook in receivers["oncall-critical"]["webhook_configs"]] == [f"{webhook}/pager"]
    assert [hook["url"] for hook in receivers["heartbeat"]["webhook_configs"]] == [f"{webhook}/heartbeat"]
    emails = [email for receiver in config["receivers"] for email in receiver.get("email_configs", [])]
    assert emails and {email["to"] for email in emails} == {"oncall@localhost"}
    assert all(Path(template).is_absolute() for template in config["templates"])


def test_configured_endpoints_replace_the_captures_and_the_slack_url_stays_out_of_the_config(tmp_path: Path) -> None:
    slack = "https://hooks.slack.example/services/T000/B000/SECRETTOKEN"
    settings = settings_for(
        tmp_path,
        AIRFLOW_OBS_SLACK_WEBHOOK_URL=slack,
        AIRFLOW_OBS_PAGER_WEBHOOK_URL="https://pager.example/v2/enqueue",
        AIRFLOW_OBS_SMTP_SMARTHOST="smtp.example:587",
        AIRFLOW_OBS_SMTP_TO="team@example.org",
    )

    path = write_alertmanager_config(settings)
    text = path.read_text()
    config = yaml.safe_load(text)

    assert slack not in text
    assert "SECRETTOKEN" not in text
    assert (settings.secrets_dir / "slack_webhook_url").read_text().strip() == slack
    assert config["global"]["smtp_smarthost"] == "smtp.example:587"
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert [hook["url"] for hook in receivers["oncall-critical"]["webhook_configs"]] == [
        "https://pager.example/v2/enqueue"
    ]
    # The heartbeat has no endpoint of its own configured: it stays on the capture.
    assert receivers["heartbeat"]["webhook_configs"][0]["url"].endswith(
        f":{settings.ports['webhook_capture']}/heartbeat"
    )
    assert receivers["email-digest"]["email_configs"][0]["to"] == "team@example.org"
    assert run(AMTOOL, "check-config", str(path)).returncode == 0


def test_a_receiver_with_webhooks_but_no_endpoint_mapping_is_refused(tmp_path: Path) -> None:
    routing = yaml.safe_load(ROUTING_FILE.read_text())
    routing["receivers"].append({"name": "ops-webhook", "webhook_configs": [{"url": "http://ops.invalid/"}]})
    routing_file = tmp_path / "alertmanager.yml"
    routing_file.write_text(yaml.safe_dump(routing))
    assert "ops-webhook" not in WEBHOOK_ENDPOINTS

    with pytest.raises(ValueError, match="'ops-webhook'"):
        render_alertmanager_config(settings_for(tmp_path / "home"), routing_file=routing_file)


# --- Prometheus -------------------------------------------------------------------------------------------


@pytest.fixture
def prometheus_yml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[StackSettings, Path]:
    monkeypatch.delenv("AIRFLOW_OBS_SCRAPE_INTERVAL", raising=False)
    settings = settings_for(tmp_path, **CUSTOM_PORTS)
    return settings, write_prometheus_config(settings)


def test_the_rendered_prometheus_config_passes_promtool(prometheus_yml: tuple[StackSettings, Path]) -> None:
    _, path = prometheus_yml

    result = run(PROMTOOL, "check", "config", "--syntax-only", str(path))

    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_every_job_on_its_component_port(prometheus_yml: tuple[StackSettings, Path]) -> None:
    settings, path = prometheus_yml
    config = yaml.safe_load(path.read_text())

    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}

    assert targets == {job: [f"127.0.0.1:{settings.ports[component]}"] for job, component in SCRAPE_JOBS.items()}
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{settings.ports['alertmanager']}"
    ]


def test_prometheus_loads_the_toolkits_rules_rendered_with_this_stacks_airflow_url(
    prometheus_yml: tuple[StackSettings, Path],
) -> None:
    settings, path = prometheus_yml
    config = yaml.safe_load(path.read_text())

    matched = sorted(Path(path).name for pattern in config["rule_files"] for path in glob.glob(pattern))

    assert matched == sorted(path.name for path in (REPO_ROOT / "alert_rules").glob("*.rules.yml"))
    rendered = (Path(config["rule_files"][0]).parent / "airflow.rules.yml").read_text()
    assert f"airflow_url: {settings.url('airflow')}/dags/{{{{ $labels.dag_id }}}}" in rendered
    result = run(PROMTOOL, "check", "rules", *glob.glob(config["rule_files"][0]))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stacks_rules_link_to_the_grafana_its_plugin_settings_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rules' links and the plugin's come from the same [observability] variables.
    monkeypatch.setenv("AIRFLOW__OBSERVABILITY__GRAFANA_URL", "https://grafana.example.com")
    config = yaml.safe_load(write_prometheus_config(settings_for(tmp_path)).read_text())

    rendered = (Path(config["rule_files"][0]).parent / "airflow.rules.yml").read_text()

    assert "dashboard_url: https://grafana.example.com/d/" in rendered


# --- supervisor -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_supervisor_has_one_program_per_stack_program_none_autostarted_and_stopped_as_a_group(
    tmp_path: Path, db: str
) -> None:
    settings = settings_for(tmp_path, AIRFLOW_OBS_DB=db)

    parser = parse_supervisor(render_supervisor_config(settings))

    programs = [section.removeprefix("program:") for section in parser.sections() if section.startswith("program:")]
    assert sorted(programs) == sorted(program.name for program in stack_programs(settings))
    assert ("postgres" in programs) == (db == "postgres")
    for name in programs:
        section = parser[f"program:{name}"]
        assert section["autostart"] == "false", name
        assert section["stopasgroup"] == "true", name
        assert section["killasgroup"] == "true", name


def test_with_postgres_the_airflow_programs_use_the_private_postgres_port(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, AIRFLOW_OBS_DB="postgres", AIRFLOW_OBS_POSTGRES_PORT="25432")

    parser = parse_supervisor(render_supervisor_config(settings))

    assert "-p 25432" in parser["program:postgres"]["command"]
    for name in (*AIRFLOW_PROGRAMS, "exporter"):
        conn = program_env(parser, name)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert conn.startswith("postgresql+psycopg2://airflow:"), name
        assert conn.endswith("@127.0.0.1:25432/airflow"), name


def test_the_supervisor_config_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = write_supervisor_config(settings_for(tmp_path))

    assert mode(path) == 0o600
    assert "AIRFLOW__CORE__FERNET_KEY" in path.read_text()


@pytest.mark.parametrize("folder", ["a%b", 'a"b'])
def test_a_home_path_supervisord_cannot_express_is_refused_naming_airflow_obs_home(tmp_path: Path, folder: str) -> None:
    with pytest.raises(SettingsError, match="AIRFLOW_OBS_HOME=.*expected a path without"):
        settings_for(tmp_path / folder)


@pytest.mark.parametrize("folder", ["stack", "with space", "it's"])
def test_supervisord_itself_loads_the_config_and_sees_the_stack_home(tmp_path: Path, folder: str) -> None:
    settings = settings_for(tmp_path / folder)
    settings.logs_dir.mkdir(parents=True)
    path = write_supervisor_config(settings)
    options = ServerOptions()

    try:
        options.realize(args=["-c", str(path)])
    except SystemExit as exc:  # supervisord prints its parse error and exits
        pytest.fail(f"supervisord refuses the config for home {settings.home}: exit {exc.code}")

    configs = {config.name: config for group in options.process_group_configs for config in group.process_configs}
    assert sorted(configs) == sorted(program.name for program in stack_programs(settings))
    scheduler = configs["airflow-scheduler"]
    assert scheduler.environment["AIRFLOW_HOME"] == str(settings.airflow_home)
    assert scheduler.directory == str(settings.home)
    assert scheduler.stdout_logfile == str(settings.logs_dir / "airflow-scheduler.log")


# --- Airflow environment ----------------------------------------------------------------------------------


def test_the_api_base_url_carries_the_api_port(tmp_path: Path) -> None:
    env = airflow_env(settings_for(tmp_path, AIRFLOW_OBS_AIRFLOW_PORT="28080"))

    assert env["AIRFLOW__API__PORT"] == "28080"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:28080"
    assert env["AIRFLOW__OBSERVABILITY__AIRFLOW_URL"] == env["AIRFLOW__API__BASE_URL"]


def test_airflow_keeps_auth_on_with_an_admin_and_a_read_only_oncall_user(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)

    env = airflow_env(settings)

    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    users = set(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(","))
    assert users == {"admin:admin", "oncall:viewer"}
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(
        settings.secrets_dir / "airflow_passwords.json"
    )


def test_airflow_log_server_ports_come_from_the_settings(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, **CUSTOM_PORTS)

    env = airflow_env(settings)

    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == str(settings.ports["worker_log_server"])
    assert env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == str(settings.ports["trigger_log_server"])
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{settings.airflow_home / 'airflow.db'}"


def test_airflow_secrets_are_stable_across_calls_and_readable_by_the_owner_only(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    keys = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY")

    first = airflow_env(settings)
    second = airflow_env(settings_for(tmp_path))

    for key in keys:
        assert first[key], key
        assert first[key] == second[key], key
    assert len({first[key] for key in keys}) == len(keys)
    Fernet(first["AIRFLOW__CORE__FERNET_KEY"].encode())  # raises if it is not a valid Fernet key
    for name in ("jwt_secret", "api_secret_key", "fernet_key"):
        assert mode(settings.secrets_dir / name) == 0o600, name
    assert airflow_env(settings_for(tmp_path / "other"))["AIRFLOW__API_AUTH__JWT_SECRET"] != first[keys[0]]


def test_the_postgres_password_is_stable_and_stored_owner_only(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, AIRFLOW_OBS_DB="postgres")

    first = airflow_env(settings)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    second = airflow_env(settings)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]

    assert first == second
    assert mode(settings.secrets_dir / "postgres_airflow_password") == 0o600
