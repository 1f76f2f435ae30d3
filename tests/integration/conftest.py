"""A private local stack per test module: its own folder and free ports, stopped by PID even on failure."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack.settings import PORTS, StackSettings, load_settings
from tests.conftest import REPO_ROOT, free_ports

AIRFLOW_OBS = str(Path(sys.prefix) / "bin" / "airflow-obs")
# The repository's own stack: `make up` runs this.
LOCAL_STACK = [sys.executable, "-m", "local_stack"]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll `condition` until it returns something truthy, or fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def http_json(url: str, data: Any = None, headers: dict[str, str] | None = None, method: str | None = None):
    """(status, parsed JSON or text) of a loopback request; HTTP errors are returned, not raised."""
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(  # noqa: S310 - tests build loopback http URLs only
        url, data=body, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


class LocalStack:
    """Drives `airflow-obs` exactly as `make up` / `make down` do, in a private folder with free ports."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ)
        for key in [k for k in self.env if k.startswith(("AIRFLOW_OBS_", "AIRFLOW__", "AIRFLOW_HOME"))]:
            del self.env[key]
        # Distinct for sure: two free_port() calls can return the same just-closed port.
        self.env.update({spec.env_var: str(port) for spec, port in zip(PORTS, free_ports(len(PORTS)), strict=True)})
        self.env.update(
            {
                "AIRFLOW_OBS_HOME": str(home),
                # Short intervals so a test sees scrapes and alert evaluations within seconds.
                "AIRFLOW_OBS_SCRAPE_INTERVAL": "2s",
                "AIRFLOW_OBS_UP_TIMEOUT": "240",
            }
        )
        self.env.update(extra_env or {})
        self.settings: StackSettings = load_settings(self.env)

    def run(self, *args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*LOCAL_STACK, *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def url(self, component: str) -> str:
        return self.settings.url(component)

    def supervisord_pid(self) -> int | None:
        try:
            return int(self.settings.supervisor_pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def program_pids(self) -> dict[str, int]:
        from local_stack import supervisor_control

        return {info["name"]: info["pid"] for info in supervisor_control.process_infos(self.settings)}

    def kill_everything(self) -> None:
        """Last resort after a failed test: SIGKILL every process of this stack's folder, by PID."""
        for pid in processes_of(self.settings.home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def processes_of(home: Path) -> list[int]:
    """PIDs of live processes that belong to the stack in `home`: their cwd or environment points into it."""
    found = []
    needle = str(home).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            in_home = os.readlink(entry / "cwd").startswith(str(home))
            in_home = in_home or needle in (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if in_home and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def stack_home(prefix: str) -> Path:
    """A folder the postgres user can enter (pytest's tmp_path is 0700 under root's tree)."""
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    home.chmod(0o755)
    return home


@contextlib.contextmanager
def running_stack(extra_env: dict[str, str] | None = None) -> Iterator[LocalStack]:
    """`make up` in a fresh folder; on exit `make down`, then SIGKILL anything left, by PID."""
    home = stack_home("airflow-obs-it-")
    stack = LocalStack(home, extra_env)
    try:
        result = stack.run("up")
        assert result.returncode == 0, f"up failed:\n{result.stdout}\n{result.stderr}"
        yield stack
    finally:
        stack.run("down", timeout=150)
        stack.kill_everything()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def started_stack() -> Iterator[LocalStack]:
    """A running stack on the embedded default (SQLite), shared by the tests of one module."""
    with running_stack() as stack:
        yield stack


@pytest.fixture(scope="session")
def airflow_telemetry(tmp_path_factory):
    """One private Airflow run (StatsD and Airflow's tracing on, the plugin loaded), already stopped: the StatsD
    lines and OTLP spans it sent. Session-scoped because starting Airflow costs 1-2 minutes and several modules
    check the same run (test_statsd_capture.py, test_joined_traces.py). A TelemetryRun (airflow_telemetry.py)."""
    # Imported here, not at the top: airflow_telemetry imports this module's helpers (a cycle otherwise).
    from tests.integration.airflow_telemetry import capture_airflow_telemetry

    return capture_airflow_telemetry(tmp_path_factory.mktemp("airflow-telemetry"))
