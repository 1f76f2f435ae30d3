"""Helpers shared by the local stack's unit tests."""

from __future__ import annotations

import configparser
import contextlib
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

from supervisor.datatypes import dict_of_key_value_pairs

from local_stack.settings import LOOPBACK, PORTS, StackSettings, load_settings

AMTOOL = "/usr/bin/amtool"
PROMTOOL = "/usr/bin/promtool"
AIRFLOW_PROGRAMS = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
# Ports far from the defaults, so a test can tell a configured port from a default one. Nothing binds them.
CUSTOM_PORTS = {spec.env_var: str(21000 + i) for i, spec in enumerate(PORTS)}


def settings_for(home: Path, **env: str) -> StackSettings:
    """Settings from an explicit environment only: nothing is read from the real one."""
    return load_settings(env={"AIRFLOW_OBS_HOME": str(home), **env})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def distinct_free_ports(count: int) -> Iterator[list[int]]:
    """`count` distinct loopback ports, held while choosing so none repeats, released for the test."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind((LOOPBACK, 0))
        ports = [sock.getsockname()[1] for sock in socks]
    yield ports


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


def parse_supervisor(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parser


def program_env(parser: configparser.RawConfigParser, program: str) -> dict[str, str]:
    """The environment of a program as supervisor reads it (after its %-expansion)."""
    return dict_of_key_value_pairs(parser[f"program:{program}"]["environment"].replace("%%", "%"))
