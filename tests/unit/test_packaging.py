"""What the wheel installs: one import namespace, and no import of a distribution the importing part does not declare.

The wheel is built from this checkout (uv build, a few seconds). Each part of the namespace installs with its own
extra (pyproject.toml): a module of the exporter may only import what the base install and the `exporter` extra
bring, since the exporter's image has nothing else; the plugin's, what `plugin` brings into an Airflow image.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

NAMESPACE = "airflow_obs"
# Which extras a module may rely on, by where it sits in the namespace; the first matching prefix wins.
PART_EXTRAS = {
    "airflow_obs/observability/": {"plugin"},
    "airflow_obs/exporter/": {"exporter"},
    "airflow_obs/dashboards_push.py": {"dashboards"},
    "airflow_obs/": set(),  # the command line, the rules and the package data: the base install
}
# Imports a part makes on purpose without declaring them, and why.
OPTIONAL_IMPORTS = {
    # Beside Airflow and with no db_url set, the exporter reads Airflow's sql_alchemy_conn through Airflow itself
    # (in a child process); without Airflow that path says to set AIRFLOW_OBS_EXPORTER_DB_URL.
    ("airflow_obs/exporter/database.py", "apache-airflow"),
}


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).is_file():
        pytest.fail("uv is missing: `make bootstrap` installs it")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [_uv(), "build", "--wheel", "--out-dir", str(out), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "UV_NO_PROGRESS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (built,) = out.glob("*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def declared_requirements(archive: zipfile.ZipFile) -> dict[str, set[str]]:
    """{extra ('' for the base install): canonical names of the distributions it requires}, from METADATA."""
    (metadata_name,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
    declared: dict[str, set[str]] = {}
    for line in archive.read(metadata_name).decode().splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.removeprefix("Requires-Dist:").strip())
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", str(requirement.marker or ""))
        declared.setdefault(extra.group(1) if extra else "", set()).add(canonicalize_name(requirement.name))
    return declared


def imported_modules(source: str) -> set[str]:
    """Absolute imports anywhere in a module (lazy ones inside functions too), as dotted names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def distributions_of(module: str, installed: dict[str, list[str]]) -> set[str]:
    """The distributions that may provide a module, as the checkout's environment knows them."""
    parts = module.split(".")
    if parts[0] == "airflow":
        # Providers install into Airflow's namespace: airflow.providers.slack is apache-airflow-providers-slack,
        # airflow.providers.common.sql apache-airflow-providers-common-sql.
        if len(parts) > 2 and parts[1] == "providers":
            names = [f"apache-airflow-providers-{'-'.join(parts[2:4])}", f"apache-airflow-providers-{parts[2]}"]
            return {canonicalize_name(next((name for name in names if _installed(name)), names[-1]))}
        return {"apache-airflow"}
    return {canonicalize_name(name) for name in installed.get(parts[0], [])}


def _installed(distribution: str) -> bool:
    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


def part_extras(path: str) -> set[str]:
    return next(extras for prefix, extras in PART_EXTRAS.items() if path.startswith(prefix))


def test_the_wheel_installs_one_import_namespace(wheel: zipfile.ZipFile) -> None:
    top_level = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}

    assert top_level == {NAMESPACE}


def test_the_wheel_carries_the_rules_dashboards_runbooks_and_statsd_mapping(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    runbooks = {Path(name).stem for name in names if name.startswith("airflow_obs/data/runbooks/")}

    assert {f"airflow_obs/data/alert_rules/{name}.rules.yml" for name in ("airflow", "infrastructure", "meta")} <= names
    assert "airflow_obs/data/alert_rules/alertmanager.yml" in names
    assert {f"airflow_obs/data/dashboards/{path.name}" for path in (REPO_ROOT / "dashboards").glob("*.json")} <= names
    assert runbooks == {path.stem for path in (REPO_ROOT / "runbooks").glob("*.md")}
    assert "airflow_obs/data/exporters/statsd_mapping.yml" in names
    # The checkout's own tools stay out of the package.
    assert not any(part in name for name in names for part in ("local_stack", "dag_suite", "grafana_dashboards"))


def test_every_module_imports_only_what_its_part_declares(wheel: zipfile.ZipFile) -> None:
    declared = declared_requirements(wheel)
    installed = packages_distributions()
    undeclared = []
    for path in sorted(name for name in wheel.namelist() if name.endswith(".py")):
        allowed = declared[""].union(*(declared[extra] for extra in part_extras(path)))
        for module in sorted(imported_modules(wheel.read(path).decode())):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in (NAMESPACE, "__future__"):
                continue
            providers = distributions_of(module, installed)
            if not providers:
                undeclared.append(f"{path}: {module} (no installed distribution provides it)")
            elif not providers & allowed and not {(path, name) for name in providers} & OPTIONAL_IMPORTS:
                undeclared.append(f"{path}: {module} from {', '.join(sorted(providers))}")

    assert undeclared == [], "imports the part's extras do not declare:\n" + "\n".join(undeclared)


def test_the_import_check_catches_an_undeclared_import() -> None:
    # The check above is only as good as its parser and its mapping: one module's worth of each, by hand.
    installed = packages_distributions()
    modules = imported_modules("import yaml\ndef f():\n    from grafana_client import GrafanaApi\n")

    assert modules == {"yaml", "grafana_client"}
    assert distributions_of("grafana_client", installed) == {"grafana-client"}
    assert distributions_of("airflow.providers.slack.hooks.slack_webhook", installed) == {
        "apache-airflow-providers-slack"
    }
    assert part_extras("airflow_obs/exporter/auth.py") == {"exporter"}
    assert part_extras("airflow_obs/alerting/render.py") == set()


def declared_by_pyproject() -> set[str]:
    """Everything a checkout installs (`uv sync --all-extras`): the base install, every extra, every group."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    lists = [project["project"]["dependencies"], *project["project"]["optional-dependencies"].values()]
    lists += project["dependency-groups"].values()
    return {canonicalize_name(Requirement(line).name) for requirements in lists for line in requirements}


# The repository's own code, which the wheel leaves out: installed by `make up` / `make test` from the groups.
CHECKOUT_CODE = ("local_stack", "dags", "dashboards/grafana_dashboards", "bench", "tests")
# Imported by the checkout's code, and installed by the packages named: never imported for themselves.
CHECKOUT_LOCAL_MODULES = {"local_stack", "dag_suite", "bench", "tests", "airflow_obs"}


def test_the_checkouts_own_code_imports_only_what_pyproject_declares() -> None:
    declared = declared_by_pyproject()
    installed = packages_distributions()
    undeclared = []
    for folder in CHECKOUT_CODE:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for module in sorted(imported_modules(path.read_text())):
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in CHECKOUT_LOCAL_MODULES or top == "__future__":
                    continue
                providers = distributions_of(module, installed)
                if not providers & declared:
                    undeclared.append(f"{path.relative_to(REPO_ROOT)}: {module} from {sorted(providers) or '?'}")

    assert undeclared == [], "imports pyproject.toml does not declare:\n" + "\n".join(undeclared)
