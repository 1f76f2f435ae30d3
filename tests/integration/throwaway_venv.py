"""A throwaway virtualenv holding one Airflow release and the toolkit's wheel, as an existing deployment would.

Made with uv (its cache turns a repeated install into seconds) and driven only through its own `airflow`,
`python` and `airflow-obs`, with a private AIRFLOW_HOME and a clean environment: none of the test session's
Airflow settings (tests/conftest.py points AIRFLOW_HOME and the DAG and plugin folders at the checkout) and
none of the checkout's packages can leak in, so what loads is what the wheel installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

UV_TIMEOUT_SECONDS = 300  # a cold cache downloads Airflow and ~150 packages; a warm one takes seconds
COMMAND_TIMEOUT_SECONDS = 180  # every `airflow` call costs 4-5 s of start-up; a migration ~10 s
OUTPUT_TAIL = 3000  # how much of a failed command's output an assertion message shows


def uv_executable() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is needed to build the wheel and the throwaway virtualenvs (make test installs it)")
    return found


def run_checked(
    argv: list[str], *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion within `timeout`; fail the test with its output if it exits non-zero."""
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} exited with {result.returncode}\n"
            f"--- stdout (tail)\n{result.stdout[-OUTPUT_TAIL:]}\n--- stderr (tail)\n{result.stderr[-OUTPUT_TAIL:]}"
        )
    return result


def build_wheel(repo_root: Path, out_dir: Path) -> Path:
    """`uv build --wheel` of the checkout; the path of the one wheel it wrote."""
    run_checked([uv_executable(), "build", "--wheel", "-o", str(out_dir)], cwd=repo_root, timeout=UV_TIMEOUT_SECONDS)
    (wheel,) = out_dir.glob("airflow_observability-*.whl")
    return wheel


@dataclass(frozen=True)
class ThrowawayAirflow:
    """A virtualenv with Airflow installed, and the private AIRFLOW_HOME its commands run with."""

    root: Path

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def home(self) -> Path:
        return self.root / "airflow-home"

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{self.home / 'airflow.db'}"

    def bin(self, program: str) -> str:
        return str(self.venv / "bin" / program)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment: this home, the SQLite metadata DB, no example DAGs, then `extra` on top."""
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sqlite_url,
            **(extra or {}),
        }

    def install(self, *requirements: str) -> None:
        """`uv pip install` into this virtualenv only (never the checkout's .venv)."""
        argv = [uv_executable(), "pip", "install", "--python", self.bin("python"), *requirements]
        run_checked(argv, cwd=self.root, timeout=UV_TIMEOUT_SECONDS)

    def airflow(self, *args: str, extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run this Airflow's CLI to completion."""
        return run_checked(
            [self.bin("airflow"), *args], cwd=self.root, env=self.env(extra_env), timeout=COMMAND_TIMEOUT_SECONDS
        )

    def python(
        self, script: str, *args: str, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a Python script with this virtualenv's interpreter, outside the checkout (no stray imports from it)."""
        return run_checked(
            [self.bin("python"), "-c", script, *args],
            cwd=self.root,
            env=self.env(extra_env),
            timeout=COMMAND_TIMEOUT_SECONDS,
        )


def create_throwaway_airflow(root: Path, requirements: list[str], python: str = "3.11") -> ThrowawayAirflow:
    """A fresh virtualenv under `root` (`uv venv -p 3.11`) with exactly `requirements` installed."""
    airflow = ThrowawayAirflow(root)
    airflow.dags_folder.mkdir(parents=True)
    run_checked([uv_executable(), "venv", "-q", "-p", python, str(airflow.venv)], cwd=root, timeout=UV_TIMEOUT_SECONDS)
    airflow.install(*requirements)
    return airflow
