"""`AIRFLOW_OBS_EXECUTOR=celery`: its settings, and the programs and configs the local stack generates for it."""

from __future__ import annotations

import os
import shlex
import socket
from pathlib import Path

import pytest

from local_stack.airflow_env import airflow_env
from local_stack.programs import FLOWER_PURGE_OFFLINE_WORKERS_SECONDS, celery_workers, stack_programs
from local_stack.prometheus_config import render_prometheus_config
from local_stack.redis_broker import write_redis_config
from local_stack.secrets import redis_password
from local_stack.settings import LOOPBACK, SettingsError
from local_stack.supervisor_config import render_supervisor_config
from local_stack.worker_identity import hostname
from tests.unit.stack_helpers import (
    CUSTOM_PORTS,
    mode,
    parse_supervisor,
    program_env,
    settings_for,
)

CELERY = {"AIRFLOW_OBS_EXECUTOR": "celery"}
WORKERS = ("airflow-celery-worker-1", "airflow-celery-worker-2")


def test_celery_runs_on_the_private_postgres_and_refuses_sqlite_naming_both_variables(tmp_path: Path) -> None:
    assert settings_for(tmp_path, **CELERY).db == "postgres"
    with pytest.raises(SettingsError, match=r"AIRFLOW_OBS_EXECUTOR=celery with AIRFLOW_OBS_DB='sqlite'.*postgres"):
        settings_for(tmp_path, AIRFLOW_OBS_DB="sqlite", **CELERY)
    with pytest.raises(SettingsError, match=r"AIRFLOW_OBS_EXECUTOR='kubernetes'.*local, celery"):
        settings_for(tmp_path, AIRFLOW_OBS_EXECUTOR="kubernetes")
    assert settings_for(tmp_path).executor == "local"


def test_the_local_executor_stack_has_no_celery_program(tmp_path: Path) -> None:
    names = {program.name for program in stack_programs(settings_for(tmp_path))}
    assert not names & {*WORKERS, "redis", "airflow-celery-flower", "redis-exporter", "postgres-exporter"}
    assert airflow_env(settings_for(tmp_path))["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_two_workers_each_with_its_own_host_name_log_port_and_half_the_parallelism(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, **CELERY, **CUSTOM_PORTS, AIRFLOW_OBS_PARALLELISM="6")
    parser = parse_supervisor(render_supervisor_config(settings))

    seen = {}
    log_port_vars = ("AIRFLOW_OBS_WORKER_LOG_PORT", "AIRFLOW_OBS_WORKER_2_LOG_PORT")
    for worker, log_port_var in zip(WORKERS, log_port_vars, strict=True):
        env = program_env(parser, worker)
        command = shlex.split(parser[f"program:{worker}"]["command"])
        assert command[1:3] == ["celery", "worker"]
        assert command[command.index("--concurrency") + 1] == "3"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        # The worker's own value wins over the stack-wide one every Airflow program gets.
        assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == CUSTOM_PORTS[log_port_var]
        assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "local_stack.worker_identity.hostname"
        seen[worker] = (env["AIRFLOW_OBS_WORKER_HOSTNAME"], command[command.index("--celery-hostname") + 1])
        # A worker stands in for a machine: killed, it stays down (and AirflowCeleryWorkerLost fires).
        assert parser[f"program:{worker}"]["autorestart"] == "false"
    assert seen == {w.program: (w.hostname, w.celery_name) for w in celery_workers(settings)}
    assert len({host for host, _ in seen.values()}) == 2
    assert parser["program:airflow-scheduler"]["autorestart"] == "unexpected"


def test_the_broker_is_the_private_redis_with_a_password_that_no_command_line_shows(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, **CELERY, **CUSTOM_PORTS)
    parser = parse_supervisor(render_supervisor_config(settings))
    password = redis_password(settings)

    broker = program_env(parser, "airflow-scheduler")["AIRFLOW__CELERY__BROKER_URL"]
    assert broker == f"redis://:{password}@{LOOPBACK}:{CUSTOM_PORTS['AIRFLOW_OBS_REDIS_PORT']}/0"
    backend = program_env(parser, "airflow-scheduler")["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert backend.startswith("db+postgresql://airflow:") and backend.endswith("/airflow")
    assert program_env(parser, "redis-exporter")["REDIS_PASSWORD"] == password
    for section in parser.sections():
        if section.startswith("program:"):
            assert password not in parser[section]["command"], section

    write_redis_config(settings)
    config_file = settings.generated_dir / "redis.conf"
    lines = config_file.read_text().splitlines()
    assert f"bind {LOOPBACK}" in lines
    assert f"port {CUSTOM_PORTS['AIRFLOW_OBS_REDIS_PORT']}" in lines
    assert f"requirepass {password}" in lines
    assert mode(config_file) == 0o600


def test_flower_has_a_ui_login_and_forgets_silent_workers_as_compose_does(tmp_path: Path, services) -> None:
    settings = settings_for(tmp_path, **CELERY)
    env = program_env(parse_supervisor(render_supervisor_config(settings)), "airflow-celery-flower")
    user, _, password = env["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"].partition(":")
    assert user == "admin" and len(password) >= 12
    assert env["FLOWER_PURGE_OFFLINE_WORKERS"] == str(FLOWER_PURGE_OFFLINE_WORKERS_SECONDS)
    assert services["flower"]["environment"]["FLOWER_PURGE_OFFLINE_WORKERS"] == env["FLOWER_PURGE_OFFLINE_WORKERS"]


def test_prometheus_scrapes_flower_redis_and_postgres_only_on_the_stacks_that_run_them(tmp_path: Path) -> None:
    def jobs(**env: str) -> dict[str, str]:
        config = render_prometheus_config(settings_for(tmp_path, **CUSTOM_PORTS, **env))
        return {job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]}

    celery = jobs(**CELERY)
    assert celery["celery-flower"] == f"{LOOPBACK}:{CUSTOM_PORTS['AIRFLOW_OBS_FLOWER_PORT']}"
    assert celery["redis"] == f"{LOOPBACK}:{CUSTOM_PORTS['AIRFLOW_OBS_REDIS_EXPORTER_PORT']}"
    assert celery["postgres"] == f"{LOOPBACK}:{CUSTOM_PORTS['AIRFLOW_OBS_POSTGRES_EXPORTER_PORT']}"
    assert "postgres" in jobs(AIRFLOW_OBS_DB="postgres") and "redis" not in jobs(AIRFLOW_OBS_DB="postgres")
    assert not {"celery-flower", "redis", "postgres"} & set(jobs())


def test_a_worker_records_its_own_host_name_and_anything_else_the_machines(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_OBS_WORKER_HOSTNAME", "celery-worker-2")
    assert hostname() == "celery-worker-2"
    monkeypatch.delenv("AIRFLOW_OBS_WORKER_HOSTNAME")
    assert hostname() == socket.getfqdn()
    assert "AIRFLOW_OBS_WORKER_HOSTNAME" not in os.environ
