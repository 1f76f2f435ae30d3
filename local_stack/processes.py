"""Stopping a child process by PID: a polite signal, then SIGKILL if it has not exited in time."""

from __future__ import annotations

import signal
import subprocess

DEFAULT_STOP_TIMEOUT_SECONDS = 15.0


def stop_process(
    process: subprocess.Popen,
    stop_signal: int = signal.SIGTERM,
    timeout: float = DEFAULT_STOP_TIMEOUT_SECONDS,
) -> None:
    """Send `stop_signal`, wait up to `timeout`, then SIGKILL; a process that already exited is left alone."""
    if process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
