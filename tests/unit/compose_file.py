"""The compose stack's file as the compose tests read it: its services, mounts, ports, environment and .env."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from local_stack.compose_config import (
    COMPOSE_DIR,
)

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


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


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
