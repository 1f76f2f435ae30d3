"""The compose stack (compose/), checked without Docker: schema, mounts, scrape targets, health, pins, secrets."""

from __future__ import annotations

import glob
import json
import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from observability.links import (
    DAG_DASHBOARD_UID,
    FRESHNESS_DASHBOARD_UID,
    INFRA_DASHBOARD_UID,
    OVERVIEW_DASHBOARD_UID,
)
from observability.settings import DEFAULT_TRACE_URL_TEMPLATE, read_settings

from local_stack.compose_config import (
    ALERTMANAGER_FILE,
    COMPOSE_DIR,
    COMPOSE_SCRAPE_TARGETS,
    PROMETHEUS_FILE,
    PUBLIC_URLS,
    compose_alertmanager_config,
    generated_files,
)
from local_stack.prometheus_config import SCRAPE_JOBS
from local_stack.settings import REPO_ROOT
from tests.unit.stack_helpers import AMTOOL, PROMTOOL, run

COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
SCHEMA = Path("/work/shared/schemas/compose-spec.json")
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
# `${VAR}`, `${VAR:?msg}`, `${VAR:-default}`...; `$${VAR}` is a literal `$` for the container's shell.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
WHOLE_INTERPOLATION = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[?-][^}]*)?\}$")
SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|TOKEN|_KEY$|AUTH$", re.IGNORECASE)
WORKER = "airflow-worker"
FROM_ENV = "FROM-ENV"  # what an interpolation is masked as, so URLs that hold one can be parsed


def masked(text: str) -> str:
    """The text with every `${...}` interpolation replaced by FROM_ENV."""
    return re.sub(r"(?<!\$)\$\{[^}]*\}", FROM_ENV, text)


def resolved(text: str) -> str:
    """The text as compose resolves it with the values of .env.example."""
    values = env_example()
    return re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}", lambda match: values[match.group(1)], text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of each bind mount; named volumes are left out."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append(((COMPOSE_DIR / volume["source"]).resolve(), volume["target"]))
            continue
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append(((COMPOSE_DIR / source).resolve(), target))
    return mounts


def host_path(service: dict[str, Any], container_path: str) -> Path:
    """Where a path inside the container comes from on the host, through the service's bind mounts."""
    wanted = PurePosixPath(container_path)
    for source, target in bind_mounts(service):
        if wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents:
            return source / wanted.relative_to(target)
    raise AssertionError(f"{container_path} is not under any bind mount of the service")


def listening_ports(service: dict[str, Any]) -> set[int]:
    """Container ports a service declares: `expose` and the container side of `ports`."""
    ports = {int(str(port).split("/")[0]) for port in service.get("expose", [])}
    for mapping in service.get("ports", []):
        container = mapping["target"] if isinstance(mapping, dict) else str(mapping).split(":")[-1]
        ports.add(int(str(container).split("/")[0]))
    return ports


def all_strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in all_strings(key) + all_strings(value)]
    if isinstance(node, list):
        return [text for item in node for text in all_strings(item)]
    return []


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


# --- the file itself -------------------------------------------------------------------------------------


def test_the_compose_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())

    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda error: list(error.path))

    assert not errors, "\n".join(f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors)


def test_every_bind_mounted_host_file_or_folder_exists_in_the_repository(services: dict[str, Any]) -> None:
    missing = [
        f"{name}: {source}"
        for name, service in services.items()
        for source, _ in bind_mounts(service)
        if not source.exists() or REPO_ROOT not in source.parents
    ]

    assert not missing, f"bind mounts without a file in the repository: {missing}"
    grafana_dashboards = {target: source for source, target in bind_mounts(services["grafana"])}
    assert grafana_dashboards["/var/lib/grafana/dashboards/airflow-obs"] == REPO_ROOT / "dashboards"


def test_the_airflow_image_is_built_from_the_official_image_with_sources_that_exist(services: dict[str, Any]) -> None:
    builds = {json.dumps(service["build"], sort_keys=True) for service in services.values() if "build" in service}
    assert len(builds) == 1, f"one image for every Airflow service, got builds {builds}"
    build = json.loads(builds.pop())
    context = (COMPOSE_DIR / build["context"]).resolve()
    assert context == REPO_ROOT
    dockerfile = (context / build["dockerfile"]).read_text()

    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11$", dockerfile, re.MULTILINE)
    sources = [
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in [part for part in line.split()[1:] if not part.startswith("--")][:-1]
    ]
    assert sources, "the Dockerfile copies the project"
    for source in sources:
        assert glob.glob(str(context / source)), f"COPY {source}: nothing in the build context matches"


def test_the_build_context_keeps_the_virtualenv_and_local_secrets_out() -> None:
    # BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile when the context is elsewhere.
    ignored = (COMPOSE_DIR / "Dockerfile.dockerignore").read_text().split()

    assert {"**/.venv", "**/.stack", "compose/.env"} <= set(ignored)


# --- health and start order ------------------------------------------------------------------------------


def test_every_long_running_service_has_a_healthcheck_command(services: dict[str, Any]) -> None:
    without = [
        name
        for name, service in services.items()
        if service.get("restart") != "no" and not service.get("healthcheck", {}).get("test")
    ]

    assert not without, f"services without a healthcheck: {without}"


def test_a_one_shot_service_is_awaited_by_completion_not_by_health(services: dict[str, Any]) -> None:
    one_shot = {name for name, service in services.items() if service.get("restart") == "no"}
    assert one_shot == {"airflow-init"}

    for name in one_shot:
        assert services[name]["healthcheck"] == {"disable": True}
        waiting = {
            dependent: deps[name]["condition"]
            for dependent, service in services.items()
            if name in (deps := service.get("depends_on", {}))
        }
        assert waiting, f"nothing waits for {name}"
        assert set(waiting.values()) == {"service_completed_successfully"}, waiting


def test_every_dependency_names_a_condition_the_dependency_can_meet(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for dependency, rule in depends_on.items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            if rule["condition"] == "service_healthy":
                assert services[dependency]["healthcheck"].get("test"), f"{name} waits on {dependency}'s health"


# --- images, secrets, scaling ----------------------------------------------------------------------------


def test_every_image_is_pinned_to_a_version(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: image {image!r} is not pinned to a version"


def test_no_password_or_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):  # a *_FILE names a path, not a secret
                assert WHOLE_INTERPOLATION.match(value), f"{name}: {key} is a literal, expected ${{VAR:?...}}"
    for text in all_strings(compose):
        for url in re.findall(r"[a-z+]+://[^\s'\"]+", masked(text)):
            password = urlsplit(url).password
            if password is not None:
                assert password == FROM_ENV, f"password literal in {url}"
    for name, service in compose["services"].items():
        command = service.get("command", [])
        for flag, value in zip(command, command[1:], strict=False):
            if flag in ("--requirepass", "--password"):
                assert WHOLE_INTERPOLATION.match(value), f"{name}: {flag} is given a literal"


def test_the_env_example_defines_every_variable_the_compose_file_uses(compose: dict[str, Any]) -> None:
    used = {variable for text in all_strings(compose) for variable in INTERPOLATION.findall(text)}
    used |= {secret["environment"] for secret in compose.get("secrets", {}).values() if "environment" in secret}
    defined = env_example()

    assert used, "the compose file takes its secrets from the environment"
    assert sorted(used - set(defined)) == []
    # Placeholders that cannot be mistaken for a chosen password (the Slack default is the capture's URL).
    for key, value in defined.items():
        if SECRET_NAME.search(key):
            assert value.startswith("change-me"), f"{key} in .env.example looks like a real secret"


def test_a_missing_secret_stops_compose_with_a_message_naming_the_variable(compose: dict[str, Any]) -> None:
    texts = "\n".join(all_strings(compose))
    for variable, rest in re.findall(r"(?<!\$)\$\{([A-Z_0-9]+)(:?[?-][^}]*)?\}", texts):
        if SECRET_NAME.search(variable):
            assert rest.startswith(":?") and variable in rest, f"${{{variable}{rest}}}: expected :?set {variable} ..."


def test_workers_can_scale_without_a_container_name_or_a_published_port(services: dict[str, Any]) -> None:
    worker = services[WORKER]

    assert worker["command"] == ["celery", "worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert environment(worker)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert not [name for name, service in services.items() if "container_name" in service]


def test_published_host_ports_are_distinct(services: dict[str, Any]) -> None:
    published = [str(port).split(":")[0] for service in services.values() for port in service.get("ports", [])]

    assert len(published) == len(set(published)), published


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
    assert "6 receivers" in result.stdout


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


# --- Airflow's settings ----------------------------------------------------------------------------------


def airflow_services(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in services.items() if name.startswith("airflow-")}


def test_the_plugin_settings_of_every_airflow_service_are_valid_and_point_at_the_published_urls(
    services: dict[str, Any],
) -> None:
    for name, service in airflow_services(services).items():
        settings = read_settings(environment(service))  # raises on any invalid value

        assert settings.airflow_url == PUBLIC_URLS["airflow"], name
        assert settings.grafana_url == PUBLIC_URLS["grafana"], name
        assert environment(service)["AIRFLOW__API__BASE_URL"] == PUBLIC_URLS["airflow"], name
    published = {str(port).split(":")[0] for service in services.values() for port in service.get("ports", [])}
    for url in PUBLIC_URLS.values():
        assert str(urlsplit(url).port) in published, f"{url} is not a published port"


def test_airflow_sends_statsd_and_traces_to_services_that_listen_for_them(services: dict[str, Any]) -> None:
    env = environment(services["airflow-scheduler"])
    statsd = services[env["AIRFLOW__METRICS__STATSD_HOST"]]
    otlp = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])

    assert env["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert f"{env['AIRFLOW__METRICS__STATSD_PORT']}/udp" in statsd["expose"]
    assert any("exporters/statsd_mapping.yml" in str(source) for source, _ in bind_mounts(statsd))
    assert env["AIRFLOW__TRACES__OTEL_ON"] == "True"
    assert otlp.hostname in services and otlp.port in listening_ports(services[otlp.hostname])
    execution_api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert execution_api.port in listening_ports(services[execution_api.hostname])


def test_every_connection_of_the_airflow_services_points_at_a_compose_service(services: dict[str, Any]) -> None:
    env = environment(services[WORKER])
    connections = {key: value for key, value in env.items() if key.startswith("AIRFLOW_CONN_")}

    assert connections
    for key, value in connections.items():
        value = resolved(value)
        parts = urlsplit(json.loads(value)["password"] if value.startswith("{") else value)
        host = parts.hostname or ""
        assert host in services, f"{key}: {host!r} is not a compose service"
        if parts.port:
            assert parts.port in listening_ports(services[host]), f"{key}: {host} does not listen on {parts.port}"


def test_ui_auth_is_on_with_the_passwords_file_the_init_job_writes(services: dict[str, Any]) -> None:
    api_server = services["airflow-api-server"]
    env = environment(api_server)
    passwords_file = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    folder = str(PurePosixPath(passwords_file).parent)

    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert set(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")) == {"admin:admin", "oncall:viewer"}
    # The same named volume holds the file in both containers: the init job writes it, the api-server reads it.
    written = {volume for volume in services["airflow-init"]["volumes"] if volume.endswith(f":{folder}")}
    assert written and written <= set(api_server["volumes"])
    assert environment(services["airflow-init"])["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == passwords_file
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in (COMPOSE_DIR / "airflow-init.sh").read_text()


def test_the_init_script_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(COMPOSE_DIR / "airflow-init.sh")], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr


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
