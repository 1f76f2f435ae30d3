"""statsd_exporter's line parsing and mapping rules in Python, to test exporters/statsd_mapping.yml without it.

Follows prometheus/statsd_exporter (pkg/line, pkg/mapper, pkg/exporter):
- InfluxDB-style tags: the name ends at its first comma, `key=value` tags follow, comma-separated.
- Glob mappings are tried first, in file order, the first match wins; `*` matches exactly one
  dot-separated component (`[^.]*`), so a match has as many components as the name it maps.
- Regex mappings are only tried after every glob mapping failed, in file order.
- `match_metric_type` restricts a mapping to counters (`c`), gauges (`g`) or observers (`ms`, `h`, `d`).
- The Prometheus labels are the line's tags, overridden by the mapping's labels; `$n` is the n-th capture.

Also what the tests need to know about Airflow: the legacy names of its metric registry, and the
metrics this mapping deliberately leaves to the catch-all.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
MAPPING_FILE = REPO_ROOT / "exporters" / "statsd_mapping.yml"

STATSD_PREFIX = "airflow"  # [metrics] statsd_prefix, Airflow's default
UNMAPPED_METRIC_PREFIX = "airflow_statsd_unmapped"  # the catch-all mappings' names start with this
METRIC_TYPES = {"c": "counter", "g": "gauge", "ms": "observer", "h": "observer", "d": "observer"}

# Airflow metrics this mapping leaves to the catch-all on purpose (fnmatch patterns over the StatsD name
# without the prefix), each with the reason. Everything else Airflow's registry declares must be mapped.
LEFT_TO_CATCH_ALL = {
    "serde.load_serializers": "start-up timing of every Airflow process, CLI calls included; no operational use",
    "airflow.io.load_filesystems": "start-up timing of the task SDK's filesystem registry; no operational use",
    "collect_db_dags": "declared in Airflow's registry but not sent by Airflow 3.3.2",
    "dag_file_processor_timeouts": "declared in Airflow's registry but not sent by Airflow 3.3.2",
    "dag_file_refresh_error": "declared in Airflow's registry but not sent by Airflow 3.3.2",
    "dag_processing.manager_stalls": "declared in Airflow's registry but not sent by Airflow 3.3.2",
    "dag_processing.last_num_of_db_queries.*": "declared in Airflow's registry but not sent by Airflow 3.3.2",
    "local_task_job.task_exit": "Airflow 2's LocalTaskJob; Airflow 3 has none",
    "ol.*": "OpenLineage provider, not installed by this toolkit",
    "edge_worker.*": "Edge executor provider, not used by this toolkit's stacks",
    "edge_executor.*": "Edge executor provider, not used by this toolkit's stacks",
    "kubernetes_executor.*": "KubernetesExecutor, not used by this toolkit's stacks (yet: [7/7])",
    "batch_executor.*": "AWS Batch executor, not used by this toolkit's stacks",
    "ecs_executor.*": "AWS ECS executor, not used by this toolkit's stacks",
    "lambda_executor.*": "AWS Lambda executor, not used by this toolkit's stacks",
}


@dataclass(frozen=True)
class StatsdLine:
    """One StatsD line as statsd_exporter parses it."""

    name: str
    tags: dict[str, str]
    value: float
    statsd_type: str

    @property
    def metric_type(self) -> str:
        return METRIC_TYPES[self.statsd_type]


def parse_line(line: str) -> StatsdLine:
    """Parse `name[,tag=value...]:value|type[|@rate]`; raises ValueError where statsd_exporter would reject it."""
    head, sep, rest = line.partition(":")
    if not sep or not head:
        raise ValueError(f"no ':' in {line!r}")
    name, _, tag_text = head.partition(",")
    tags = {}
    for tag in filter(None, tag_text.split(",")):
        key, eq, value = tag.partition("=")
        if not eq or not key or not value:
            raise ValueError(f"malformed tag {tag!r} in {line!r}")
        tags[re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    parts = rest.split("|")
    if len(parts) < 2 or parts[1] not in METRIC_TYPES:
        raise ValueError(f"bad value or type in {line!r}")
    return StatsdLine(name=name, tags=tags, value=float(parts[0]), statsd_type=parts[1])


@dataclass(frozen=True)
class Mapping:
    """One entry of the mapping file's `mappings:` list, with the defaults applied."""

    index: int
    match: str
    match_type: str
    metric_type: str | None
    name: str
    labels: dict[str, str]
    action: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def dropped(self) -> bool:
        return self.action == "drop"

    @property
    def catch_all(self) -> bool:
        return self.name.startswith(UNMAPPED_METRIC_PREFIX)

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(self.match.split("."))

    def captures(self, name: str) -> list[str] | None:
        """The `$n` values if this mapping's match fits `name`, else None (the metric type is not checked)."""
        if self.match_type == "glob":
            parts = name.split(".")
            if len(parts) != len(self.tokens):
                return None
            if any(piece not in ("*", part) for piece, part in zip(self.tokens, parts, strict=True)):
                return None
            return [part for piece, part in zip(self.tokens, parts, strict=True) if piece == "*"]
        found = re.search(self.match, name)  # Go's FindStringSubmatchIndex: unanchored unless the regex anchors
        return None if found is None else [found.group(0), *found.groups()]


@dataclass(frozen=True)
class Mapped:
    """What statsd_exporter makes of one line: the mapping that matched (None: unmapped), name and labels."""

    mapping: Mapping | None
    name: str | None
    labels: dict[str, str]

    @property
    def dropped(self) -> bool:
        return self.mapping is not None and self.mapping.dropped


def load_config(path: Path = MAPPING_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def load_mappings(path: Path = MAPPING_FILE) -> list[Mapping]:
    config = load_config(path)
    default_match_type = (config.get("defaults") or {}).get("match_type", "glob")
    return [
        Mapping(
            index=index,
            match=str(raw["match"]),
            match_type=raw.get("match_type", default_match_type),
            metric_type=raw.get("match_metric_type"),
            name=str(raw.get("name", "")),
            labels={key: str(value) for key, value in (raw.get("labels") or {}).items()},
            action=raw.get("action", "map"),
            raw=raw,
        )
        for index, raw in enumerate(config["mappings"])
    ]


def _expand(template: str, captures: list[str], glob: bool) -> str:
    """Replace `$n` / `${n}`; glob captures count from 1, regex ones from 0 (the whole match)."""

    def value(found: re.Match[str]) -> str:
        position = int(found.group(1) or found.group(2)) - (1 if glob else 0)
        return captures[position] if 0 <= position < len(captures) else ""

    return re.sub(r"\$\{(\d+)\}|\$(\d+)", value, template)


def map_line(mappings: list[Mapping], line: StatsdLine) -> Mapped:
    """Apply statsd_exporter's rules: globs in order, then regexes in order; first match wins."""
    for match_type in ("glob", "regex"):
        for mapping in mappings:
            if mapping.match_type != match_type or mapping.metric_type not in (None, line.metric_type):
                continue
            captures = mapping.captures(line.name)
            if captures is None:
                continue
            glob = match_type == "glob"
            labels = dict(line.tags)
            labels.update({key: _expand(value, captures, glob) for key, value in mapping.labels.items()})
            return Mapped(mapping, _expand(mapping.name, captures, glob), labels)
    return Mapped(None, None, dict(line.tags))


# ------------------------------------------------------------------------------------ Airflow's registry


@cache
def airflow_metric_registry() -> tuple[dict[str, Any], ...]:
    """Airflow's own declaration of every metric it sends (name, legacy_name, type, name_variables).

    Read from the installed package without importing it (importing airflow loads its configuration);
    airflow._shared.observability.metrics.metrics_registry.YAML_REGISTRY_PATH names the same file.
    """
    package = Path(importlib.util.find_spec("airflow").origin).parent
    registry = package / "_shared" / "observability" / "metrics" / "metrics_template.yaml"
    return tuple(yaml.safe_load(registry.read_text())["metrics"])


def _template_regex(template: str) -> re.Pattern[str]:
    """A registry name template (`ti.finish.{dag_id}.{task_id}.{state}`) as a regex over full StatsD names."""
    pattern = re.escape(template)
    pattern = re.sub(r"\\\{\w+\\\}", "[^.]+", pattern)
    return re.compile(rf"^{STATSD_PREFIX}\.{pattern}$")


@cache
def _legacy_and_current_patterns() -> tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]:
    legacy = tuple(_template_regex(m["legacy_name"]) for m in airflow_metric_registry() if m["legacy_name"] != "-")
    current = tuple(_template_regex(m["name"]) for m in airflow_metric_registry())
    return legacy, current


def is_legacy_name(name: str) -> bool:
    """Whether Airflow's registry says `name` (prefix included) is a legacy name with ids inside the name."""
    legacy, current = _legacy_and_current_patterns()
    return any(p.match(name) for p in legacy) and not any(p.match(name) for p in current)


def left_to_catch_all(name: str) -> str | None:
    """The reason `name` (prefix included) is deliberately unmapped, or None."""
    bare = name.removeprefix(f"{STATSD_PREFIX}.")
    return next((reason for pattern, reason in LEFT_TO_CATCH_ALL.items() if fnmatch.fnmatchcase(bare, pattern)), None)
