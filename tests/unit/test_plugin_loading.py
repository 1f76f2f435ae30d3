"""The installed observability plugin is registered exactly once, with the repository's plugins folder in use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

# Runs in a fresh interpreter: Airflow's plugin manager caches, and its config is read at import.
LIST_PLUGINS = """
import json
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

OUR_LISTENERS = "airflow_obs.observability.listeners"
TASK_HOOKS = (
    "on_task_instance_running",
    "on_task_instance_success",
    "on_task_instance_failed",
    "on_task_instance_skipped",
)
DAG_RUN_HOOKS = ("on_dag_run_running", "on_dag_run_success", "on_dag_run_failed")


def list_plugins(tmp_path: Path, **extra_env: str) -> dict:
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
        [sys.executable, "-c", LIST_PLUGINS], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_installed_the_plugin_comes_from_its_entry_point_once_without_import_errors(tmp_path: Path) -> None:
    report = list_plugins(tmp_path)
    ours = [source for name, source in report["plugins"] if name == "observability"]
    assert len(ours) == 1
    assert "airflow_obs.observability.plugin:ObservabilityPlugin" in ours[0]
    assert report["errors"] == {}


def registrations(report: dict, manager: str, hooks: tuple[str, ...]) -> dict[str, int]:
    return {hook: report["listeners"][manager].get(hook, []).count(OUR_LISTENERS) for hook in hooks}


def test_the_listeners_are_registered_once_in_the_core_and_the_task_runner(tmp_path: Path) -> None:
    report = list_plugins(tmp_path)

    assert registrations(report, "core", TASK_HOOKS + DAG_RUN_HOOKS) == dict.fromkeys(TASK_HOOKS + DAG_RUN_HOOKS, 1)
    # The task runner's manager has no DAG-run hooks: the scheduler fires those.
    assert registrations(report, "task_runner", TASK_HOOKS) == dict.fromkeys(TASK_HOOKS, 1)


def test_a_bad_setting_fails_the_plugin_load_with_the_variable_and_the_reason_and_registers_no_listener(
    tmp_path: Path,
) -> None:
    report = list_plugins(tmp_path, AIRFLOW__OBSERVABILITY__LOG_FORMAT="xml")

    assert "observability" not in [name for name, _ in report["plugins"]]
    # What `airflow plugins`, the UI and GET /api/v2/plugins/importErrors show for the plugin.
    assert list(report["errors"].values()) == [
        "[observability] log_format (AIRFLOW__OBSERVABILITY__LOG_FORMAT)='xml': expected one of json, text"
    ]
    assert all(OUR_LISTENERS not in impls for impls in report["listeners"]["core"].values())
    assert all(OUR_LISTENERS not in impls for impls in report["listeners"]["task_runner"].values())


def run_in_fresh_home(tmp_path: Path, argv: list[str], cfg: str = "", **extra_env: str) -> str:
    """`argv` with a fresh AIRFLOW_HOME whose airflow.cfg holds `cfg`, none of this session's AIRFLOW* variables."""
    home = tmp_path / "airflow"
    home.mkdir(exist_ok=True)
    (home / "airflow.cfg").write_text(cfg)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(home), **extra_env})
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def airflow_config(tmp_path: Path, *args: str) -> str:
    """`airflow config ...`: what an operator runs."""
    return run_in_fresh_home(tmp_path, [str(Path(sys.executable).with_name("airflow")), "config", *args])


def test_airflow_knows_the_observability_section_with_its_defaults_and_descriptions(tmp_path: Path) -> None:
    # Declared through the apache_airflow_provider entry point: nothing in airflow.cfg, yet Airflow has the defaults.
    assert airflow_config(tmp_path, "get-value", "observability", "notify_max_attempts").strip() == "3"
    listing = airflow_config(tmp_path, "list", "--section", "observability", "--include-descriptions")

    assert "[observability]" in listing
    assert "# delivery attempts (5xx, 429) before spooling" in listing


def test_the_plugin_reads_its_section_from_airflow_cfg_and_the_environment_wins(tmp_path: Path) -> None:
    cfg = "[observability]\nairflow_url = https://from-the-cfg.example.com\nenvironment = staging\n"
    read = "from airflow_obs.observability.settings import settings as s; print(s().airflow_url, s().environment)"

    output = run_in_fresh_home(
        tmp_path, [sys.executable, "-c", read], cfg, AIRFLOW__OBSERVABILITY__ENVIRONMENT="production"
    )

    assert output.strip().splitlines()[-1] == "https://from-the-cfg.example.com production"
