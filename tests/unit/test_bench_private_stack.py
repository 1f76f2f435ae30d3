"""A benchmark stopped with SIGTERM still runs `make down` on its private stack and removes its folder."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bench import private_stack


def test_sigterm_inside_a_benchmark_still_stops_its_stack_and_removes_its_folder(tmp_path: Path, monkeypatch) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "airflow-obs"
    fake.write_text(f'#!/bin/sh\necho "$1 $AIRFLOW_OBS_HOME" >> {calls}\n')
    fake.chmod(0o755)
    monkeypatch.setattr(private_stack, "STACK_COMMAND", [str(fake)])

    with (
        pytest.raises(SystemExit) as stopped,
        private_stack.private_stack("airflow-obs-test-bench-", {}) as (settings, _),
    ):
        home = settings.home
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert calls.read_text().splitlines() == [f"up {home}", f"down {home}"]
    assert not home.exists()
    assert signal.getsignal(signal.SIGTERM) is not private_stack._exit_on_sigterm  # noqa: SLF001
