"""supervisord's config for the local stack: supervisor is the process manager, we only describe programs."""

from __future__ import annotations

import configparser
import io
import os
import shlex
from pathlib import Path

from local_stack.airflow_env import airflow_env
from local_stack.programs import VENV_BIN, Program, stack_programs
from local_stack.secrets import write_private
from local_stack.settings import StackSettings


def _env_value(env: dict[str, str]) -> str:
    # supervisor splits on commas outside double quotes, and has no escape for a quote inside them.
    for key, value in env.items():
        if '"' in value:
            raise ValueError(f"{key} contains a double quote, which supervisord cannot pass on: {key}=...")
    # It also expands %(name)s once in this line: percent-encoded URLs need their % doubled.
    return ",".join(f'{key}="{value.replace("%", "%%")}"' for key, value in sorted(env.items()))


def _program_section(settings: StackSettings, program: Program, airflow: dict[str, str]) -> dict[str, str]:
    env = {"PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    if program.airflow_env:
        env.update(airflow)
    env.update(program.extra_env)  # a program's own values win, e.g. each Celery worker's log-server port
    section = {
        "command": " ".join(_shell_quote(part) for part in program.command),
        "directory": str(settings.home),
        # Started explicitly, in order, by `make up` once the metadata DB is migrated.
        "autostart": "false",
        "autorestart": "unexpected" if program.restart_on_crash else "false",
        "startsecs": "3",
        "startretries": "2",
        "stopsignal": program.stopsignal,
        # Airflow components fork workers; stop and kill the whole process group so none is orphaned.
        "stopasgroup": "true",
        "killasgroup": "true",
        "stopwaitsecs": "20",
        "redirect_stderr": "true",
        "stdout_logfile": str(settings.logs_dir / f"{program.name}.log"),
        "stdout_logfile_maxbytes": "10MB",
        "stdout_logfile_backups": "2",
        "environment": _env_value(env),
    }
    if program.user:
        section["user"] = program.user
    return section


def _shell_quote(part: str) -> str:
    # supervisor splits the command with shlex.
    return shlex.quote(part) if part else part


def render_supervisor_config(settings: StackSettings) -> str:
    parser = configparser.RawConfigParser()
    parser["unix_http_server"] = {"file": str(settings.supervisor_socket), "chmod": "0700"}
    parser["supervisord"] = {
        "pidfile": str(settings.supervisor_pidfile),
        "logfile": str(settings.logs_dir / "supervisord.log"),
        "logfile_maxbytes": "5MB",
        "logfile_backups": "1",
        "directory": str(settings.home),
        "identifier": f"airflow-obs:{settings.home}",
    }
    parser["rpcinterface:supervisor"] = {
        "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"
    }
    parser["supervisorctl"] = {"serverurl": f"unix://{settings.supervisor_socket}"}
    airflow = airflow_env(settings)
    for program in stack_programs(settings):
        parser[f"program:{program.name}"] = _program_section(settings, program, airflow)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def write_supervisor_config(settings: StackSettings) -> Path:
    path = settings.supervisor_conf
    path.parent.mkdir(parents=True, exist_ok=True)
    # The environment lines carry Airflow's keys and the DB password: owner-only.
    write_private(path, render_supervisor_config(settings))
    return path
