"""The README is the user's manual: every port and every AIRFLOW_OBS_* variable the code reads is in it."""

from __future__ import annotations

import re

from local_stack.settings import PORTS
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
CODE_DIRS = ("local_stack", "exporters", "airflow_obs", "plugins")


def test_every_port_appears_in_the_readme_with_its_variable_and_default() -> None:
    for spec in PORTS:
        assert re.search(rf"\|\s*`{spec.env_var}`\s*\|\s*{spec.default}\s*\|", README), spec.env_var


def test_every_airflow_obs_variable_read_by_the_code_is_documented() -> None:
    used: set[str] = set()
    for folder in CODE_DIRS:
        for path in (REPO_ROOT / folder).rglob("*.py"):
            used.update(re.findall(r"\"(AIRFLOW_OBS_[A-Z_]+)\"", path.read_text()))
    assert used, "found no AIRFLOW_OBS_* variable in the code: the pattern is stale"
    # A prefix (AIRFLOW_OBS_EXPORTER_) is documented by a row for its family (`AIRFLOW_OBS_EXPORTER_<KEY>`).
    undocumented = sorted(name for name in used if (f"`{name}" if name.endswith("_") else f"`{name}`") not in README)
    assert undocumented == []


def test_the_readme_opens_with_the_two_commands_ci_runs() -> None:
    head = README[:1500]
    assert "make up" in head and "make test" in head
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
