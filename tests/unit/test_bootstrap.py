"""local_stack/bootstrap.sh, which `make up` and `make test` start with, on a machine missing a package."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root to become nobody")
def test_without_permission_to_install_a_missing_package_bootstrap_stops_with_the_command_to_run() -> None:
    # The real script in a copy of its folder, with a package list naming one package that is not installed.
    # Under /tmp, not pytest's tmp_path: that one is 0700 and `nobody` could not enter it.
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        assert_bootstrap_names_the_missing_package(Path(folder))


def assert_bootstrap_names_the_missing_package(tmp_path: Path) -> None:
    tree = tmp_path / "repo"
    (tree / "local_stack").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "local_stack" / "bootstrap.sh", tree / "local_stack" / "bootstrap.sh")
    (tree / "local_stack" / "system-packages.txt").write_text(
        "# test list\nprometheus  /usr/bin/prometheus\nairflow-obs-missing-pkg  /nonexistent/airflow-obs-missing\n"
    )
    for folder in (tmp_path, tree, tree / "local_stack"):
        folder.chmod(0o755)

    result = subprocess.run(
        [shutil.which("runuser"), "-u", "nobody", "--", "bash", str(tree / "local_stack" / "bootstrap.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )

    assert result.returncode == 1
    assert "missing system packages: airflow-obs-missing-pkg" in result.stderr
    assert "apt-get install -y --no-install-recommends airflow-obs-missing-pkg" in result.stderr
    assert "prometheus" not in result.stderr.split("missing system packages:")[1].splitlines()[0]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root to become nobody")
def test_a_package_list_given_as_an_argument_is_checked_too() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        tree = Path(folder) / "repo"
        (tree / "local_stack").mkdir(parents=True)
        shutil.copy(REPO_ROOT / "local_stack" / "bootstrap.sh", tree / "local_stack" / "bootstrap.sh")
        (tree / "local_stack" / "system-packages.txt").write_text("prometheus  /usr/bin/prometheus\n")
        (tree / "local_stack" / "test-packages.txt").write_text("airflow-obs-test-only  /nonexistent/test-only\n")
        for path in (Path(folder), tree, tree / "local_stack"):
            path.chmod(0o755)

        result = subprocess.run(
            [
                shutil.which("runuser"),
                "-u",
                "nobody",
                "--",
                "bash",
                str(tree / "local_stack" / "bootstrap.sh"),
                "local_stack/test-packages.txt",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": folder},
        )

    assert result.returncode == 1
    assert "missing system packages: airflow-obs-test-only" in result.stderr
