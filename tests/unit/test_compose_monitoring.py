"""The compose stack's monitoring (compose/), checked without Docker: Prometheus and Alertmanager generated from
the same source as `make up`, scrape targets, Grafana's data sources and dashboards, traces and logs."""

from __future__ import annotations

import glob
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from airflow_obs.observability.links import (
    DAG_DASHBOARD_UID,
    FRESHNESS_DASHBOARD_UID,
    INFRA_DASHBOARD_UID,
    OVERVIEW_DASHBOARD_UID,
)
from airflow_obs.observability.settings import DEFAULT_TRACE_URL_TEMPLATE

from local_stack.compose_config import (
    ALERTMANAGER_FILE,
    COMPOSE_DIR,
    COMPOSE_SCRAPE_TARGETS,
    PROMETHEUS_FILE,
    compose_alertmanager_config,
    generated_files,
)
from local_stack.prometheus_config import SCRAPE_JOBS
from local_stack.settings import REPO_ROOT
from tests.unit.compose_file import (
    host_path,
    listening_ports,
)
from tests.unit.stack_helpers import AMTOOL, PROMTOOL, run

# --- Prometheus and Alertmanager -------------------------------------------------------------------------


def test_the_committed_generated_configs_match_what_the_generator_writes() -> None:
    stale = [str(path.relative_to(REPO_ROOT)) for path, text in generated_files().items() if path.read_text() != text]

    assert not stale, f"regenerate with `python -m local_stack.compose_config`: {stale}"


def test_every_scrape_target_is_a_compose_service_on_a_port_it_listens_on(services: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    targets = [
        target for job in config["scrape_configs"] for group in job["static_configs"] for target in group["targets"]
    ]
    targets += [
        t for am in config["alerting"]["alertmanagers"] for group in am["static_configs"] for t in group["targets"]
    ]

    for target in targets:
        host, _, port = target.rpartition(":")
        assert host in services, f"scrape target {target}: no compose service {host!r}"
        assert int(port) in listening_ports(services[host]), (
            f"{target}: {host} declares {listening_ports(services[host])}"
        )


def test_compose_scrapes_every_job_of_the_local_stack_under_the_same_name() -> None:
    jobs = [job["job_name"] for job in yaml.safe_load(PROMETHEUS_FILE.read_text())["scrape_configs"]]

    assert set(SCRAPE_JOBS) <= set(jobs)
    assert jobs == list(COMPOSE_SCRAPE_TARGETS)


def test_prometheus_loads_the_committed_rule_files_through_its_mount(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    config_arg = next(arg for arg in prometheus["command"] if arg.startswith("--config.file="))
    assert host_path(prometheus, config_arg.split("=", 1)[1]) == PROMETHEUS_FILE
    (pattern,) = yaml.safe_load(PROMETHEUS_FILE.read_text())["rule_files"]

    loaded = sorted(glob.glob(str(host_path(prometheus, pattern))))

    assert [Path(path).name for path in loaded] == sorted(
        p.name for p in (REPO_ROOT / "alert_rules").glob("*.rules.yml")
    )
    result = run(PROMTOOL, "check", "config", "--syntax-only", str(PROMETHEUS_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_with_its_mounted_templates_passes_amtool(services: dict[str, Any], tmp_path: Path) -> None:
    alertmanager = services["alertmanager"]
    config_arg = next(arg for arg in alertmanager["command"] if arg.startswith("--config.file="))
    assert host_path(alertmanager, config_arg.split("=", 1)[1]) == ALERTMANAGER_FILE
    config = yaml.safe_load(ALERTMANAGER_FILE.read_text())
    # The container's template paths, resolved through the mounts, so amtool parses the very files compose serves.
    config["templates"] = [str(host_path(alertmanager, pattern)) for pattern in config["templates"]]
    assert all(glob.glob(pattern) for pattern in config["templates"]), config["templates"]
    checked = tmp_path / "alertmanager.yml"
    checked.write_text(yaml.safe_dump(config))

    result = run(AMTOOL, "check-config", str(checked))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 receivers" in result.stdout


def test_alertmanager_delivers_to_mailpit_the_webhook_capture_and_slack_from_a_secret(
    services: dict[str, Any],
) -> None:
    config = yaml.safe_load(ALERTMANAGER_FILE.read_text())
    glob_config = config["global"]

    # Compose mounts each secret of a service at /run/secrets/<name>.
    slack_file = PurePosixPath(glob_config["slack_api_url_file"])
    assert slack_file.parent == PurePosixPath("/run/secrets")
    assert slack_file.name in services["alertmanager"]["secrets"]
    host, port = glob_config["smtp_smarthost"].split(":")
    assert int(port) in listening_ports(services[host])
    assert "smtp_auth_password_file" not in glob_config
    hooks = [hook["url"] for receiver in config["receivers"] for hook in receiver.get("webhook_configs", [])]
    assert hooks
    for url in hooks:
        parts = urlsplit(url)
        assert parts.hostname in services and parts.port in listening_ports(services[parts.hostname]), url


def test_a_receiver_with_webhooks_but_no_capture_path_is_refused(tmp_path: Path) -> None:
    routing = yaml.safe_load((REPO_ROOT / "alert_rules" / "alertmanager.yml").read_text())
    routing["receivers"].append({"name": "ops-webhook", "webhook_configs": [{"url": "http://ops.invalid/"}]})
    routing_file = tmp_path / "alertmanager.yml"
    routing_file.write_text(yaml.safe_dump(routing))

    with pytest.raises(ValueError, match="'ops-webhook'"):
        compose_alertmanager_config(routing_file)


# --- Grafana, traces and logs ----------------------------------------------------------------------------


def test_grafana_provisions_every_data_source_with_the_uids_links_use(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    provisioning = host_path(grafana, "/etc/grafana/provisioning")
    datasources = {
        source["uid"]: source
        for path in sorted((provisioning / "datasources").glob("*.yml"))
        for source in yaml.safe_load(path.read_text())["datasources"]
    }

    assert set(datasources) == {"prometheus", "alertmanager", "tempo", "loki"}
    # The plugin's trace links open Grafana Explore on the trace store's uid.
    assert '"datasource":"tempo"' in DEFAULT_TRACE_URL_TEMPLATE
    for uid, source in datasources.items():
        url = urlsplit(source["url"])
        assert url.port in listening_ports(services[url.hostname]), uid
    assert datasources["prometheus"]["isDefault"] is True
    assert datasources["loki"]["jsonData"]["derivedFields"][0]["datasourceUid"] == "tempo"
    assert datasources["tempo"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"


def test_grafana_loads_the_dashboards_folder_that_holds_the_generated_json(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    provisioning = host_path(grafana, "/etc/grafana/provisioning")
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())["providers"]

    folder = host_path(grafana, provider["options"]["path"])

    assert folder == REPO_ROOT / "dashboards"
    # The dashboards the plugin and the alerts link to are generated into this folder by grafana_dashboards.
    for uid in (DAG_DASHBOARD_UID, OVERVIEW_DASHBOARD_UID, INFRA_DASHBOARD_UID, FRESHNESS_DASHBOARD_UID):
        assert json.loads((folder / f"{uid}.json").read_text())["uid"] == uid


def test_alloy_ships_the_airflow_task_logs_volume_and_forwards_traces_to_tempo(services: dict[str, Any]) -> None:
    alloy = services["alloy"]
    config = host_path(alloy, alloy["command"][-1]).read_text()
    airflow_logs = next(v for v in services["airflow-scheduler"]["volumes"] if v.endswith(":/opt/airflow/logs"))

    assert f"{airflow_logs}:ro" in alloy["volumes"]
    assert '"__path__" = "/opt/airflow/logs/dag_id=*/run_id=*/task_id=*/**/*.log"' in config
    for endpoint in re.findall(r'endpoint = "([a-z-]+):(\d+)"', config):
        host, port = endpoint
        assert host in services and int(port) in listening_ports(services[host]), endpoint
    loki = urlsplit(re.search(r'url = "(http://[^"]+)"', config).group(1))
    assert loki.port in listening_ports(services[loki.hostname])
    for field in ("dag_id", "task_id", "trace_id"):
        assert re.search(rf"^\s+{field}\s+= \"\",$", config, re.MULTILINE), field


def test_the_task_log_path_pattern_of_alloy_extracts_the_ids_from_airflows_file_names() -> None:
    config = (COMPOSE_DIR / "alloy" / "config.alloy").read_text()
    expression = re.search(r'expression = "(.+)"\n', config).group(1).encode().decode("unicode_escape")
    # Go's RE2 and Python agree on this subset: named groups, classes, an optional group.
    pattern = re.compile(expression)

    plain = pattern.search(
        "/opt/airflow/logs/dag_id=etl_orders/run_id=manual__2026-01-01T00:00:00+00:00/task_id=load/attempt=2.log"
    )
    mapped = pattern.search("/opt/airflow/logs/dag_id=d/run_id=r/task_id=t/map_index=3/attempt=1.log")

    assert plain and plain.group("dag_id", "task_id", "try_number") == ("etl_orders", "load", "2")
    assert plain.group("run_id") == "manual__2026-01-01T00:00:00+00:00"
    assert mapped and mapped.group("map_index", "try_number") == ("3", "1")
