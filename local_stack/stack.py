"""`make up | down | status`: start, stop and inspect the whole local stack under supervisord."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from local_stack import health, postgres, redis_broker, supervisor_control
from local_stack.airflow_env import process_env
from local_stack.alertmanager_config import write_alertmanager_config
from local_stack.preflight import run_preflight
from local_stack.programs import VENV_BIN, postgres_data_dir, stack_programs
from local_stack.prometheus_config import write_prometheus_config
from local_stack.secrets import ensure_airflow_passwords
from local_stack.settings import StackSettings
from local_stack.summary import print_summary
from local_stack.supervisor_config import write_supervisor_config

Progress = Callable[[str], None]


class StackError(RuntimeError):
    """The stack did not come up; everything it had started has been stopped again."""


def _say(message: str) -> None:
    print(message, flush=True)


def up_timeout() -> float:
    return float(os.environ.get("AIRFLOW_OBS_UP_TIMEOUT", "240"))


def _log_tail(settings: StackSettings, program: str, lines: int = 15) -> str:
    path = settings.logs_dir / f"{program}.log"
    if not path.exists():
        return f"(no log at {path})"
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    return f"last lines of {path}:\n    " + "\n    ".join(tail)


def _failure_hint(settings: StackSettings, program: str) -> str:
    if program == "postgres":
        return (
            f"PostgreSQL would not start on its data folder {postgres_data_dir(settings)}. Read its log below; "
            "if the folder is damaged, remove it (the metadata DB is lost) or set AIRFLOW_OBS_HOME to a new folder"
        )
    return "it exited while starting; its log below says why"


def _prepare(settings: StackSettings) -> None:
    for folder in (
        settings.airflow_home,
        settings.captures_dir,
        settings.logs_dir,
        settings.generated_dir,
        settings.data_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    settings.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ensure_airflow_passwords(settings)
    write_prometheus_config(settings)
    write_alertmanager_config(settings)
    if settings.executor == "celery":
        redis_broker.write_redis_config(settings)
    write_supervisor_config(settings)
    _validate_generated(settings)


def _validate_generated(settings: StackSettings) -> None:
    """Refuse to start on a config that Prometheus or Alertmanager would reject, with their own words."""
    for command in (
        ["promtool", "check", "config", "--syntax-only", str(settings.generated_dir / "prometheus.yml")],
        ["amtool", "check-config", str(settings.generated_dir / "alertmanager.yml")],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"`{' '.join(command)}` failed:\n{result.stdout}{result.stderr}")


def _migrate_db(settings: StackSettings, say: Progress) -> None:
    say("  migrating the Airflow metadata DB (airflow db migrate)...")
    log = settings.logs_dir / "airflow-db-migrate.log"
    with log.open("w") as out:
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), "db", "migrate"],
            env=process_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=600,
        )
    if result.returncode != 0:
        raise StackError(
            f"`airflow db migrate` failed (exit {result.returncode}); {_log_tail(settings, 'airflow-db-migrate')}"
        )


def _wait_healthy(settings: StackSettings, programs: list[str], say: Progress, timeout: float) -> None:
    """Poll each program's health until all pass, showing which are still pending, within `timeout`."""
    pending = list(programs)
    started = time.monotonic()
    last_report: tuple[tuple[str, ...], int] = ((), -1)
    results: dict[str, health.Health] = {}
    while pending:
        states = {info["name"]: info for info in supervisor_control.process_infos(settings)}
        for name in list(pending):
            state = states[name]["statename"]
            if state in ("FATAL", "EXITED", "BACKOFF"):
                raise StackError(f"{name} is {state}: {_failure_hint(settings, name)}\n{_log_tail(settings, name)}")
            results[name] = health.check(name, settings)
            if state == "RUNNING" and results[name].ok:
                pending.remove(name)
        if not pending:
            return
        elapsed = time.monotonic() - started
        # Report when the pending set changes, and every 10 s while it does not.
        report = (tuple(pending), int(elapsed) // 10)
        if report != last_report:
            say(f"  {elapsed:4.0f}s  waiting for: {', '.join(pending)}")
            last_report = report
        if elapsed > timeout:
            details = "; ".join(f"{name}: {results[name].detail}" for name in pending)
            raise StackError(
                f"not healthy after {timeout:.0f}s (AIRFLOW_OBS_UP_TIMEOUT): {details}\n"
                + "\n".join(_log_tail(settings, name) for name in pending)
            )
        time.sleep(1.0)


def _start(settings: StackSettings, names: list[str]) -> None:
    server = supervisor_control.rpc(settings)
    for name in names:
        info = server.supervisor.getProcessInfo(name)
        if info["statename"] not in ("RUNNING", "STARTING"):
            server.supervisor.startProcess(name, False)


def up(settings: StackSettings, say: Progress = _say) -> None:
    """Bring every component to healthy; on failure stop whatever was started and raise StackError."""
    began = time.monotonic()
    programs = [p.name for p in stack_programs(settings)]
    already_running = supervisor_control.is_running(settings)
    if already_running:
        running = {info["name"] for info in supervisor_control.process_infos(settings)}
        if running != set(programs):
            # Another AIRFLOW_OBS_DB or AIRFLOW_OBS_EXECUTOR than the running stack's: its programs differ.
            raise StackError(
                f"the stack in {settings.home} is running with other settings (programs differ: "
                f"{', '.join(sorted(running ^ set(programs)))}); stop it with `make down` first, "
                "or set AIRFLOW_OBS_HOME to another folder"
            )
        say(f"the stack in {settings.home} is already running: starting anything stopped, keeping data")
    else:
        run_preflight(settings)
        say(f"starting the local stack in {settings.home}")
        _prepare(settings)
    try:
        if not already_running:
            if settings.db == "postgres" and postgres.ensure_cluster(settings):
                say("  created a private PostgreSQL 15 cluster")
            supervisor_control.start_supervisord(settings)
        # The data stores first: `airflow db migrate` needs PostgreSQL, and every Celery process the broker.
        stores = [name for name in ("postgres", "redis") if name in programs]
        if stores:
            _start(settings, stores)
            _wait_healthy(settings, stores, say, timeout=30)
        if settings.db == "postgres":
            postgres.ensure_airflow_database(settings)
        if not already_running:
            _migrate_db(settings, say)
        rest = [name for name in programs if name not in stores]
        _start(settings, rest)
        _wait_healthy(settings, programs, say, timeout=up_timeout())
    except BaseException:
        if not already_running:
            say("  stopping everything this run started...")
            supervisor_control.shutdown(settings)
        raise
    say(f"healthy in {time.monotonic() - began:.0f}s")
    print_summary(settings, say)


def down(settings: StackSettings, say: Progress = _say) -> None:
    if supervisor_control.shutdown(settings):
        say(f"stopped the local stack in {settings.home} (data kept; `rm -rf {settings.home}` to reset)")
    else:
        say(f"no local stack is running in {settings.home}")


@dataclass(frozen=True)
class ComponentStatus:
    program: str
    state: str
    pid: int
    health: health.Health


def status(settings: StackSettings) -> list[ComponentStatus]:
    if not supervisor_control.is_running(settings):
        return []
    return [
        ComponentStatus(info["name"], info["statename"], info["pid"], health.check(info["name"], settings))
        for info in supervisor_control.process_infos(settings)
    ]


def print_status(settings: StackSettings, out=sys.stdout) -> bool:
    """Print one line per component; return True when all are running and healthy."""
    rows = status(settings)
    if not rows:
        print(f"no local stack is running in {settings.home} (start it with `make up`)", file=out)
        return False
    for row in rows:
        mark = "ok  " if row.state == "RUNNING" and row.health.ok else "FAIL"
        print(f"{mark} {row.program:<22} {row.state:<9} pid {row.pid:<7} {row.health.detail}", file=out)
    return all(row.state == "RUNNING" and row.health.ok for row in rows)
