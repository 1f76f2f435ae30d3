"""A private `make up` for a benchmark: its own folder and free ports, always stopped afterwards.

A benchmark is often stopped by hand: SIGTERM becomes SystemExit here, so the `finally` that runs
`make down` still runs and no stack is left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from local_stack.free_ports import free_ports
from local_stack.settings import PORTS, StackSettings, load_settings

# What `make up` and `make down` run.
STACK_COMMAND = [sys.executable, "-m", "local_stack"]


def _exit_on_sigterm(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def private_stack(prefix: str, extra_env: dict[str, str]) -> Iterator[tuple[StackSettings, dict[str, str]]]:
    """`make up` in a fresh folder under /tmp (the postgres user must reach it); yields its settings."""
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    home.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_OBS_", "AIRFLOW__", "AIRFLOW_HOME"))}
    env.update({spec.env_var: str(port) for spec, port in zip(PORTS, free_ports(len(PORTS)), strict=True)})
    env.update({"AIRFLOW_OBS_HOME": str(home), **extra_env})
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        result = subprocess.run(
            [*STACK_COMMAND, "up"], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"make up failed: {result.stderr[-2000:]}")
        yield load_settings(env), env
    finally:
        subprocess.run([*STACK_COMMAND, "down"], env=env, capture_output=True, timeout=180, check=False)
        shutil.rmtree(home, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
