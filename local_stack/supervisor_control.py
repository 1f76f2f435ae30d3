"""Talks to the stack's supervisord over its private Unix socket (supervisor's own XML-RPC client)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import xmlrpc.client
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from local_stack.programs import VENV_BIN
from local_stack.settings import StackSettings


def rpc(settings: StackSettings) -> Any:
    transport = SupervisorTransport(None, None, serverurl=f"unix://{settings.supervisor_socket}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisord_pid(settings: StackSettings) -> int | None:
    """PID of this stack's supervisord if it is alive, else None (a stale pidfile counts as none)."""
    try:
        pid = int(settings.supervisor_pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):  # no pidfile, a home that is not a folder, or a process that is gone
        return None
    return pid


def is_running(settings: StackSettings) -> bool:
    if supervisord_pid(settings) is None:
        return False
    try:
        return rpc(settings).supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Fault):
        return False


def start_supervisord(settings: StackSettings, timeout: float = 15.0) -> None:
    """Start supervisord (it daemonizes) and wait until it answers on its socket."""
    result = subprocess.run(
        [str(VENV_BIN / "supervisord"), "-c", str(settings.supervisor_conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"supervisord did not start: {(result.stderr or result.stdout).strip()}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_running(settings):
            return
        time.sleep(0.2)
    raise RuntimeError(f"supervisord did not answer on {settings.supervisor_socket} within {timeout:.0f}s")


def process_infos(settings: StackSettings) -> list[dict[str, Any]]:
    return rpc(settings).supervisor.getAllProcessInfo()


def shutdown(settings: StackSettings, timeout: float = 90.0) -> bool:
    """Stop every program, then supervisord itself; return False when nothing was running."""
    pid = supervisord_pid(settings)
    if pid is None:
        return False
    try:
        rpc(settings).supervisor.shutdown()
    except (OSError, xmlrpc.client.Fault):
        os.kill(pid, signal.SIGTERM)  # supervisord stops its programs on SIGTERM too
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    raise RuntimeError(f"supervisord (pid {pid}) did not stop within {timeout:.0f}s; see {settings.logs_dir}")
