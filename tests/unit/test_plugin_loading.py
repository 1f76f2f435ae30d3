"""The observability plugin is registered exactly once, whether installed (entry point) or copied (plugins/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

# Runs in a fresh interpreter: Airflow's plugin manager caches, and its config is read at import.
LIST_PLUGINS = """
import json, sys
if sys.argv[1] == "copied":
    # A deployment that copied plugins/ and never installed the package: no entry point anywhere.
    import importlib.metadata as metadata
    real = metadata.entry_points
    metadata.entry_points = lambda **kw: [ep for ep in real(**kw) if not ep.value.startswith("observability.")]
    import airflow._shared.module_loading as loading
    real_with_dist = loading.entry_points_with_dist
    loading.entry_points_with_dist = lambda group: [
        (ep, dist) for ep, dist in real_with_dist(group) if not ep.value.startswith("observability.")]
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
print(json.dumps({"plugins": [[p.name, str(p.source)] for p in plugins], "errors": errors}))
"""


def list_plugins(tmp_path: Path, mode: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", LIST_PLUGINS, mode], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_installed_the_plugin_comes_from_its_entry_point_once_without_import_errors(tmp_path: Path) -> None:
    report = list_plugins(tmp_path, "installed")
    ours = [source for name, source in report["plugins"] if name == "observability"]
    assert len(ours) == 1
    assert "observability.plugin:ObservabilityPlugin" in ours[0]
    assert report["errors"] == {}


def test_copied_into_a_plugins_folder_the_plugin_is_found_there_once(tmp_path: Path) -> None:
    report = list_plugins(tmp_path, "copied")
    ours = [source for name, source in report["plugins"] if name == "observability"]
    assert len(ours) == 1
    assert "observability_plugin.py" in ours[0]
    assert report["errors"] == {}
