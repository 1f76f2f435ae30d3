"""The fault-injection harness's parts that need no running stack: reading captures, routing, timings, names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from airflow_obs.observability.notify import alerts as plugin_alerts

from bench.incident_bench import DELAYS
from local_stack.alertmanager_config import write_alertmanager_config
from local_stack.incidents.arrivals import alertmanager_arrivals
from local_stack.incidents.client import IncidentError
from local_stack.incidents.runner import Report, expected_sinks
from local_stack.incidents.scenarios import SCENARIOS, scenario
from local_stack.prometheus_config import write_prometheus_config
from tests.unit.stack_helpers import settings_for


def record(kind: str, at: str, **fields) -> str:
    return json.dumps({"received_at": f"2026-11-26T05:00:{at}+00:00", "kind": kind, **fields})


def test_alertmanagers_messages_are_read_from_each_capture_and_the_plugins_are_left_out(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.captures_dir.mkdir(parents=True)
    settings.capture_file("slack").write_text(
        "\n".join(
            [
                record(
                    "slack",
                    "01.000",
                    body={
                        "attachments": [
                            {
                                "title": "[FIRING:1] AirflowDagLastRunFailed · etl",
                                "actions": [{"text": "Runbook", "url": "https://r/AirflowDagLastRunFailed.md"}],
                            }
                        ]
                    },
                ),
                record("slack", "02.000", body={"text": "Task etl.load failed", "blocks": []}),  # the plugin's
            ]
        )  # fmt: skip
    )
    settings.capture_file("smtp").write_text(
        record("smtp", "03.000", subject="[RESOLVED:1] AirflowSchedulerDown", html='<a href="http://x/?a=1&amp;b=2">Grafana</a>')
    )  # fmt: skip
    alert = {"status": "firing", "labels": {"alertname": "AirflowSchedulerDown"}, "annotations": {"runbook_url": "u"}}
    settings.capture_file("webhook").write_text(
        "\n".join(
            [
                record(
                    "webhook", "04.000", path="/pager", body={"groupKey": "{}", "alerts": [alert], "status": "firing"}
                ),
                record("webhook", "05.000", path="/airflow-obs", body={"schema": "airflow-obs.notification/v1"}),
            ]
        )  # fmt: skip
    )

    arrivals = alertmanager_arrivals(settings)

    assert [(a.sink, a.alertname, a.status, a.dag_id) for a in arrivals] == [
        ("slack", "AirflowDagLastRunFailed", "firing", "etl"),
        ("email", "AirflowSchedulerDown", "resolved", ""),
        ("pager", "AirflowSchedulerDown", "firing", ""),
    ]
    assert arrivals[0].links == {"Runbook": "https://r/AirflowDagLastRunFailed.md"}
    assert arrivals[1].links == {"Grafana": "http://x/?a=1&b=2"}
    assert arrivals[2].links == {"runbook_url": "u"}


@pytest.mark.parametrize(
    ("labels", "sinks"),
    [
        ({"alertname": "AirflowSchedulerDown", "severity": "critical"}, {"slack", "email", "pager"}),
        ({"alertname": "AirflowPoolSaturated", "severity": "warning"}, {"slack"}),
        ({"alertname": "AirflowDagLastRunFailed", "severity": "warning", "team": "ml"}, {"slack"}),
        ({"alertname": "AirflowTaskRetriesElevated", "severity": "info"}, {"email"}),
        ({"alertname": "Watchdog", "severity": "none"}, {"heartbeat"}),
    ],
)
def test_where_an_alert_should_arrive_is_asked_of_amtool_on_the_stacks_own_config(tmp_path, labels, sinks) -> None:
    settings = settings_for(tmp_path)
    write_alertmanager_config(settings)

    assert expected_sinks(settings, labels) == sinks


def test_the_stack_can_shorten_alertmanagers_timings_on_every_route(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_OBS_ALERTMANAGER_GROUP_WAIT", "1s")
    monkeypatch.setenv("AIRFLOW_OBS_ALERTMANAGER_REPEAT_INTERVAL", "1h")
    route = yaml.safe_load(write_alertmanager_config(settings_for(tmp_path)).read_text())["route"]

    assert (route["group_wait"], route["repeat_interval"], route["group_interval"]) == ("1s", "1h", "5m")
    assert all(child.get("group_wait", "1s") == "1s" for child in route["routes"])


def test_a_bad_alertmanager_timing_names_the_variable_and_what_is_expected(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_OBS_ALERTMANAGER_GROUP_WAIT", "soon")

    with pytest.raises(
        ValueError, match="AIRFLOW_OBS_ALERTMANAGER_GROUP_WAIT='soon': expected an Alertmanager duration"
    ):
        write_alertmanager_config(settings_for(tmp_path))


def test_an_unknown_scenario_is_refused_with_the_known_ones() -> None:
    with pytest.raises(IncidentError, match="'nope' is unknown: expected one of task_fails_for_good"):
        scenario("nope")


def test_every_scenario_expects_alerts_the_stacks_rules_or_the_plugin_raise(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    write_prometheus_config(settings)
    defined = {
        rule["alert"]
        for path in (settings.generated_dir / "rules").glob("*.rules.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    } | set(plugin_alerts.SEVERITY)  # every alert the plugin posts (the runner routes them by this severity)

    for item in SCENARIOS.values():
        assert set(item.alerts) <= defined, item.name


def test_a_bad_alert_threshold_stops_make_up_as_a_bad_setting_naming_the_variable(tmp_path, monkeypatch) -> None:
    from local_stack.settings import SettingsError

    monkeypatch.setenv("AIRFLOW_OBS_ALERT_QUEUED_TOO_LONG", "ten minutes")

    with pytest.raises(SettingsError, match="AIRFLOW_OBS_ALERT_QUEUED_TOO_LONG='ten minutes': expected a Prometheus"):
        write_prometheus_config(settings_for(tmp_path))


def test_the_benchmark_subtracts_each_conditions_own_delay_from_what_it_measures() -> None:
    injected = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
    thresholds = {"schedule_lateness": "10s", "baseline_factor": "3", "baseline_min_runtime": "20s"}
    late = Report("missed_schedule", injected, context={"due_at": injected.timestamp() + 95})
    slow = Report("run_far_over_baseline", injected, context={"baseline_p95_seconds": 12.0})
    short = Report("run_far_over_baseline", injected, context={"baseline_p95_seconds": 2.0})

    assert DELAYS["missed_schedule"][0](thresholds, late, None) == 105  # due in 95 s, then 10 s late
    assert DELAYS["run_far_over_baseline"][0](thresholds, slow, None) == 36  # 3 x p95
    assert DELAYS["run_far_over_baseline"][0](thresholds, short, None) == 20  # the minimum runtime
    assert set(DELAYS) <= set(SCENARIOS)
