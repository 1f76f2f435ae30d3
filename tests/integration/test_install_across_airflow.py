"""The wheel installs into an existing Airflow deployment of each supported minor version, and works there.

For the newest patch of Airflow 3.1, 3.2 and 3.3: a clean virtualenv with only that Airflow, the wheel with its
`[plugin,exporter]` extras and airflow-exporter 2.1.0 (the most used Airflow exporter: both must coexist). Then,
with a private AIRFLOW_HOME and a SQLite metadata DB:
- Airflow lists the toolkit's plugin exactly once, next to airflow-exporter's, and knows the `[observability]`
  section the wheel declares;
- a task that fails for good under `dag.test()` raises the toolkit's alert in a real Alertmanager, with the
  link to that try's log;
- the exporter serves promtool-clean metrics from that version's migrated SQLite DB, the failed run included;
- the same exporter installed alone (its `exporter` extra, no Airflow) on that database;
- and the exporter against the same Airflow migrated on a throwaway PostgreSQL 15.

Where a bare install of an Airflow release resolves dependencies that release cannot run with (or never ran with
in a real deployment), the release's `deployment_pins` add what its deployments have; each says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from local_stack.processes import stop_process
from local_stack.throwaway_postgres import create_database, throwaway_cluster
from tests.conftest import REPO_ROOT, free_port
from tests.integration.conftest import wait_for
from tests.integration.throwaway_venv import ThrowawayAirflow, build_wheel, create_throwaway_airflow, run_checked
from tests.running_alertmanager import RunningAlertmanager, running_alertmanager

pytestmark = pytest.mark.integration

PROMTOOL = "/usr/bin/promtool"
PLUGIN_NAME = "observability"  # ObservabilityPlugin.name (plugins/observability/plugin.py)
AIRFLOW_EXPORTER = "airflow-exporter==2.1.0"
AIRFLOW_EXPORTER_PLUGIN = "airflow_prometheus_plugin"  # its AirflowPrometheusPlugins.name

DAG_ID = "obs_install_probe"
TASK_ID = "always_fails"
FAILURE_MESSAGE = "install probe: this task fails for good on purpose"
PROBE_DAG = f'''
from datetime import datetime

from airflow.sdk import DAG, task

with DAG("{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:

    @task(retries=0)
    def {TASK_ID}():
        raise RuntimeError("{FAILURE_MESSAGE}")

    {TASK_ID}()
'''
# One run of the probe DAG, in-process, the way `airflow dags test` runs it (dag.test() parses the DAG folder
# into the metadata DB first); the run's id and state on the last line.
RUN_PROBE = """
import importlib.util, json, sys

spec = importlib.util.spec_from_file_location("install_probe", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
run = module.dag.test()
print(json.dumps({"run_id": run.run_id, "state": str(run.state)}))
"""
# The modules each package's users import; where they were imported from, to prove it is the virtualenv.
IMPORT_BOTH = """
import json
import airflow_exporter.prometheus_exporter, airflow_obs, airflow_obs.exporter.server, airflow_obs.observability.plugin
print(json.dumps({"airflow_obs": airflow_obs.__file__, "airflow_exporter": airflow_exporter.__file__}))
"""


@dataclass(frozen=True)
class AirflowRelease:
    version: str
    # Dependencies Airflow's own metadata leaves open, pinned as a real deployment of this release has them
    # (Airflow's constraints files pin them): a bare `pip install apache-airflow==X` resolves newer ones.
    deployment_pins: tuple[str, ...] = ()


RELEASES = [
    pytest.param(
        # Airflow 3.1 deployments run SQLAlchemy 1.4 (3.1 accepts >=1.4.54; 3.2 moved to 2.0), and the toolkit's
        # extras claim sqlalchemy>=1.4.49: the oldest Airflow is the one place that claim can be checked.
        AirflowRelease("3.1.8", deployment_pins=("sqlalchemy<2",)),
        id="3.1",
    ),
    # Airflow 3.2.2 leaves two dependencies open that break its Execution API, so no task can run (not even under
    # dag.test()): fastapi 0.137+ (with cadwyn 9) fails to build its routes ("PydanticUserError: Model
    # 'TITerminalStatePayload' needs a discriminator field"), and with svcs 26 its requests find no services
    # registry ("AttributeError: 'State' object has no attribute 'svcs_registry'", execution_api/deps.py). 3.3
    # caps fastapi itself and gives each in-process app its own registry.
    pytest.param(AirflowRelease("3.2.2", deployment_pins=("fastapi<0.137", "svcs<26")), id="3.2"),
    pytest.param(AirflowRelease("3.3.2"), id="3.3"),
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once for every Airflow release."""
    return build_wheel(REPO_ROOT, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module", params=RELEASES)
def release(request: pytest.FixtureRequest) -> AirflowRelease:
    return request.param


@pytest.fixture(scope="module")
def deployment(release: AirflowRelease, wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> ThrowawayAirflow:
    """That Airflow and the wheel in a clean virtualenv; the probe DAG in its DAG folder; its SQLite DB migrated."""
    airflow = create_throwaway_airflow(
        tmp_path_factory.mktemp(f"airflow-{release.version}"),
        [f"apache-airflow=={release.version}", f"{wheel}[plugin,exporter]", AIRFLOW_EXPORTER, *release.deployment_pins],
    )
    (airflow.dags_folder / f"{DAG_ID}.py").write_text(PROBE_DAG)
    airflow.airflow("db", "migrate")
    return airflow


@dataclass(frozen=True)
class FailedRun:
    run_id: str
    airflow_url: str  # the plugin's [observability] airflow_url during the run
    task_alerts: list[dict]  # the toolkit's AirflowTaskFailed alerts for the probe, as Alertmanager holds them


@pytest.fixture(scope="module")
def failed_run(deployment: ThrowawayAirflow, tmp_path_factory: pytest.TempPathFactory) -> FailedRun:
    """One failed run of the probe DAG with the plugin routing its alerts through a real Alertmanager."""
    # Any loopback base will do: it only has to come back in the links; nothing needs to answer there.
    airflow_url = f"http://127.0.0.1:{free_port()}"
    with running_alertmanager(tmp_path_factory.mktemp("alertmanager")) as alertmanager:
        settings = {
            "AIRFLOW__OBSERVABILITY__ALERTMANAGER_API_URL": alertmanager.url,
            "AIRFLOW__OBSERVABILITY__AIRFLOW_URL": airflow_url,
        }
        probe = deployment.python(RUN_PROBE, str(deployment.dags_folder / f"{DAG_ID}.py"), extra_env=settings)
        run = json.loads(probe.stdout.strip().splitlines()[-1])
        assert run["state"] == "failed", f"the probe DAG should fail: {run}"
        # The task runner posts before dag.test() returns; the wait only bounds a slow Alertmanager.
        output = f"{probe.stdout}\n{probe.stderr}"[-4000:]
        what = f"the probe's alert in Alertmanager; the run's output ended with:\n{output}"
        task_alerts = wait_for(lambda: probe_task_alerts(alertmanager), 15, what)
    return FailedRun(run["run_id"], airflow_url, task_alerts)


def probe_task_alerts(alertmanager: RunningAlertmanager) -> list[dict]:
    return alertmanager.alerts('alertname="AirflowTaskFailed"', f'dag_id="{DAG_ID}"')


@pytest.fixture(scope="module")
def postgres_port() -> Iterator[int]:
    """One throwaway PostgreSQL 15 cluster for every release (a database each), stopped by PID."""
    with throwaway_cluster() as port:
        yield port


def json_after_logs(stdout: str) -> object:
    """The JSON document an `airflow ... --output json` printed after whatever Airflow logged to stdout first."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(("[", "{"))), None)
    assert start is not None, f"no JSON in the output:\n{stdout[-2000:]}"
    document, _ = json.JSONDecoder().raw_decode("\n".join(lines[start:]))
    return document


def test_the_plugin_loads_once_next_to_airflow_exporters(deployment: ThrowawayAirflow) -> None:
    plugins = json_after_logs(deployment.airflow("plugins", "--output", "json").stdout)

    names = [plugin["name"] for plugin in plugins]
    assert names.count(PLUGIN_NAME) == 1, f"the toolkit's plugin should load exactly once: {names}"
    assert names.count(AIRFLOW_EXPORTER_PLUGIN) == 1, f"airflow-exporter's plugin should load too: {names}"
    (ours,) = [plugin for plugin in plugins if plugin["name"] == PLUGIN_NAME]
    assert "airflow-observability" in ours["source"], "loaded through the wheel's airflow.plugins entry point"
    assert ours["listeners"] == ["airflow_obs.observability.listeners"]

    imported = json.loads(deployment.python(IMPORT_BOTH).stdout.strip().splitlines()[-1])
    site_packages = str(deployment.venv / "lib")
    assert all(path.startswith(site_packages) for path in imported.values()), f"not the virtualenv's: {imported}"


def test_airflow_knows_the_observability_section_the_wheel_declares(deployment: ThrowawayAirflow) -> None:
    def get_value(key: str, extra_env: dict[str, str] | None = None) -> str:
        output = deployment.airflow("config", "get-value", "observability", key, extra_env=extra_env).stdout
        return output.strip().splitlines()[-1]  # the value is the last line, whatever Airflow logged before it

    # A set variable is read through Airflow's configuration...
    set_url = {"AIRFLOW__OBSERVABILITY__AIRFLOW_URL": "https://airflow.example.com"}
    assert get_value("airflow_url", set_url) == "https://airflow.example.com"
    # ...and an unset key has its declared default: only the provider entry point can have told Airflow that.
    assert get_value("alertmanager_url") == "http://127.0.0.1:9093"


def test_a_task_that_fails_for_good_pages_alertmanager_with_its_log_link(failed_run: FailedRun) -> None:
    (alert,) = failed_run.task_alerts
    assert alert["labels"]["task_id"] == TASK_ID
    assert alert["status"]["state"] == "active"
    assert FAILURE_MESSAGE in alert["annotations"]["error"]
    # The Airflow UI's page of that try, which opens on its log (a manual run id holds ':' and '+').
    run_path = quote(failed_run.run_id, safe="")
    expected = f"{failed_run.airflow_url}/dags/{DAG_ID}/runs/{run_path}/tasks/{TASK_ID}?try_number=1"
    assert alert["annotations"]["log_url"] == expected


def test_the_exporter_serves_clean_metrics_with_the_failed_run_from_sqlite(
    deployment: ThrowawayAirflow, failed_run: FailedRun
) -> None:
    samples = served_samples(deployment, deployment.sqlite_url)

    assert samples.get(f'airflow_dag_last_run_failed{{dag_id="{DAG_ID}"}}') == 1.0, "the probe's failed run"


def test_the_exporter_serves_clean_metrics_from_the_same_airflow_on_postgresql(
    deployment: ThrowawayAirflow, release: AirflowRelease, postgres_port: int
) -> None:
    # Airflow on PostgreSQL needs its postgres extra (asyncpg for its async engine; psycopg2 alone is not enough).
    deployment.install(f"apache-airflow[postgres]=={release.version}", *release.deployment_pins)
    url = create_database(postgres_port, "airflow_" + release.version.replace(".", "_"))
    deployment.airflow("db", "migrate", extra_env={"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url})

    served_samples(deployment, url)


@pytest.fixture(scope="module")
def exporter_alone(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> ThrowawayAirflow:
    """The exporter's own install (its image's): the wheel's `exporter` extra in a virtualenv without Airflow."""
    venv = create_throwaway_airflow(tmp_path_factory.mktemp("exporter-alone"), [f"{wheel}[exporter]"])
    has_airflow = venv.python("import importlib.util; print(importlib.util.find_spec('airflow') is not None)")
    assert has_airflow.stdout.strip().splitlines()[-1] == "False", "the exporter's extra must not bring Airflow"
    return venv


def test_the_exporter_installed_alone_without_airflow_serves_this_airflows_database(
    exporter_alone: ThrowawayAirflow, deployment: ThrowawayAirflow, failed_run: FailedRun
) -> None:
    samples = served_samples(exporter_alone, deployment.sqlite_url)

    assert samples.get(f'airflow_dag_last_run_failed{{dag_id="{DAG_ID}"}}') == 1.0, "the probe's failed run"


# --- the exporter as a deployment runs it, and its output ---


def served_samples(venv: ThrowawayAirflow, db_url: str) -> dict[str, float]:
    """The samples the venv's exporter serves from `db_url`, once promtool passed them and every collector worked."""
    with running_exporter(venv, db_url) as url:
        metrics = fetch_text(f"{url}/metrics")
    assert_promtool_clean(metrics)
    samples = parse_samples(metrics)
    assert_exporter_healthy(samples)
    return samples


EXPORTER_START_TIMEOUT_SECONDS = 60  # it asks Airflow for its heartbeat timeout first (one interpreter start-up)


@contextlib.contextmanager
def running_exporter(deployment: ThrowawayAirflow, db_url: str) -> Iterator[str]:
    """`airflow-obs exporter` from the virtualenv on a free loopback port; its base URL once /healthz answers.

    Stopped by PID even if the block fails, then its process group is killed: the child it starts to read
    Airflow's configuration must not outlive a test that gave up early.
    """
    port = free_port()
    log_path = deployment.root / f"exporter-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [deployment.bin("airflow-obs"), "exporter", "--host", "127.0.0.1", "--port", str(port)],
            cwd=deployment.root,
            env=deployment.env({"AIRFLOW_OBS_EXPORTER_DB_URL": db_url}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the exporter exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                return fetch_status(f"{url}/healthz") == 200
            return False

        wait_for(healthy, EXPORTER_START_TIMEOUT_SECONDS, "the exporter's /healthz", interval=0.3)
        yield url
    finally:
        stop_process(process, timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _open(url: str):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    return opener.open(url, timeout=10)


def fetch_status(url: str) -> int:
    with _open(url) as response:
        return response.status


def fetch_text(url: str) -> str:
    with _open(url) as response:
        assert response.status == 200, url
        return response.read().decode()


def assert_promtool_clean(metrics: str) -> None:
    # promtool passes an empty page: make sure there is something to lint.
    assert "airflow_up" in metrics, f"not the exporter's metrics:\n{metrics[:1000]}"
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=metrics, capture_output=True, text=True, timeout=30, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, ""), "promtool check metrics"


def parse_samples(metrics: str) -> dict[str, float]:
    """`name{labels}` -> value for every sample of the exposition (labels as the exporter wrote them)."""
    samples = {}
    for line in metrics.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            samples[series] = float(value)
    return samples


def assert_exporter_healthy(samples: dict[str, float]) -> None:
    """The metadata DB answered and every collector's queries worked against this Airflow's schema."""
    assert samples.get("airflow_up") == 1.0
    collectors = {
        name: value for name, value in samples.items() if name.startswith("airflow_exporter_collector_success")
    }
    assert collectors, "the exporter reports no collector"
    failed = [series for series, value in collectors.items() if value != 1.0]
    assert not failed, f"collectors that failed on this Airflow's schema: {failed}"


def test_the_rules_and_runbooks_come_from_the_installed_package_with_the_deployments_links(
    exporter_alone: ThrowawayAirflow,
) -> None:
    out = exporter_alone.root / "exported"
    links = {"AIRFLOW__OBSERVABILITY__AIRFLOW_URL": "https://airflow.example.com"}
    obs = exporter_alone.bin("airflow-obs")
    run_checked(
        [obs, "rules", "export", "--out", str(out / "rules")],
        cwd=exporter_alone.root,
        env=exporter_alone.env(links),
        timeout=60,
    )
    run_checked(
        [obs, "runbooks", "export", "--out", str(out / "runbooks")],
        cwd=exporter_alone.root,
        env=exporter_alone.env(),
        timeout=60,
    )

    rule_files = sorted((out / "rules").glob("*.rules.yml"))
    assert [path.name for path in rule_files] == sorted(
        path.name for path in (REPO_ROOT / "alert_rules").glob("*.rules.yml")
    )
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", *map(str, rule_files)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "https://airflow.example.com/dags/{{ $labels.dag_id }}" in (out / "rules" / "airflow.rules.yml").read_text()
    assert (out / "rules" / "alertmanager.routes.yml").is_file() and list(
        (out / "rules" / "alertmanager-templates").glob("*.tmpl")
    )
    assert {path.name for path in (out / "runbooks").glob("*.md")} == {
        path.name for path in (REPO_ROOT / "runbooks").glob("*.md")
    }
