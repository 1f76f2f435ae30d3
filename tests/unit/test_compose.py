"""The compose stack (compose/), checked without Docker: schema, mounts, health, pins, secrets, Airflow's wiring."""

from __future__ import annotations

import glob
import json
import re
import subprocess
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from airflow_obs.observability.settings import read_settings

from local_stack.compose_config import (
    COMPOSE_DIR,
    PUBLIC_URLS,
)
from local_stack.settings import REPO_ROOT
from tests.unit.compose_file import (
    FROM_ENV,
    INTERPOLATION,
    SCHEMA,
    SECRET_NAME,
    WHOLE_INTERPOLATION,
    WORKER,
    all_strings,
    bind_mounts,
    env_example,
    environment,
    listening_ports,
    masked,
    resolved,
)


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


def copied_sources(dockerfile: str) -> list[str]:
    return [
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in [part for part in line.split()[1:] if not part.startswith("--")][:-1]
    ]


def test_the_airflow_image_is_built_from_the_official_image_with_sources_that_exist(services: dict[str, Any]) -> None:
    builds = {json.dumps(service["build"], sort_keys=True) for service in airflow_services(services).values()}
    assert len(builds) == 1, f"one image for every Airflow service, got builds {builds}"
    build = json.loads(builds.pop())
    context = (COMPOSE_DIR / build["context"]).resolve()
    assert context == REPO_ROOT
    dockerfile = (context / build["dockerfile"]).read_text()

    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11$", dockerfile, re.MULTILINE)
    assert '"/opt/airflow-obs[plugin]"' in dockerfile
    sources = copied_sources(dockerfile)
    assert sources, "the Dockerfile copies the project"
    for source in sources:
        assert glob.glob(str(context / source)), f"COPY {source}: nothing in the build context matches"


def test_the_exporter_has_its_own_small_image_without_airflow(services: dict[str, Any]) -> None:
    exporter = services["airflow-exporter"]
    context = (COMPOSE_DIR / exporter["build"]["context"]).resolve()
    dockerfile = (context / exporter["build"]["dockerfile"]).read_text()
    ignored = (context / f"{exporter['build']['dockerfile']}.dockerignore").read_text().split()

    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
    assert '"/opt/airflow-obs[exporter]"' in dockerfile and "apache-airflow" not in dockerfile
    for source in copied_sources(dockerfile):
        assert glob.glob(str(context / source)), f"COPY {source}: nothing in the build context matches"
        assert source.split("/")[0] not in ignored, f"COPY {source}, which the .dockerignore leaves out"
    # The database URL is the exporter's own setting: it has no Airflow to read sql_alchemy_conn from.
    assert "AIRFLOW_OBS_EXPORTER_DB_URL" in exporter["environment"]


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


# --- Airflow's settings ----------------------------------------------------------------------------------


def airflow_services(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run Airflow (the exporter has its own image, without Airflow)."""
    return {
        name: service
        for name, service in services.items()
        if name.startswith("airflow-") and name != "airflow-exporter"
    }


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
