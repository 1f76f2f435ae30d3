"""Tests of the committed alerting: promtool checks and unit tests of the rules, runbooks, amtool on the routing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

PROMTOOL = "/usr/bin/promtool"
AMTOOL = "/usr/bin/amtool"
RULES_DIR = REPO_ROOT / "alert_rules"
RUNBOOKS_DIR = REPO_ROOT / "runbooks"
RULE_FILES = sorted(RULES_DIR.glob("*.rules.yml"))
RULE_TEST_FILES = sorted((RULES_DIR / "tests").glob("*.yml"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT)


def alerting_rules() -> list[Any]:
    params = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    params.append(pytest.param(rule, id=f"{path.name}:{rule['alert']}"))
    return params


def test_the_repository_has_alert_rules_and_promtool_tests_for_them() -> None:
    assert RULE_FILES, f"no *.rules.yml in {RULES_DIR}"
    tested = {
        Path(rule_file).name
        for test_file in RULE_TEST_FILES
        for rule_file in yaml.safe_load(test_file.read_text()).get("rule_files", [])
    }
    untested = [path.name for path in RULE_FILES if path.name not in tested]
    assert not untested, f"rule files without a promtool test in {RULES_DIR / 'tests'}: {untested}"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda path: path.name)
def test_the_rule_file_passes_promtool_check_rules(path: Path) -> None:
    result = run(PROMTOOL, "check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("path", RULE_TEST_FILES, ids=lambda path: path.name)
def test_the_promtool_rule_tests_pass(path: Path) -> None:
    result = run(PROMTOOL, "test", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("rule", alerting_rules())
def test_every_alert_has_a_severity_a_summary_a_description_and_an_existing_runbook(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    annotations = rule.get("annotations", {})

    assert rule.get("labels", {}).get("severity"), f"{name} has no severity label"
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"{name} has no {key} annotation"
    assert annotations["runbook_url"].endswith(f"runbooks/{name}.md"), annotations["runbook_url"]
    assert (RUNBOOKS_DIR / f"{name}.md").is_file(), f"runbook {RUNBOOKS_DIR / f'{name}.md'} is missing"


def test_alert_names_are_unique_across_rule_files() -> None:
    names = [param.values[0]["alert"] for param in alerting_rules()]

    assert names
    assert len(names) == len(set(names)), sorted(names)


def test_the_committed_alertmanager_routing_passes_amtool() -> None:
    result = run(AMTOOL, "check-config", str(RULES_DIR / "alertmanager.yml"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# --- the rules as code ------------------------------------------------------------------------------------


def test_the_committed_rule_files_are_exactly_what_the_catalogue_renders() -> None:
    from airflow_obs.alerting.render import committed_rule_files

    rendered = committed_rule_files()

    assert sorted(rendered) == [path.name for path in RULE_FILES]
    for name, text in rendered.items():
        assert (RULES_DIR / name).read_text() == text, (
            f"{name} is stale: run `.venv/bin/python -m airflow_obs.alerting`"
        )


def test_every_runbook_belongs_to_an_alert_or_a_plugin_message_and_every_alert_has_one() -> None:
    from airflow_obs.observability.notify import messages

    alerts = {param.values[0]["alert"] for param in alerting_rules()}
    plugin_messages = {getattr(messages, name) for name in dir(messages) if name.startswith("RUNBOOK_")}
    runbooks = {path.stem for path in RUNBOOKS_DIR.glob("*.md") if path.name != "README.md"}

    assert sorted(alerts - runbooks) == [], "alerts without a runbook"
    assert sorted(runbooks - alerts - plugin_messages) == [], "runbooks without an alert or a plugin message"
    assert sorted(plugin_messages - runbooks) == [], "plugin messages without a runbook"


@pytest.mark.parametrize("rule", alerting_rules())
def test_every_alert_links_its_dashboard_and_an_alert_about_a_dag_links_the_dag_in_airflow(rule: dict) -> None:
    annotations = rule["annotations"]
    about_dag = "dag_id" in rule["expr"]

    # The committed files have no Grafana to link (the plugin's default): dashboards are the console's pages.
    console = "http://127.0.0.1:8080/observability/console"
    if about_dag:
        assert annotations["airflow_url"] == "http://127.0.0.1:8080/dags/{{ $labels.dag_id }}"
        dag_page = "http://127.0.0.1:8080/observability/dags/{{ $labels.dag_id }}/monitoring"
        assert annotations["dashboard_url"] in (dag_page, console)
        # What the DAG's trouble affects downstream, and the failing DAG upstream that may explain it.
        assert "airflow_dag_downstream_info" in annotations["affects"]
        assert "airflow:dag_upstream_failing" in annotations["upstream_failing"]
    else:
        assert "airflow_url" not in annotations
        assert "affects" not in annotations
        assert annotations["dashboard_url"] == console


def test_a_threshold_override_reaches_the_rendered_rule_and_the_words_around_it() -> None:
    from airflow_obs.alerting.render import render_rule_files

    environ = {"AIRFLOW_OBS_ALERT_DAG_FAILING_WINDOW": "2m", "AIRFLOW_OBS_ALERT_DAG_SUCCESS_GRACE": "30s"}
    text = render_rule_files(environ)["airflow.rules.yml"]
    rule = next(
        rule
        for group in yaml.safe_load(text)["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "AirflowDagFailingForAnHour"
    )

    assert rule["for"] == "2m"
    assert "< 30)" in rule["expr"]
    assert "failing for over 2m" in rule["annotations"]["summary"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"AIRFLOW_OBS_ALERT_DAG_FAILING_WINDOW": "an hour"},
            "AIRFLOW_OBS_ALERT_DAG_FAILING_WINDOW='an hour': expected a Prometheus duration",
        ),
        ({"AIRFLOW_OBS_ALERT_BASELINE_FACTOR": "-2"}, "AIRFLOW_OBS_ALERT_BASELINE_FACTOR='-2': expected a number > 0"),
        ({"AIRFLOW_OBS_ALERT_NO_SUCH_THING": "1"}, "AIRFLOW_OBS_ALERT_NO_SUCH_THING: no such alert threshold"),
    ],
)
def test_a_bad_threshold_names_the_variable_the_value_and_what_is_expected(environ, message) -> None:
    from airflow_obs.alerting.thresholds import ThresholdError, resolve

    with pytest.raises(ThresholdError) as raised:
        resolve(environ)

    assert message in str(raised.value)


def test_the_thresholds_are_documented_in_one_table_with_their_variables() -> None:
    from airflow_obs.alerting.thresholds import THRESHOLDS, env_var

    docs = (REPO_ROOT / "docs" / "alerting.md").read_text()

    for name, threshold in THRESHOLDS.items():
        assert f"| `{env_var(name)}` | `{threshold.default}` |" in docs, name
