"""`make up` on bad input: one clear message naming the problem and its fix, and nothing left running."""

from __future__ import annotations

import dataclasses
import shutil
import socket

import pytest

from local_stack.programs import postgres_data_dir
from tests.integration.conftest import LocalStack, processes_of, stack_home

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(request) -> LocalStack:
    home = stack_home("airflow-obs-bad-")
    stack = LocalStack(home)
    yield stack
    stack.run("down", timeout=150)
    stack.kill_everything()
    shutil.rmtree(home, ignore_errors=True)


def assert_nothing_running(stack: LocalStack) -> None:
    assert processes_of(stack.settings.home) == []


def test_a_port_already_taken_stops_up_naming_the_variable_that_moves_it(stack: LocalStack) -> None:
    port = stack.settings.ports["prometheus"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = stack.run("up")
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "AIRFLOW_OBS_PROMETHEUS_PORT" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert_nothing_running(stack)


def test_an_unwritable_stack_folder_stops_up_naming_airflow_obs_home(stack: LocalStack, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    stack.env["AIRFLOW_OBS_HOME"] = str(blocker / "stack")
    result = stack.run("up")
    assert result.returncode == 1
    assert str(blocker / "stack") in result.stderr and "AIRFLOW_OBS_HOME" in result.stderr


def test_a_bad_setting_stops_up_naming_the_variable_and_the_value(stack: LocalStack) -> None:
    stack.env["AIRFLOW_OBS_DB"] = "mysql"
    result = stack.run("up")
    assert result.returncode == 1
    assert "AIRFLOW_OBS_DB='mysql'" in result.stderr and "sqlite, postgres" in result.stderr


def test_a_postgres_that_will_not_start_stops_up_and_everything_it_started(stack: LocalStack) -> None:
    stack.env["AIRFLOW_OBS_DB"] = "postgres"
    stack.settings = dataclasses.replace(stack.settings, db="postgres")
    data = postgres_data_dir(stack.settings)
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")  # looks initialised, but is not a cluster
    shutil.chown(data, "postgres", "postgres")
    data.chmod(0o700)

    result = stack.run("up")

    assert result.returncode == 1
    assert "postgres" in result.stderr and str(data) in result.stderr
    assert "stopping everything this run started" in result.stdout
    assert_nothing_running(stack)
