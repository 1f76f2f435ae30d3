"""The observability plugin is registered exactly once, whether installed (entry point) or copied (plugins/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# Runs in a fresh interpreter: Airflow's plugin manager caches, and its config is read at import.
LIST_PLUGINS = """
import json, sys
if sys.argv[1] == "copied":
    # A deployment that copied plugins/ and never installed the package: no entry point anywhere.
    import importlib.metadata as metadata
    real = metadata.entry_points
    metadata.entry_points = lambda **kw: [ep for ep in real(**kw) if not ep.value.startswith("observability.")]
    # The core's and the Task SDK's plugin managers each read entry points through their own copy.
    import airflow._shared.module_loading as core_loading
    import airflow.sdk._shared.module_loading as sdk_loading
    for loading in (core_loading, sdk_loading):
        def without_ours(group, real=loading.entry_points_with_dist):
            return [(ep, dist) for ep, dist in real(group) if not ep.value.startswith("observability.")]
        loading.entry_points_with_dist = without_ours
from airflow import plugins_manager
from airflow.listeners.listener import get_listener_manager as core_listeners
from airflow.sdk.listener import get_listener_manager as task_runner_listeners
plugins, errors = plugins_manager._get_plugins()
# Which listener modules implement each hook, in the core's manager (scheduler, api-server, dag.test) and in
# the Task SDK's (task runner): a listener registered twice would report every event twice.
listeners = {
    manager: {
        hook: [impl.plugin_name for impl in caller.get_hookimpls()]
        for hook, caller in vars(get().pm.hook).items() if hook.startswith("on_")
    }
    for manager, get in (("core", core_listeners), ("task_runner", task_runner_listeners))
}
print(json.dumps({"plugins": [[p.name, str(p.source)] for p in plugins], "errors": errors, "listeners": listeners}))
"""

OUR_LISTENERS = "observability.listeners"
TASK_HOOKS = (
    "on_task_instance_running",
    "on_task_instance_success",
    "on_task_instance_failed",
    "on_task_instance_skipped",
)
DAG_RUN_HOOKS = ("on_dag_run_running", "on_dag_run_success", "on_dag_run_failed")


def list_plugins(tmp_path: Path, mode: str, **extra_env: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
            **extra_env,
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


def registrations(report: dict, manager: str, hooks: tuple[str, ...]) -> dict[str, int]:
    return {hook: report["listeners"][manager].get(hook, []).count(OUR_LISTENERS) for hook in hooks}


@pytest.mark.parametrize("mode", ["installed", "copied"])
def test_the_listeners_are_registered_once_in_the_core_and_the_task_runner_whichever_way_the_plugin_loads(
    tmp_path: Path, mode: str
) -> None:
    # Installed, both the entry point and plugins/observability_plugin.py are present.
    report = list_plugins(tmp_path, mode)

    assert registrations(report, "core", TASK_HOOKS + DAG_RUN_HOOKS) == dict.fromkeys(TASK_HOOKS + DAG_RUN_HOOKS, 1)
    # The task runner's manager has no DAG-run hooks: the scheduler fires those.
    assert registrations(report, "task_runner", TASK_HOOKS) == dict.fromkeys(TASK_HOOKS, 1)


def test_a_bad_setting_fails_the_plugin_load_with_the_variable_and_the_reason_and_registers_no_listener(
    tmp_path: Path,
) -> None:
    report = list_plugins(tmp_path, "installed", AIRFLOW_OBS_LOG_FORMAT="xml")

    assert "observability" not in [name for name, _ in report["plugins"]]
    # What `airflow plugins`, the UI and GET /api/v2/plugins/importErrors show for the plugin.
    assert list(report["errors"].values()) == ["AIRFLOW_OBS_LOG_FORMAT='xml': expected one of json, text"]
    assert all(OUR_LISTENERS not in impls for impls in report["listeners"]["core"].values())
    assert all(OUR_LISTENERS not in impls for impls in report["listeners"]["task_runner"].values())
