"""The dashboards as code: committed JSON matches the code, uids match links.py, queries parse, metrics exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from airflow_obs.alerting.catalogue import recording_rules
from airflow_obs.grafana_dashboards.compose_only import CELERY_STACK_ONLY, COMPOSE_ONLY, EVENT_ONLY
from airflow_obs.grafana_dashboards.queries import panel_queries, panels
from airflow_obs.grafana_dashboards.write import DASHBOARD_DIR, differing, render
from airflow_obs.observability import links

from tests.conftest import REPO_ROOT

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
EXPORTER_SRC = REPO_ROOT / "exporters" / "exporter"
STATSD_MAPPING = REPO_ROOT / "exporters" / "statsd_mapping.yml"
# Sample values for Grafana's variables, so a query is plain PromQL that promtool can parse.
SAMPLES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "1m", "$dag_id": "etl_orders", "$task_id": ".*"}
# The Debian exporters' metrics the dashboards use (node_exporter 1.5, postgres_exporter 0.11, redis_exporter 1.45),
# plus Prometheus's own ALERTS series. Names from their default collectors, as the alert rules use them.
THIRD_PARTY = {
    "ALERTS",
    "node_cpu_seconds_total",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemTotal_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
    "pg_up",
    "pg_stat_activity_count",
    "pg_settings_max_connections",
    "pg_stat_database_xact_commit",
    "pg_stat_database_xact_rollback",
    "redis_up",
    "redis_connected_clients",
    "redis_memory_used_bytes",
    "redis_key_size",  # with --check-single-keys (REDIS_EXPORTER_CHECK_SINGLE_KEYS): a Celery queue's length
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "by", "rate", "increase", "histogram_quantile", "time", "on", "ignoring",
    "group_left", "or", "and", "unless", "le", "offset", "count", "topk", "clamp_min", "absent", "vector",
}  # fmt: skip


def dashboards() -> dict[str, dict]:
    return {json.loads(text)["uid"]: json.loads(text) for text in render().values()}


def prometheus_queries():
    return [q for d in dashboards().values() for q in panel_queries(d) if q.datasource == "prometheus"]


def substitute(expr: str) -> str:
    for variable, value in SAMPLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a variable without a sample value in {expr!r}"
    return expr


def exporter_metrics() -> set[str]:
    names = set()
    for path in EXPORTER_SRC.rglob("*.py"):
        names |= set(re.findall(r'"(airflow_[a-z0-9_]+)"', path.read_text()))
    # Baselines are named from a prefix and the quantile names (baselines.py DurationBaselines.families).
    from airflow_obs.exporter.baselines import QUANTILES

    for prefix in ("airflow_dag_run", "airflow_task"):
        names |= {f"{prefix}_duration_baseline_{q}_seconds" for q in QUANTILES} | {
            f"{prefix}_duration_baseline_samples"
        }
    return names | {f"{name}_total" for name in names}  # counter families expose `_total`


def flower_metrics() -> set[str]:
    """Flower's /metrics names (job celery-flower on CeleryExecutor stacks), read from the installed Flower's source."""
    import flower.events

    source = Path(flower.events.__file__).read_text()
    return set(re.findall(r"'(flower_[a-z0-9_]+)'", source)) | set(re.findall(r'"(flower_[a-z0-9_]+)"', source))


def statsd_metrics() -> set[str]:
    mappings = yaml.safe_load(STATSD_MAPPING.read_text())["mappings"]
    return {m["name"] for m in mappings if m.get("action") != "drop"}


def known_metrics() -> set[str]:
    known = exporter_metrics() | statsd_metrics() | flower_metrics() | THIRD_PARTY
    known |= {rule.name for rule in recording_rules()}
    return known | {name + suffix for name in known for suffix in HISTOGRAM_SUFFIXES}


def metric_names(expr: str) -> set[str]:
    without_variables = re.sub(r"\$__\w+", "", expr)  # Grafana's durations, as in `offset $__range`
    without_strings = re.sub(r'"[^"]*"', '""', without_variables)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    without_groupings = re.sub(r"\b(by|on|ignoring|group_left|group_right|without)\s*\([^)]*\)", "", without_ranges)
    tokens = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", without_groupings)
    return {t for t in tokens if t not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", t)}


def test_regenerating_the_dashboards_gives_exactly_the_committed_json() -> None:
    assert differing() == [], f"run `.venv/bin/python -m airflow_obs.grafana_dashboards`; these differ: {differing()}"


def test_the_check_mode_names_a_file_that_differs(tmp_path: Path) -> None:
    for name, text in render().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "airflow-infra.json").write_text("{}\n")
    assert differing(tmp_path) == ["airflow-infra.json"]


def test_every_dashboard_has_the_uid_links_py_expects() -> None:
    expected = {
        links.OVERVIEW_DASHBOARD_UID,
        links.DAG_DASHBOARD_UID,
        links.INFRA_DASHBOARD_UID,
        links.FRESHNESS_DASHBOARD_UID,
    }
    assert set(dashboards()) == expected
    assert {path.stem for path in DASHBOARD_DIR.glob("*.json")} == expected


def test_the_dag_dashboard_takes_the_dag_id_variable_links_py_sets() -> None:
    variables = {v["name"]: v for v in dashboards()[links.DAG_DASHBOARD_UID]["templating"]["list"]}
    assert links.DAG_DASHBOARD_VARIABLE.removeprefix("var-") in variables
    assert variables["task_id"]["includeAll"] is True


def test_every_prometheus_query_uses_the_datasource_variable() -> None:
    for d in dashboards().values():
        for panel in panels(d):
            for target in panel["targets"]:
                if target["datasource"]["type"] == "prometheus":
                    assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_prometheus_query_parses_with_promtool(tmp_path: Path) -> None:
    queries = prometheus_queries()
    rules = [{"record": f"dashboard:query_{i}", "expr": substitute(q.expr)} for i, q in enumerate(queries)]
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_query(tmp_path: Path) -> None:
    path = tmp_path / "broken.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "r", "expr": "sum by (x"}]}]}))
    assert subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True).returncode != 0


def test_every_metric_a_dashboard_queries_is_one_we_know_exists() -> None:
    known = known_metrics()
    unknown = {(q.dashboard, q.panel, name) for q in prometheus_queries() for name in metric_names(q.expr) - known}
    assert unknown == set()


def test_the_metric_name_check_catches_a_misspelled_name() -> None:
    assert metric_names('sum by (dag_id) (rate(airflow_dag_runs_complete_total{state="x"}[5m]))') - known_metrics()


def test_every_compose_only_and_event_only_entry_names_a_real_panel_and_gives_a_reason() -> None:
    titles = {(uid, panel["title"]) for uid, d in dashboards().items() for panel in panels(d)}
    for entry, reason in {**COMPOSE_ONLY, **CELERY_STACK_ONLY, **EVENT_ONLY}.items():
        assert entry in titles, f"{entry} names no panel"
        assert reason.strip()


def test_every_panel_on_another_data_source_than_prometheus_is_listed_as_compose_only() -> None:
    others = {(q.dashboard, q.panel) for d in dashboards().values() for q in panel_queries(d)}
    others -= {(q.dashboard, q.panel) for q in prometheus_queries()}
    assert others and others <= set(COMPOSE_ONLY)


@pytest.mark.parametrize("uid", sorted(dashboards()))
def test_panel_titles_are_unique_within_a_dashboard(uid: str) -> None:
    titles = [panel["title"] for panel in panels(dashboards()[uid])]
    assert len(titles) == len(set(titles))


def test_every_alerts_dashboard_link_opens_a_generated_dashboard_with_variables_it_has() -> None:
    dashboards = {d["uid"]: d for d in map(json.loads, render().values())}
    checked = 0
    # The rule files rendered with a Grafana: compose's (the committed defaults link to the console instead).
    for rule_file in sorted((REPO_ROOT / "compose" / "prometheus" / "rules").glob("*.rules.yml")):
        for group in yaml.safe_load(rule_file.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                url = rule["annotations"]["dashboard_url"]
                uid = url.split("/d/", 1)[1].split("?", 1)[0]
                assert uid in dashboards, f"{rule['alert']} links to dashboard {uid!r}, which is not generated"
                names = {v["name"] for v in dashboards[uid]["templating"]["list"]}
                wanted = set(re.findall(r"var-([a-z_]+)=", url))
                assert wanted <= names, f"{rule['alert']} sets {wanted - names}, which {uid} has no variable for"
                checked += 1
    assert checked > 20
