"""kubernetes/: the prometheus-operator manifests and the Helm values, against the sources they are generated from."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow_obs.alerting.render import render_rule_files
from airflow_obs.observability.settings import SETTINGS, env_var

from local_stack import kubernetes_config as kubernetes
from local_stack.kubernetes_config import EXAMPLE_URLS

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = REPO_ROOT / "kubernetes"
RULE_FILES = [
    REPO_ROOT / "alert_rules" / name for name in ("meta.rules.yml", "airflow.rules.yml", "infrastructure.rules.yml")
]
MAPPING_FILE = REPO_ROOT / "exporters" / "statsd_mapping.yml"

# Top-level keys of the official Apache Airflow Helm chart's values, as read in apache/airflow chart/values.yaml at
# commit d6ba4817823e8ffd2d3f676fc92aa7381e7d30f0 (chart 1.x for Airflow 3, defaultAirflowTag 3.1.3); the chart
# validates values against chart/values.schema.json, whose top-level `properties` declare these keys (the stored
# schema was checked for defaultAirflowTag and airflowVersion). Only keys actually seen are listed.
CHART_TOP_LEVEL_KEYS = {
    "fullnameOverride", "nameOverride", "useStandardNaming", "revisionHistoryLimit", "uid", "gid", "securityContext",
    "securityContexts", "containerLifecycleHooks", "airflowHome", "defaultAirflowRepository", "defaultAirflowTag",
    "defaultAirflowDigest", "airflowVersion", "images", "nodeSelector", "affinity", "tolerations",
    "topologySpreadConstraints", "schedulerName", "labels", "imagePullSecrets", "ingress", "networkPolicies",
    "airflowPodAnnotations", "airflowConfigAnnotations", "airflowLocalSettings", "rbac", "executor",
    "allowPodLaunching", "allowJobLaunching", "env", "volumes", "volumeMounts", "secret", "enableBuiltInSecretEnvVars",
    "priorityClasses", "extraSecrets", "extraConfigMaps", "extraEnv", "extraEnvFrom", "data", "fernetKey",
    "fernetKeySecretName", "webserverSecretKey", "webserverSecretKeySecretName", "kerberos", "dagProcessor", "flower",
    "statsd", "pgbouncer", "redis", "registry", "elasticsearch", "opensearch", "ports", "quotas", "limits", "cleanup",
    "databaseCleanup", "postgresql", "config", "multiNamespaceMode", "podTemplate", "dags", "logs",
}  # fmt: skip
# The chart's statsd Service (chart/templates/statsd/statsd-service.yaml, same repository): labels and port names,
# with `release: {{ .Release.Name }}` for the release the README installs.
CHART_STATSD_SERVICE = {
    "labels": {"tier": "airflow", "component": "statsd", "release": "airflow", "heritage": "Helm"},
    "ports": ["statsd-ingest", "statsd-scrape"],
}
# The chart's Flower Service (chart/templates/flower/flower-service.yaml, same repository), likewise.
CHART_FLOWER_SERVICE = {
    "labels": {"tier": "airflow", "component": "flower", "release": "airflow", "heritage": "Helm"},
    "ports": ["flower-ui"],
}


def _load_all(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S_DIR / name).read_text()) if doc]


def _values() -> dict[str, Any]:
    return yaml.safe_load((K8S_DIR / "helm" / "values.yaml").read_text())


def test_the_committed_files_equal_a_fresh_generation():
    assert kubernetes.drifted() == [], "run: .venv/bin/python -m local_stack.kubernetes_config"


def test_check_mode_exits_non_zero_and_names_the_file_that_drifted(tmp_path, capsys):
    shutil.copytree(K8S_DIR, tmp_path / "k8s", ignore=shutil.ignore_patterns("README.md"))
    assert kubernetes.main(["--check", "--out", str(tmp_path / "k8s")]) == 0
    drifted = tmp_path / "k8s" / "manifests" / "servicemonitor.yaml"
    drifted.write_text(drifted.read_text().replace("interval: 15s", "interval: 60s", 1))
    assert kubernetes.main(["--check", "--out", str(tmp_path / "k8s")]) == 1
    err = capsys.readouterr().err
    assert str(drifted) in err
    assert "prometheusrule.yaml" not in err


def test_the_prometheus_rule_holds_every_group_and_rule_of_the_three_rule_files():
    (rule,) = _load_all("manifests/prometheusrule.yaml")
    # The same rules, their links rendered for the example hosts the Helm values name.
    rendered = render_rule_files(EXAMPLE_URLS)
    expected = [group for path in RULE_FILES for group in yaml.safe_load(rendered[path.name])["groups"]]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # Whole-structure equality: every alert and record, in order, with its expr, for, labels and annotations.
    assert rule["spec"]["groups"] == expected
    alerts = [r for g in expected for r in g["rules"] if "alert" in r]
    records = [r for g in expected for r in g["rules"] if "record" in r]
    assert alerts and records, "the rule files should hold both alerts and recording rules"


def test_promtool_accepts_the_rule_groups_of_the_prometheus_rule(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    (rule,) = _load_all("manifests/prometheusrule.yaml")
    rules_file = tmp_path / "spec.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    result = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_custom_operator_label_is_put_on_the_rule_and_every_service_monitor():
    files = kubernetes.render_files(("prometheus", "platform"))
    documents = [doc for name in ("manifests/prometheusrule.yaml", "manifests/servicemonitor.yaml")
                 for doc in yaml.safe_load_all(files[name]) if doc]  # fmt: skip
    assert len(documents) == 4  # the rule and the exporter, StatsD and Flower monitors
    for document in documents:
        assert document["metadata"]["labels"]["prometheus"] == "platform"
        assert "release" not in document["metadata"]["labels"]


def _services() -> list[dict[str, Any]]:
    exporter = [doc for doc in _load_all("manifests/exporter.yaml") if doc["kind"] == "Service"]
    chart_statsd = {"metadata": {"name": "airflow-statsd", "labels": CHART_STATSD_SERVICE["labels"]},
                    "spec": {"ports": [{"name": name} for name in CHART_STATSD_SERVICE["ports"]]}}  # fmt: skip
    chart_flower = {"metadata": {"name": "airflow-flower", "labels": CHART_FLOWER_SERVICE["labels"]},
                    "spec": {"ports": [{"name": name} for name in CHART_FLOWER_SERVICE["ports"]]}}  # fmt: skip
    return [*exporter, chart_statsd, chart_flower]


def test_each_service_monitor_selects_exactly_one_service_and_names_one_of_its_ports():
    monitors = _load_all("manifests/servicemonitor.yaml")
    assert [m["kind"] for m in monitors] == ["ServiceMonitor"] * 3
    for monitor in monitors:
        wanted = monitor["spec"]["selector"]["matchLabels"]
        matched = [s for s in _services() if wanted.items() <= s["metadata"]["labels"].items()]
        assert len(matched) == 1, f"{monitor['metadata']['name']} selects {[s['metadata']['name'] for s in matched]}"
        ports = {port["name"] for port in matched[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports
            assert endpoint["path"] == "/metrics"
            assert endpoint["interval"] == "15s"  # compose's scrape interval, which the rules' windows assume


def test_the_exporter_service_reaches_the_deployments_pods_on_the_metrics_port():
    deployment, service = _load_all("manifests/exporter.yaml")
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    container_ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    (port,) = service["spec"]["ports"]
    assert container_ports[port["targetPort"]] == port["port"] == 9112
    assert container["args"][-2:] == ["--port", "9112"]


def test_service_monitors_give_the_exporter_the_job_name_the_alert_rules_select():
    monitors = _load_all("manifests/servicemonitor.yaml")
    jobs = {endpoint["relabelings"][0]["replacement"] for m in monitors for endpoint in m["spec"]["endpoints"]}
    rules_text = "".join(path.read_text() for path in RULE_FILES)
    assert 'job="airflow-exporter"' in rules_text
    assert 'job="celery-flower"' in rules_text
    assert {"airflow-exporter", "statsd", "celery-flower"} == jobs


def _effective(mapping: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """What statsd_exporter (pkg/mapper InitFromYAMLString) makes of a mapping, for the fields defaults can fill."""
    result = {key: value for key, value in mapping.items() if key not in ("observer_type", "histogram_options")}
    result["match_type"] = mapping.get("match_type") or defaults.get("match_type") or "glob"
    observes = mapping.get("action", "map") != "drop" and mapping.get("match_metric_type", "observer") == "observer"
    if observes:
        result["observer_type"] = mapping.get("observer_type") or defaults.get("observer_type", "")
        if result["observer_type"] == "histogram":
            buckets = (mapping.get("histogram_options") or {}).get("buckets")
            result["buckets"] = buckets or defaults.get("histogram_options", {}).get("buckets")
    if not mapping.get("ttl") and defaults.get("ttl"):
        result["ttl"] = defaults["ttl"]
    return result


def test_the_values_files_statsd_mappings_mean_what_the_mapping_file_means():
    source = yaml.safe_load(MAPPING_FILE.read_text())
    statsd = _values()["statsd"]
    assert statsd["enabled"] is True
    overrides = statsd["overrideMappings"]
    assert len(overrides) == len(source["mappings"])
    for original, override in zip(source["mappings"], overrides, strict=True):
        # Each mapping is the file's, in the same order, plus only fields the file's defaults would have filled.
        assert original.items() <= override.items(), original["match"]
        for key in override.keys() - original.keys():
            assert override[key] == source["defaults"][key], (original["match"], key)
        # The chart writes no `defaults:`, so the mapping alone must mean what the file's mapping plus defaults does.
        assert _effective(override, {}) == _effective(original, source["defaults"]), original["match"]


def test_the_values_file_runs_the_statsd_exporter_version_compose_runs():
    compose = yaml.safe_load((REPO_ROOT / "compose" / "docker-compose.yml").read_text())
    statsd_image = _values()["images"]["statsd"]
    assert f"{statsd_image['repository']}:{statsd_image['tag']}" == compose["services"]["statsd-exporter"]["image"]


def test_every_top_level_key_of_the_values_file_is_a_key_of_the_official_chart():
    assert set(_values()) <= CHART_TOP_LEVEL_KEYS, set(_values()) - CHART_TOP_LEVEL_KEYS


def test_the_plugin_settings_the_values_file_sets_are_settings_the_plugin_reads():
    names = {entry["name"] for entry in _values()["env"]}
    assert names and names <= {env_var(name) for name in SETTINGS}


def _walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")
    else:
        yield path, node


def test_no_file_under_kubernetes_holds_a_password_only_references_to_secrets():
    credential_in_url = re.compile(r"://[^/\s:@]*:[^@\s/]+@")
    for path in sorted(K8S_DIR.rglob("*.yaml")):
        text = path.read_text()
        assert not credential_in_url.search(text), path
        for document in yaml.safe_load_all(text):
            for where, value in _walk(document):
                key = where.rsplit(".", 1)[-1].lower()
                # Keys of the chart (and of Kubernetes) that hold a credential itself rather than a Secret's name.
                if key.endswith(("password", "pass", "token")) or key in ("fernetkey", "webserversecretkey"):
                    assert value in (None, ""), f"{path}: {where} holds a literal"
    values = _values()
    assert {entry["secretName"] for entry in values["secret"]} == {"airflow-obs-notifications"}
    assert values["data"] == {"metadataSecretName": "airflow-metadata-db"}


def test_an_operator_label_without_a_value_is_rejected_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        kubernetes.main(["--operator-label", "release", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'release'" in err and "KEY=VALUE" in err


def test_a_custom_label_is_refused_for_the_committed_folder(capsys):
    with pytest.raises(SystemExit):
        kubernetes.main(["--operator-label", "release=mine"])
    assert "need --out" in capsys.readouterr().err


def test_a_custom_label_writes_a_deployments_own_copy_elsewhere(tmp_path):
    assert kubernetes.main(["--operator-label", "release=mine", "--out", str(tmp_path)]) == 0
    (rule,) = [d for d in yaml.safe_load_all((tmp_path / "manifests" / "prometheusrule.yaml").read_text()) if d]
    assert rule["metadata"]["labels"]["release"] == "mine"


def test_a_mapping_default_the_chart_cannot_carry_is_refused_naming_it(tmp_path):
    mapping = tmp_path / "mapping.yml"
    mapping.write_text(yaml.safe_dump({"defaults": {"glob_disable_ordering": True}, "mappings": []}))
    with pytest.raises(ValueError, match=r"glob_disable_ordering.*expected false"):
        kubernetes.chart_statsd_mappings(mapping)
    mapping.write_text(yaml.safe_dump({"defaults": {"summary_options": {}}, "mappings": []}))
    with pytest.raises(ValueError, match=r"summary_options"):
        kubernetes.chart_statsd_mappings(mapping)


def test_the_values_file_enables_flower_and_has_it_forget_silent_workers_as_compose_does():
    compose = yaml.safe_load((REPO_ROOT / "compose" / "docker-compose.yml").read_text())
    flower = _values()["flower"]

    assert flower["enabled"] is True
    env = {entry["name"]: entry["value"] for entry in flower["env"]}
    assert (
        env["FLOWER_PURGE_OFFLINE_WORKERS"]
        == compose["services"]["flower"]["environment"]["FLOWER_PURGE_OFFLINE_WORKERS"]
    )
