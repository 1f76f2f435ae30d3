"""Tests of the exporter's settings: YAML file, environment overrides, and errors that say what to fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import bcrypt
import pytest
from airflow_obs.exporter.config import FILE_KEYS, ConfigError, ExporterConfig, load_config

HASH = bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(rounds=4)).decode()
OTHER_HASH = bcrypt.hashpw(b"other-secret", bcrypt.gensalt(rounds=4)).decode()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_file(tmp_path: Path, text: str) -> Path:
    return write(tmp_path / "exporter.yml", text)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """Readable stand-ins: the config checks the files exist; the server checks what they hold."""
    return write(tmp_path / "tls" / "cert.pem", "cert"), write(tmp_path / "tls" / "key.pem", "key")


def test_without_file_or_environment_every_setting_has_its_default() -> None:
    config = load_config(environ={})

    assert config == ExporterConfig()
    assert (config.host, config.port, config.db_url) == ("127.0.0.1", None, None)
    assert config.scrape_deadline_seconds == 1.5
    assert config.series_budget == 50000
    assert (config.baseline_max_runs, config.baseline_min_runs) == (50, 3)
    assert config.per_task_metrics is False
    assert config.heartbeat_timeout_seconds is None
    assert (config.tls_cert_file, config.tls_key_file) == (None, None)
    assert dict(config.basic_auth_users) == {}


def test_a_file_sets_every_key_with_tls_and_users_in_exporter_toolkit_shape(tmp_path: Path, tls_files) -> None:
    path = config_file(
        tmp_path,
        f"""
host: 0.0.0.0
port: 9112
db_url: postgresql+psycopg2://exporter:pw@db:5432/airflow
scrape_deadline_seconds: 2.5
snapshot_cache_seconds: 0
series_budget: 5000
outcome_window_hours: 24
baseline_window_days: 7
baseline_max_runs: 20
baseline_min_runs: 5
per_task_metrics: yes
heartbeat_timeout_seconds: 300
tls_server_config:
  cert_file: tls/cert.pem
  key_file: {tls_files[1]}
basic_auth_users:
  prometheus: '{HASH}'
""",
    )

    config = load_config(path, environ={})

    assert config == ExporterConfig(
        host="0.0.0.0",
        port=9112,
        db_url="postgresql+psycopg2://exporter:pw@db:5432/airflow",
        scrape_deadline_seconds=2.5,
        snapshot_cache_seconds=0.0,
        series_budget=5000,
        outcome_window_hours=24.0,
        baseline_window_days=7.0,
        baseline_max_runs=20,
        baseline_min_runs=5,
        per_task_metrics=True,
        heartbeat_timeout_seconds=300.0,
        tls_cert_file=str(tls_files[0]),  # relative to the config file's folder
        tls_key_file=str(tls_files[1]),
        basic_auth_users={"prometheus": HASH},
    )
    file_keys = set(FILE_KEYS) - {"tls_server_config"} | {"tls_cert_file", "tls_key_file"}
    assert file_keys == {f.name for f in dataclasses.fields(ExporterConfig)}


def test_the_file_comes_from_the_config_variable_when_no_path_is_given(tmp_path: Path) -> None:
    path = config_file(tmp_path, "port: 9200\n")

    assert load_config(environ={"AIRFLOW_OBS_EXPORTER_CONFIG": str(path)}).port == 9200


def test_environment_variables_override_the_file(tmp_path: Path, tls_files) -> None:
    path = config_file(tmp_path, "port: 9112\nseries_budget: 100\nper_task_metrics: true\nhost: 0.0.0.0\n")
    environ = {
        "AIRFLOW_OBS_EXPORTER_PORT": "9300",
        "AIRFLOW_OBS_EXPORTER_DB_URL": "sqlite:////tmp/airflow.db",
        "AIRFLOW_OBS_EXPORTER_SERIES_BUDGET": "250",
        "AIRFLOW_OBS_EXPORTER_PER_TASK_METRICS": "No",
        "AIRFLOW_OBS_EXPORTER_SCRAPE_DEADLINE_SECONDS": "0.5",
        "AIRFLOW_OBS_EXPORTER_HEARTBEAT_TIMEOUT_SECONDS": "90",
        "AIRFLOW_OBS_EXPORTER_TLS_CERT_FILE": str(tls_files[0]),
        "AIRFLOW_OBS_EXPORTER_TLS_KEY_FILE": str(tls_files[1]),
        "AIRFLOW_OBS_EXPORTER_HOST": "",  # empty counts as unset
    }

    config = load_config(path, environ=environ)

    assert (config.port, config.series_budget, config.per_task_metrics) == (9300, 250, False)
    assert config.db_url == "sqlite:////tmp/airflow.db"
    assert (config.scrape_deadline_seconds, config.heartbeat_timeout_seconds) == (0.5, 90.0)
    assert (config.tls_cert_file, config.tls_key_file) == (str(tls_files[0]), str(tls_files[1]))
    assert config.host == "0.0.0.0"


BAD_FILE_VALUES = [
    ("port", "abc", "an integer 1-65535", "'abc'"),
    ("port", "0", "an integer 1-65535", "0"),
    ("port", "70000", "an integer 1-65535", "70000"),
    ("host", "''", "a non-empty string", "''"),
    ("scrape_deadline_seconds", "0", "a number > 0 and <= 60", "0"),
    ("scrape_deadline_seconds", "61", "a number > 0 and <= 60", "61"),
    ("scrape_deadline_seconds", "true", "a number > 0 and <= 60", "True"),
    ("snapshot_cache_seconds", "-1", "a number >= 0 and <= 300", "-1"),
    ("snapshot_cache_seconds", "301", "a number >= 0 and <= 300", "301"),
    ("series_budget", "0", "an integer > 0", "0"),
    ("series_budget", "1.5", "an integer > 0", "1.5"),
    ("outcome_window_hours", "0", "a number > 0", "0"),
    ("outcome_window_hours", ".inf", "a number > 0", "inf"),
    ("baseline_window_days", "two weeks", "a number > 0", "'two weeks'"),
    ("baseline_max_runs", "1", "an integer >= 2", "1"),
    ("baseline_min_runs", "0", "an integer >= 1", "0"),
    ("per_task_metrics", "maybe", "true or false (also yes/no, 1/0)", "'maybe'"),
    ("heartbeat_timeout_seconds", "0", "a number > 0", "0"),
    ("series_budget", "null", "an integer > 0", "None"),
]


@pytest.mark.parametrize(("key", "value", "expected", "got"), BAD_FILE_VALUES)
def test_a_bad_value_in_the_file_is_reported_with_file_key_value_and_expectation(
    tmp_path: Path, key: str, value: str, expected: str, got: str
) -> None:
    path = config_file(tmp_path, f"{key}: {value}\n")

    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})

    assert str(error.value) == f"exporter config {path}: key '{key}': expected {expected}, got {got}"


BAD_ENV_VALUES = [
    ("AIRFLOW_OBS_EXPORTER_PORT", "abc", "port", "an integer 1-65535"),
    ("AIRFLOW_OBS_EXPORTER_SERIES_BUDGET", "-5", "series_budget", "an integer > 0"),
    ("AIRFLOW_OBS_EXPORTER_PER_TASK_METRICS", "enabled", "per_task_metrics", "true or false (also yes/no, 1/0)"),
    ("AIRFLOW_OBS_EXPORTER_SNAPSHOT_CACHE_SECONDS", "nan", "snapshot_cache_seconds", "a number >= 0 and <= 300"),
]


@pytest.mark.parametrize(("variable", "value", "key", "expected"), BAD_ENV_VALUES)
def test_a_bad_environment_value_is_reported_with_the_variable_name(
    variable: str, value: str, key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ={variable: value})

    assert str(error.value) == f"exporter config ${variable}: key '{key}': expected {expected}, got {value!r}"


def test_a_problem_is_reported_against_the_variable_that_overrides_the_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, "port: 9112\nbaseline_min_runs: 10\n")

    with pytest.raises(ConfigError, match=r"^exporter config \$AIRFLOW_OBS_EXPORTER_PORT: key 'port': .*, got '0'$"):
        load_config(path, environ={"AIRFLOW_OBS_EXPORTER_PORT": "0"})
    # Two keys disagree: the one the file set is named, with the file.
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={"AIRFLOW_OBS_EXPORTER_BASELINE_MAX_RUNS": "5"})
    assert str(error.value) == (
        f"exporter config {path}: key 'baseline_min_runs': expected at most baseline_max_runs (5), got 10"
    )


def test_a_bad_database_url_is_reported_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ={"AIRFLOW_OBS_EXPORTER_DB_URL": "exporter:hunter2 at db-host"})

    message = str(error.value)
    assert "$AIRFLOW_OBS_EXPORTER_DB_URL: key 'db_url': expected a SQLAlchemy database URL" in message
    assert "hunter2" not in message


def test_an_unknown_key_is_reported_with_a_suggestion_and_the_valid_keys(tmp_path: Path) -> None:
    path = config_file(tmp_path, "prot: 9112\n")

    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})

    message = str(error.value)
    assert message.startswith(f"exporter config {path}: unknown key 'prot' (did you mean 'port'?); valid keys:")
    assert "series_budget" in message
    assert "tls_server_config" in message


def test_an_unsupported_tls_server_config_option_is_an_error_not_ignored(tmp_path: Path, tls_files) -> None:
    path = config_file(
        tmp_path,
        f"tls_server_config:\n  cert_file: {tls_files[0]}\n  key_file: {tls_files[1]}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n",
    )

    with pytest.raises(ConfigError, match=r"unknown key tls_server_config\.'client_auth_type'.*cert_file, key_file"):
        load_config(path, environ={})


def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    path = config_file(tmp_path, "host: 127.0.0.1\nport: [9112\nseries_budget: 10\n")

    with pytest.raises(ConfigError, match=rf"^exporter config {path}: invalid YAML at line \d+: "):
        load_config(path, environ={})


@pytest.mark.parametrize(("text", "kind"), [("- port\n- host\n", "list"), ("just text\n", "str")])
def test_a_file_that_is_not_a_mapping_is_an_error(tmp_path: Path, text: str, kind: str) -> None:
    path = config_file(tmp_path, text)

    with pytest.raises(ConfigError, match=f"expected a mapping of keys, got a {kind}$"):
        load_config(path, environ={})


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(config_file(tmp_path, "# nothing set\n"), environ={}) == ExporterConfig()


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"

    with pytest.raises(ConfigError, match=f"exporter config {missing}: cannot read the file"):
        load_config(missing, environ={})
    with pytest.raises(ConfigError, match=f"exporter config {missing}: cannot read the file"):
        load_config(environ={"AIRFLOW_OBS_EXPORTER_CONFIG": str(missing)})


def test_a_tls_certificate_without_its_key_is_an_error(tmp_path: Path, tls_files) -> None:
    path = config_file(tmp_path, f"tls_server_config:\n  cert_file: {tls_files[0]}\n")

    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})

    assert str(error.value) == (
        f"exporter config {path}: key 'tls_cert_file' is set but 'tls_key_file' is not; "
        "TLS needs both a certificate and its key (or neither)"
    )


def test_a_tls_key_from_the_environment_without_a_certificate_is_an_error(tls_files) -> None:
    with pytest.raises(ConfigError, match=r"^exporter config \$AIRFLOW_OBS_EXPORTER_TLS_KEY_FILE: key 'tls_key_file'"):
        load_config(environ={"AIRFLOW_OBS_EXPORTER_TLS_KEY_FILE": str(tls_files[1])})


def test_a_tls_file_that_cannot_be_read_is_an_error_naming_it(tmp_path: Path, tls_files) -> None:
    missing = tmp_path / "tls" / "missing.pem"
    path = config_file(tmp_path, f"tls_server_config:\n  cert_file: {missing}\n  key_file: {tls_files[1]}\n")

    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})

    assert str(error.value) == (
        f"exporter config {path}: key 'tls_cert_file': expected a readable file, "
        f"got '{missing}' (No such file or directory)"
    )


def test_a_user_whose_value_is_not_a_bcrypt_hash_is_named_but_the_value_is_not_shown(tmp_path: Path) -> None:
    path = config_file(tmp_path, f"basic_auth_users:\n  prometheus: '{HASH}'\n  alice: plain-hunter2\n")

    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})

    message = str(error.value)
    assert message.startswith(f"exporter config {path}: key 'basic_auth_users.alice': expected a bcrypt hash")
    assert "hunter2" not in message


def test_a_user_name_with_a_colon_is_an_error(tmp_path: Path) -> None:
    path = config_file(tmp_path, f"basic_auth_users:\n  'team:prom': '{HASH}'\n")

    with pytest.raises(ConfigError, match="user names that are non-empty strings without ':', got 'team:prom'"):
        load_config(path, environ={})


def test_users_come_from_the_users_file_variable_and_replace_the_files_users(tmp_path: Path) -> None:
    path = config_file(tmp_path, f"basic_auth_users:\n  prometheus: '{HASH}'\n")
    users_file = write(tmp_path / "users.yml", f"grafana-agent: '{OTHER_HASH}'\n")

    config = load_config(path, environ={"AIRFLOW_OBS_EXPORTER_BASIC_AUTH_USERS_FILE": str(users_file)})

    assert dict(config.basic_auth_users) == {"grafana-agent": OTHER_HASH}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "key 'basic_auth_users': expected a mapping of at least one user to a bcrypt hash, got none"),
        ("alice: hunter2\n", "key 'basic_auth_users.alice': expected a bcrypt hash"),
        ("[alice]\n", "expected a mapping of keys, got a list"),
    ],
    ids=["empty", "not-a-hash", "not-a-mapping"],
)
def test_a_bad_users_file_is_an_error_naming_the_variable_and_file(tmp_path: Path, text: str, message: str) -> None:
    users_file = write(tmp_path / "users.yml", text)

    with pytest.raises(ConfigError) as error:
        load_config(environ={"AIRFLOW_OBS_EXPORTER_BASIC_AUTH_USERS_FILE": str(users_file)})

    assert str(error.value).startswith(f"exporter config $AIRFLOW_OBS_EXPORTER_BASIC_AUTH_USERS_FILE ({users_file}): ")
    assert message in str(error.value)
    assert "hunter2" not in str(error.value)


def test_fewer_baseline_runs_allowed_than_required_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"key 'baseline_min_runs': expected at most baseline_max_runs \(2\), got 3"):
        load_config(environ={"AIRFLOW_OBS_EXPORTER_BASELINE_MAX_RUNS": "2"})


def test_the_repr_shows_neither_the_database_password_nor_the_hashes() -> None:
    config = ExporterConfig(db_url="postgresql://u:hunter2@db/airflow", basic_auth_users={"prometheus": HASH})

    assert "hunter2" not in repr(config)
    assert HASH not in repr(config)


def test_an_explicit_environment_is_the_only_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_OBS_EXPORTER_PORT", "0")

    assert load_config(environ={}).port is None
    with pytest.raises(ConfigError, match=r"^exporter config \$AIRFLOW_OBS_EXPORTER_PORT: key 'port'"):
        load_config()  # the process environment, when none is given


def test_users_come_only_from_files_not_from_a_variable() -> None:
    config = load_config(environ={"AIRFLOW_OBS_EXPORTER_BASIC_AUTH_USERS": f'{{"prometheus": "{HASH}"}}'})

    assert dict(config.basic_auth_users) == {}
