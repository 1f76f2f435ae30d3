"""exporters/statsd_mapping.yml against statsd_exporter's rules and Airflow 3.3's own metric registry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.statsd_mapping_matcher import (
    MAPPING_FILE,
    REPO_ROOT,
    STATSD_PREFIX,
    UNMAPPED_METRIC_PREFIX,
    Mapping,
    StatsdLine,
    airflow_metric_registry,
    left_to_catch_all,
    load_config,
    load_mappings,
    map_line,
    parse_line,
)

# statsd_exporter's own validation (pkg/mapper/mapper.go); the component pattern is the stricter one of
# older releases (two characters at least), which every component here satisfies anyway.
STATSD_COMPONENT = r"[a-zA-Z_](-?[a-zA-Z0-9_])+"
GLOB_MATCH_RE = re.compile(rf"^(\*\.|{STATSD_COMPONENT}\.)+(\*|{STATSD_COMPONENT})$")
MAPPING_NAME_RE = re.compile(r"^([a-zA-Z_]|(\$\{?\d+\}?))([a-zA-Z0-9_]|(\$\{?\d+\}?))*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]+$")
PROMETHEUS_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # colons are for recording rules
EXPORTER_NAME_RE = re.compile(r"airflow_[a-z0-9_]+")
MAPPING_KEYS = {
    "match",
    "match_type",
    "match_metric_type",
    "name",
    "labels",
    "help",
    "action",
    "observer_type",
    "histogram_options",
    "ttl",
}
REGISTRY_TYPES = {"counter": "c", "gauge": "g", "timer": "ms"}
# Values for the variables of Airflow's registry names, to build real-looking StatsD names from them.
SAMPLE_VALUES = {
    "bundle_name": "dags-folder",
    "dag_file": "etl_orders",
    "dag_id": "etl_orders",
    "event_type": "start",
    "executor_class_name": "LocalExecutor",
    "file_name": "etl_orders",
    "hostname": "worker-1",
    "job_id": "42",
    "job_name": "job",
    "operator_name": "PythonOperator",
    "pool_name": "default_pool",
    "queue": "default",
    "return_code": "0",
    "state": "success",
    "status": "ok",
    "task_id": "load",
    "task_type": "PythonOperator",
    "transport_type": "http",
    "worker_name": "edge-1",
}

MAPPINGS = load_mappings()
GLOBS = [m for m in MAPPINGS if m.match_type == "glob"]


def mapped(line: str):
    return map_line(MAPPINGS, parse_line(line))


def types_overlap(a: Mapping, b: Mapping) -> bool:
    return a.metric_type is None or b.metric_type is None or a.metric_type == b.metric_type


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a typo'd duplicate must fail instead."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = {key for key in keys if keys.count(key) > 1}
        if duplicates:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def test_the_file_is_a_mapping_list_where_every_entry_has_a_match_and_a_name() -> None:
    yaml.load(MAPPING_FILE.read_text(), Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    config = load_config()
    assert set(config) == {"defaults", "mappings"}
    assert len(MAPPINGS) > 50
    for mapping in MAPPINGS:
        assert mapping.match and mapping.name, mapping.raw
        assert set(mapping.raw) <= MAPPING_KEYS, f"unknown keys in {mapping.raw}"


def test_every_glob_match_is_one_statsd_exporter_accepts_and_every_regex_compiles() -> None:
    for mapping in MAPPINGS:
        if mapping.match_type == "glob":
            assert GLOB_MATCH_RE.match(mapping.match), mapping.match
            assert mapping.match.startswith(f"{STATSD_PREFIX}."), mapping.match
        else:
            assert mapping.match_type == "regex", mapping.raw
            re.compile(mapping.match)


def test_every_name_is_a_valid_prometheus_name_prefixed_airflow() -> None:
    for mapping in MAPPINGS:
        assert MAPPING_NAME_RE.match(mapping.name), mapping.name
        if not mapping.dropped:
            assert PROMETHEUS_NAME_RE.match(mapping.name) and mapping.name.startswith("airflow_"), mapping.name


def test_labels_have_valid_names_and_refer_only_to_captures_the_match_has() -> None:
    for mapping in MAPPINGS:
        stars = mapping.match.count("*") if mapping.match_type == "glob" else re.compile(mapping.match).groups
        for key, value in mapping.labels.items():
            assert LABEL_NAME_RE.match(key) and not key.startswith("__"), key
            references = [int(n) for n in re.findall(r"\$\{?(\d+)\}?", value)]
            assert references and all(1 <= n <= stars for n in references), f"{mapping.match}: {key}={value}"


def test_mapped_entries_pin_their_metric_type_and_name_it_the_prometheus_way() -> None:
    for mapping in MAPPINGS:
        if mapping.dropped:
            assert mapping.metric_type is None, f"a drop of every type is meant: {mapping.match}"
            continue
        assert mapping.metric_type in ("counter", "gauge", "observer"), mapping.match
        if mapping.metric_type == "counter":
            assert mapping.name.endswith("_total"), mapping.name
        elif mapping.metric_type == "observer":
            assert mapping.name.endswith(("_seconds", "_kiloseconds")), mapping.name
        else:
            assert not mapping.name.endswith("_total"), mapping.name


# Where a name is not Airflow's own name made Prometheus-style, and why.
NAMING_EXCEPTIONS = {
    "airflow.ti.*": ("airflow_ti_count", "the state moves to a label; `airflow_ti` alone would say nothing"),
    "airflow.dag_processing.last_duration": (
        "airflow_dag_processing_last_duration_kiloseconds",
        "Airflow 3.3 sends seconds as milliseconds",
    ),
}


def test_names_are_airflows_own_names_made_prometheus_style() -> None:
    """`airflow_` + the StatsD name without its prefix, `*` components (now labels) left out, dots and dashes as
    underscores, `_total` on counters, `_seconds` on timers (and allowed on gauges measured in seconds)."""
    for mapping in MAPPINGS:
        if mapping.dropped or mapping.catch_all:
            continue
        if mapping.match in NAMING_EXCEPTIONS:
            assert mapping.name == NAMING_EXCEPTIONS[mapping.match][0]
            continue
        parts = [part for part in mapping.tokens[1:] if part != "*"]
        base = re.sub(r"[.-]", "_", ".".join(parts))
        base = base if base.startswith("airflow_") else f"airflow_{base}"
        expected = {"counter": {f"{base}_total"}, "observer": {f"{base}_seconds"}, "gauge": {base, f"{base}_seconds"}}
        assert mapping.name in expected[mapping.metric_type], f"{mapping.match}: {mapping.name}"


def test_histogram_buckets_are_increasing_positive_seconds() -> None:
    bucket_lists = [load_config()["defaults"]["histogram_options"]["buckets"]]
    bucket_lists += [m.raw["histogram_options"]["buckets"] for m in MAPPINGS if "histogram_options" in m.raw]
    for buckets in bucket_lists:
        assert len(buckets) >= 5 and buckets[0] > 0, buckets
        assert all(a < b for a, b in zip(buckets, buckets[1:], strict=False)), buckets


def test_each_prometheus_name_has_one_metric_type() -> None:
    """statsd_exporter refuses an event whose name is already registered with another type."""
    types: dict[str, set[str | None]] = {}
    for mapping in MAPPINGS:
        if not mapping.dropped:
            types.setdefault(mapping.name, set()).add(mapping.metric_type)
    assert {name: t for name, t in types.items() if len(t) > 1} == {}


def test_no_glob_mapping_is_unreachable_behind_an_earlier_one() -> None:
    """An earlier mapping must not match everything a later one does (first match wins), and a match must not
    end where an earlier, longer match passes: statsd_exporter's glob state machine (fsm.AddState) only gives a
    result to a state it creates, so such a later mapping would never match."""
    problems = []
    for later_index, later in enumerate(GLOBS):
        for earlier in GLOBS[:later_index]:
            if not types_overlap(earlier, later):
                continue
            if earlier.tokens[: len(later.tokens)] == later.tokens:
                problems.append(f"{later.match} ends inside earlier {earlier.match}: move it above")
            elif (
                len(earlier.tokens) == len(later.tokens)
                and all(a in ("*", b) for a, b in zip(earlier.tokens, later.tokens, strict=True))
                and earlier.metric_type in (None, later.metric_type)
            ):
                problems.append(f"{later.match} is shadowed by earlier {earlier.match}")
    assert problems == []


def test_the_file_ends_with_one_catch_all_per_metric_type_for_any_airflow_name() -> None:
    catch_alls = [m for m in MAPPINGS if m.catch_all]
    assert catch_alls == MAPPINGS[-3:]
    assert {m.metric_type for m in catch_alls} == {"counter", "gauge", "observer"}
    for mapping in catch_alls:
        assert mapping.match_type == "regex" and not mapping.dropped
        assert mapping.captures("airflow.anything.at.any.depth") is not None
        assert mapping.captures("other_app.metric") is None
    assert all(m.name.startswith(UNMAPPED_METRIC_PREFIX) == m.catch_all for m in MAPPINGS)


# Representative lines as Airflow 3.3 sends them with statsd_influxdb_enabled (seen in the integration test),
# and what statsd_exporter makes of them. None: dropped.
TABLE = [
    ("airflow.scheduler_heartbeat:1|c", "airflow_scheduler_heartbeat_total", {}),
    ("airflow.triggerer_heartbeat:1|c", "airflow_triggerer_heartbeat_total", {}),
    ("airflow.dag_processor_heartbeat:1|c", "airflow_dag_processor_heartbeat_total", {}),
    (
        "airflow.executor.open_slots,status=open,executor_class_name=LocalExecutor:4|g",
        "airflow_executor_open_slots",
        {"status": "open", "executor_class_name": "LocalExecutor"},
    ),
    (
        "airflow.executor.running_tasks,status=running,executor_class_name=LocalExecutor:1|g",
        "airflow_executor_running_tasks",
        {"status": "running", "executor_class_name": "LocalExecutor"},
    ),
    ("airflow.executor.open_slots.LocalExecutor,status=open:4|g", None, {}),
    ("airflow.pool.open_slots,pool_name=default_pool:128|g", "airflow_pool_open_slots", {"pool_name": "default_pool"}),
    ("airflow.pool.deferred_slots,pool_name=etl:0|g", "airflow_pool_deferred_slots", {"pool_name": "etl"}),
    ("airflow.pool.starving_tasks,pool_name=etl:2|g", "airflow_pool_starving_tasks", {"pool_name": "etl"}),
    ("airflow.pool.running_slots.default_pool:0|g", None, {}),
    ("airflow.dag_processing.import_errors:1|g", "airflow_dag_processing_import_errors", {}),
    ("airflow.dag_processing.total_parse_time:1.26|g", "airflow_dag_processing_total_parse_time_seconds", {}),
    (
        "airflow.dag_processing.last_duration,bundle_name=dags-folder,file_name=etl_orders:0.256516|ms",
        "airflow_dag_processing_last_duration_kiloseconds",
        {"bundle_name": "dags-folder", "file_name": "etl_orders"},
    ),
    ("airflow.dag_processing.last_duration.dags-folder.etl_orders:0.256516|ms", None, {}),
    (
        "airflow.dag_processing.last_run.seconds_ago,file_path=etl_orders.py,bundle_name=dags-folder,"
        "file_name=etl_orders:2.01|g",
        "airflow_dag_processing_last_run_seconds_ago",
        {"file_path": "etl_orders.py", "bundle_name": "dags-folder", "file_name": "etl_orders"},
    ),
    ("airflow.dag_processing.last_run.seconds_ago.etl_orders,file_path=etl_orders.py:2.01|g", None, {}),
    (
        "airflow.dagrun.duration.success,dag_id=etl_orders,run_type=scheduled:8123.5|ms",
        "airflow_dagrun_duration_seconds",
        {"dag_id": "etl_orders", "run_type": "scheduled", "state": "success"},
    ),
    (
        "airflow.dagrun.duration.failed,dag_id=etl_orders,run_type=manual:812|ms",
        "airflow_dagrun_duration_seconds",
        {"dag_id": "etl_orders", "run_type": "manual", "state": "failed"},
    ),
    ("airflow.dagrun.duration.failed.etl_orders,run_type=manual:812|ms", None, {}),
    (
        "airflow.dagrun.schedule_delay,dag_id=etl_orders:5942183.8|ms",
        "airflow_dagrun_schedule_delay_seconds",
        {"dag_id": "etl_orders"},
    ),
    ("airflow.dagrun.schedule_delay.etl_orders:5942183.8|ms", None, {}),
    ("airflow.dagrun.etl_orders.first_task_scheduling_delay,dag_id=etl_orders,run_type=scheduled:9|ms", None, {}),
    (
        "airflow.ti.finish,dag_id=etl_orders,task_id=load,state=failed:1|c",
        "airflow_ti_finish_total",
        {"dag_id": "etl_orders", "task_id": "load", "state": "failed"},
    ),
    ("airflow.ti.finish.etl_orders.load.failed:1|c", None, {}),
    ("airflow.ti.start.etl_orders.load:1|c", None, {}),
    (
        "airflow.ti.queued,queue=default,dag_id=etl_orders,task_id=load:1|g",
        "airflow_ti_count",
        {"state": "queued", "queue": "default", "dag_id": "etl_orders", "task_id": "load"},
    ),
    ("airflow.ti.queued.default.etl_orders.load:1|g", None, {}),
    (
        "airflow.ti_failures,dag_id=etl_orders,task_id=load:1|c",
        "airflow_ti_failures_total",
        {"dag_id": "etl_orders", "task_id": "load"},
    ),
    (
        "airflow.task.duration,dag_id=etl_orders,task_id=load:504.29|ms",
        "airflow_task_duration_seconds",
        {"dag_id": "etl_orders", "task_id": "load"},
    ),
    ("airflow.dag.etl_orders.load.duration:504.29|ms", None, {}),
    (
        "airflow.task.scheduled_duration,dag_id=etl_orders,task_id=load,queue=default:23.2|ms",
        "airflow_task_scheduled_duration_seconds",
        {"dag_id": "etl_orders", "task_id": "load", "queue": "default"},
    ),
    ("airflow.dag.etl_orders.load.scheduled_duration,queue=default:23.2|ms", None, {}),
    (
        "airflow.operator_failures,dag_id=etl_orders,task_id=load,operator_name=PythonOperator:1|c",
        "airflow_operator_failures_total",
        {"dag_id": "etl_orders", "task_id": "load", "operator_name": "PythonOperator"},
    ),
    ("airflow.operator_failures_PythonOperator,dag_id=etl_orders,task_id=load:1|c", None, {}),
    ("airflow.task_instance_created__PythonDecoratedOperator,dag_id=etl_orders:1|c", None, {}),
    ("airflow.scheduler.scheduler_loop_duration:48.4|ms", "airflow_scheduler_scheduler_loop_duration_seconds", {}),
    (
        "airflow.scheduler.critical_section_duration:3.1|ms",
        "airflow_scheduler_critical_section_duration_seconds",
        {},
    ),
    (
        "airflow.task_instances_without_heartbeats_killed,dag_id=etl_orders,task_id=load:1|c",
        "airflow_task_instances_without_heartbeats_killed_total",
        {"dag_id": "etl_orders", "task_id": "load"},
    ),
    ("airflow.scheduler.orphaned_tasks.cleared:0|c", "airflow_scheduler_orphaned_tasks_cleared_total", {}),
    ("airflow.triggers.running,hostname=worker-1:0|g", "airflow_triggers_running", {"hostname": "worker-1"}),
    ("airflow.triggers.running.worker-1:0|g", None, {}),
    ("airflow.airflow_obs.stack_health.prometheus:1|g", "airflow_obs_stack_health", {"component": "prometheus"}),
    (
        "airflow.airflow_obs.stack_health.prometheus.latency:12.5|ms",
        "airflow_obs_stack_health_latency_seconds",
        {"component": "prometheus"},
    ),
    (
        "airflow.obs.task.finished,dag_id=etl_orders,task_id=load,owner=data-eng,team=data-platform,state=failed:1|c",
        "airflow_obs_task_finished_total",
        {"dag_id": "etl_orders", "task_id": "load", "owner": "data-eng", "team": "data-platform", "state": "failed"},
    ),
    (
        "airflow.obs.dag_run.duration,dag_id=etl_orders,run_type=scheduled,owner=a,team=b,state=success:61000|ms",
        "airflow_obs_dag_run_duration_seconds",
        {"dag_id": "etl_orders", "run_type": "scheduled", "owner": "a", "team": "b", "state": "success"},
    ),
    # The catch-all keeps the rest visible, one name per type, the StatsD name as a label, tags kept.
    (
        "airflow.serde.load_serializers:3.2|ms",
        "airflow_statsd_unmapped_seconds",
        {"statsd_name": "serde.load_serializers"},
    ),
    (
        "airflow.edge_worker.ti.start,queue=default,dag_id=etl_orders,task_id=load:1|c",
        "airflow_statsd_unmapped_total",
        {"statsd_name": "edge_worker.ti.start", "queue": "default", "dag_id": "etl_orders", "task_id": "load"},
    ),
    # A type Airflow does not send for a name reaches the catch-all of its type, never a clashing mapping.
    ("airflow.scheduler_heartbeat:1|g", "airflow_statsd_unmapped", {"statsd_name": "scheduler_heartbeat"}),
]


@pytest.mark.parametrize(("line", "name", "labels"), TABLE, ids=[row[0].split(":")[0] for row in TABLE])
def test_an_airflow_statsd_line_maps_to_the_expected_prometheus_series(line, name, labels) -> None:
    result = mapped(line)
    if name is None:
        assert result.dropped, f"{line} -> {result}"
    else:
        assert not result.dropped and (result.name, result.labels) == (name, labels), result.mapping


def test_a_name_outside_the_airflow_prefix_is_left_to_statsd_exporter_defaults() -> None:
    assert mapped("other_app.requests:1|c").mapping is None


def registry_line(template: str, metric: dict, tags: bool) -> StatsdLine:
    variables = metric.get("name_variables") or []
    missing = set(variables) - set(SAMPLE_VALUES)
    assert not missing, f"add sample values for {missing} ({metric['name']})"
    name = f"{STATSD_PREFIX}.{template.format(**SAMPLE_VALUES)}"
    return StatsdLine(name, {v: SAMPLE_VALUES[v] for v in variables} if tags else {}, 1, REGISTRY_TYPES[metric["type"]])


@pytest.mark.parametrize("metric", airflow_metric_registry(), ids=lambda m: m["name"])
def test_every_metric_airflow_declares_is_mapped_and_its_legacy_name_dropped(metric) -> None:
    """Airflow's registry (the metric docs are generated from it) is the list of what 3.3 can send."""
    line = registry_line(metric["name"], metric, tags=True)
    result = map_line(MAPPINGS, line)
    assert not result.dropped, f"{line.name} is dropped by {result.mapping}"
    if left_to_catch_all(line.name) is None:
        assert result.mapping is not None and not result.mapping.catch_all, f"{line.name} has no mapping"
    if metric.get("legacy_name", "-") != "-":
        legacy = registry_line(metric["legacy_name"], metric, tags=False)
        assert map_line(MAPPINGS, legacy).dropped, f"legacy {legacy.name} is not dropped"


def exporter_metric_names() -> set[str]:
    """`airflow_*` string constants of the toolkit's exporter: the names it serves."""
    names = set()
    for path in Path(REPO_ROOT / "exporters" / "exporter").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and EXPORTER_NAME_RE.fullmatch(node.value)
            ):
                names.add(node.value)
    return names


def test_no_statsd_metric_takes_a_name_the_toolkits_exporter_serves() -> None:
    """Prometheus scrapes both; one name with two meanings would mix them in every query."""

    def base(name: str) -> str:
        return name.removesuffix("_total")

    ours = {base(m.name) for m in MAPPINGS if not m.dropped}
    assert ours & {base(name) for name in exporter_metric_names()} == set()


def test_the_mapping_file_is_where_the_docs_say() -> None:
    assert MAPPING_FILE == REPO_ROOT / "exporters" / "statsd_mapping.yml"
    assert "exporters/statsd_mapping.yml" in (REPO_ROOT / "docs" / "statsd.md").read_text()
