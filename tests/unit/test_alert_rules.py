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
