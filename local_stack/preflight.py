"""Checks before anything starts, each failing with one message that names the problem and its fix."""

from __future__ import annotations

import errno
import os
import shutil
import socket
from pathlib import Path

from local_stack.settings import LOOPBACK, PORTS, SettingsError, StackSettings

SYSTEM_PACKAGES_FILE = Path(__file__).with_name("system-packages.txt")


def system_packages(path: Path = SYSTEM_PACKAGES_FILE) -> dict[str, str]:
    """Debian package -> a file that proves it is installed (the list bootstrap.sh installs)."""
    packages = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, proof = line.split()
            packages[name] = proof
    return packages


class PreflightError(RuntimeError):
    """The stack cannot start; the message says what to change."""


def missing_packages(packages: dict[str, str] | None = None) -> list[str]:
    packages = system_packages() if packages is None else packages
    return [name for name, proof in packages.items() if not Path(proof).exists()]


def check_system_packages() -> None:
    missing = missing_packages()
    if missing:
        names = " ".join(missing)
        raise PreflightError(
            f"missing system packages: {names}. Install them with "
            f"`sudo apt-get update && sudo apt-get install -y --no-install-recommends {names}` "
            "(make up does this itself when run as root)."
        )


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers themselves do: connections of a stack stopped a moment ago (TIME_WAIT) don't count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def check_ports(settings: StackSettings) -> None:
    """Every port the stack will bind must be free; the message names the variable that moves it."""
    busy = []
    for spec in PORTS:
        if not settings.binds(spec):
            continue
        port = settings.ports[spec.component]
        if not port_is_free(port):
            busy.append(f"port {port} ({spec.purpose}) is already in use: set {spec.env_var} to a free port")
    if busy:
        raise PreflightError(
            "; ".join(busy) + ". If it is this stack from another folder, stop it with `make down` there."
        )


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise PreflightError(
            f"cannot write to {folder} ({exc.strerror}): set AIRFLOW_OBS_HOME to a writable folder"
        ) from exc


def check_postgres_reachable_by_postgres_user(folder: Path) -> None:
    """PostgreSQL refuses to run as root: its data folder must be reachable by the postgres user."""
    if os.geteuid() != 0:
        return
    if shutil.which("runuser") is None:
        raise PreflightError("AIRFLOW_OBS_DB=postgres as root needs `runuser` (package util-linux)")
    for parent in [folder, *folder.parents]:
        if parent.exists() and not (parent.stat().st_mode & 0o001):
            raise PreflightError(
                f"the postgres user cannot enter {parent} (mode {oct(parent.stat().st_mode & 0o777)}), "
                "so the private PostgreSQL cannot use its data folder: set AIRFLOW_OBS_HOME to a folder "
                "under a world-traversable path (e.g. /var/tmp/airflow-obs)"
            )


def run_preflight(settings: StackSettings, check_ports_free: bool = True) -> None:
    check_system_packages()
    check_writable(settings.home)
    if settings.db == "postgres":
        check_postgres_reachable_by_postgres_user(settings.home)
    if check_ports_free:
        check_ports(settings)


__all__ = ["PreflightError", "SettingsError", "run_preflight", "port_is_free", "missing_packages"]
