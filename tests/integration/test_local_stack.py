"""`make up` on the embedded default (SQLite): every component healthy, alerts delivered, `make down` clean."""

from __future__ import annotations

import json
import smtplib
import sqlite3
import time
import uuid
from email.message import EmailMessage
from urllib.parse import quote, urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from local_stack.captures.recorder import read_records
from local_stack.health import AIRFLOW_COMPONENTS, expected_rule_groups
from local_stack.programs import stack_programs
from local_stack.secrets import ensure_airflow_passwords
from tests.conftest import REPO_ROOT
from tests.integration.conftest import LocalStack, alive, http_json, processes_of, wait_for

pytestmark = pytest.mark.integration


def airflow_token(stack: LocalStack, user: str) -> str:
    password = ensure_airflow_passwords(stack.settings)[user]
    status, body = http_json(stack.url("airflow") + "/auth/token", {"username": user, "password": password})
    assert status == 201, body
    return body["access_token"]


def test_airflow_reports_every_component_healthy(started_stack: LocalStack) -> None:
    status, report = http_json(started_stack.url("airflow") + "/api/v2/monitor/health")
    assert status == 200
    assert {name: report[name]["status"] for name in AIRFLOW_COMPONENTS} == dict.fromkeys(AIRFLOW_COMPONENTS, "healthy")


def test_the_exporter_serves_metrics_and_sees_the_metadata_db(started_stack: LocalStack) -> None:
    status, metrics = http_json(started_stack.url("exporter") + "/metrics")
    assert status == 200
    assert "airflow_up 1.0" in metrics
    collectors = ("metadata_db_health", "components", "dags", "dag_runs", "pools", "task_instances", "deadlines")
    for collector in (*collectors, "finished_work"):
        assert f'airflow_exporter_collector_success{{collector="{collector}"}} 1.0' in metrics
    for component in ("scheduler", "triggerer", "dag_processor"):
        assert f'airflow_component_last_heartbeat_timestamp_seconds{{component="{component}"}}' in metrics
    assert http_json(started_stack.url("exporter") + "/healthz")[0] == 200


def test_prometheus_is_ready_scrapes_every_target_and_loads_every_rule_group(started_stack: LocalStack) -> None:
    base = started_stack.url("prometheus")
    assert http_json(base + "/-/ready")[0] == 200

    def all_targets_up():
        targets = http_json(base + "/api/v1/targets")[1]["data"]["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_for(all_targets_up, 30, "every scrape target to be up")
    assert {t["labels"]["job"] for t in targets} == {"airflow-exporter", "node", "prometheus", "alertmanager"}
    groups = http_json(base + "/api/v1/rules")[1]["data"]["groups"]
    assert {g["name"] for g in groups} == expected_rule_groups()


def test_alertmanager_is_ready(started_stack: LocalStack) -> None:
    assert http_json(started_stack.url("alertmanager") + "/-/ready")[0] == 200


def test_each_capture_records_a_test_message(started_stack: LocalStack) -> None:
    marker = uuid.uuid4().hex
    settings = started_stack.settings
    status, reply = http_json(started_stack.url("slack_capture") + "/services/T0/B0/X", {"text": marker})
    assert (status, reply) == (200, "ok")
    assert http_json(started_stack.url("webhook_capture") + "/pager", {"marker": marker})[0] == 200
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "test@localhost", "oncall@localhost", marker
    message.set_content("capture check")
    with smtplib.SMTP("127.0.0.1", settings.ports["smtp_capture"], local_hostname="localhost", timeout=10) as smtp:
        smtp.send_message(message)

    assert any(r["body"] == {"text": marker} for r in read_records(settings.capture_file("slack")))
    assert any(r["body"] == {"marker": marker} for r in read_records(settings.capture_file("webhook")))
    assert any(r["subject"] == marker for r in read_records(settings.capture_file("smtp")))


def test_an_alert_sent_to_alertmanager_reaches_slack_email_and_the_pager(started_stack: LocalStack) -> None:
    settings = started_stack.settings
    dag_id = f"routing_smoke_{uuid.uuid4().hex[:8]}"
    alert = {
        "labels": {"alertname": "RoutingSmokeTest", "severity": "critical", "dag_id": dag_id},
        "annotations": {
            "summary": f"smoke test for {dag_id}",
            "description": "routing check",
            "runbook_url": "https://example.invalid/runbooks/RoutingSmokeTest.md",
        },
    }
    status, _ = http_json(started_stack.url("alertmanager") + "/api/v2/alerts", [alert])
    assert status == 200

    # group_wait is 30 s for critical alerts: the captures must have it well within a minute after that.
    def delivered():
        slack = [r for r in read_records(settings.capture_file("slack")) if dag_id in str(r["body"])]
        mail = [r for r in read_records(settings.capture_file("smtp")) if dag_id in (r["text"] or "")]
        pager = [
            r
            for r in read_records(settings.capture_file("webhook"))
            if r["path"] == "/pager" and dag_id in str(r["body"])
        ]
        return (slack, mail, pager) if slack and mail and pager else None

    slack, mail, pager = wait_for(delivered, 90, "the critical alert in the Slack, SMTP and pager captures")
    assert slack[0]["body"]["channel"] == "#airflow-oncall"
    assert "RoutingSmokeTest" in slack[0]["body"]["attachments"][0]["title"]
    assert mail[0]["rcpt_tos"] == [settings.endpoints.smtp_to]
    assert "RoutingSmokeTest" in mail[0]["subject"]
    assert pager[0]["body"]["commonLabels"] == alert["labels"]


def test_the_watchdog_flows_from_prometheus_to_the_heartbeat_receiver(started_stack: LocalStack) -> None:
    def heartbeat():
        return [
            r
            for r in read_records(started_stack.settings.capture_file("webhook"))
            if r["path"] == "/heartbeat" and r["body"]["commonLabels"].get("alertname") == "Watchdog"
        ]

    wait_for(heartbeat, 100, "Watchdog at the heartbeat webhook")


def test_airflow_ui_auth_is_on_with_an_admin_and_a_read_only_oncall_account(started_stack: LocalStack) -> None:
    api = started_stack.url("airflow") + "/api/v2"
    assert http_json(api + "/pools")[0] == 401
    admin = {"Authorization": f"Bearer {airflow_token(started_stack, 'admin')}"}
    oncall = {"Authorization": f"Bearer {airflow_token(started_stack, 'oncall')}"}
    pool = {"name": f"it_{uuid.uuid4().hex[:6]}", "slots": 2}

    assert http_json(api + "/pools", headers=oncall)[0] == 200
    assert http_json(api + "/pools", pool, headers=oncall)[0] == 403
    assert http_json(api + "/pools", pool, headers=admin)[0] == 201
    started_stack.created_pool = pool["name"]


def test_the_observability_plugin_is_loaded_once_without_import_errors(started_stack: LocalStack) -> None:
    api = started_stack.url("airflow") + "/api/v2"
    admin = {"Authorization": f"Bearer {airflow_token(started_stack, 'admin')}"}
    status, plugins = http_json(api + "/plugins", headers=admin)
    assert status == 200
    assert [p["name"] for p in plugins["plugins"]].count("observability") == 1
    status, errors = http_json(api + "/plugins/importErrors", headers=admin)
    assert status == 200
    assert errors["import_errors"] == []


def test_status_reports_every_component_ok(started_stack: LocalStack) -> None:
    result = started_stack.run("status")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for program in stack_programs(started_stack.settings):
        assert any(line.startswith("ok") and f" {program.name} " in line for line in lines), program.name


# Under the real executor tasks run with Airflow's DB access blocked: backup and audit prove the
# maintenance DAGs work there too (through the airflow_metadata_db connection), not only under dag.test().
SUITE_DAGS_RUN_BY_THE_SCHEDULER = (
    "etl_orders",
    "monitoring_stack_health",
    "maintenance_db_backup",
    "maintenance_audit",
)


def exposition_samples(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, frozenset of its labels): value} of a /metrics text."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample_of(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_the_scheduler_schedules_the_suite_and_runs_its_dags(started_stack: LocalStack) -> None:
    api = started_stack.url("airflow") + "/api/v2"
    admin = {"Authorization": f"Bearer {airflow_token(started_stack, 'admin')}"}
    expected = {path.stem for path in (REPO_ROOT / "dags").glob("*.py")}

    def parsed_dags():
        status, body = http_json(api + "/dags?limit=100", headers=admin)
        dags = {d["dag_id"]: d for d in body["dags"]} if status == 200 else {}
        return dags if expected <= set(dags) else None

    dags = wait_for(parsed_dags, 180, f"the dag-processor to parse {sorted(expected)}")
    for dag_id in expected:
        assert dags[dag_id]["is_paused"] is False, dag_id
        assert dags[dag_id]["next_dagrun_run_after"], f"{dag_id} has no next scheduled run"

    def trigger(dag_id: str):
        # On SQLite a write can meet "database is locked" while the scheduler writes (a 500): retry, bounded.
        status, run = http_json(f"{api}/dags/{dag_id}/dagRuns", {"logical_date": "2026-11-20T00:00:00Z"}, headers=admin)
        assert status in (200, 500), run
        return run["dag_run_id"] if status == 200 else None

    runs = {
        dag_id: wait_for(lambda d=dag_id: trigger(d), 30, f"a run of {dag_id} to be created", interval=2)
        for dag_id in SUITE_DAGS_RUN_BY_THE_SCHEDULER
    }

    def finished():
        states = {
            dag_id: http_json(f"{api}/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}", headers=admin)[1]["state"]
            for dag_id, run_id in runs.items()
        }
        return states if all(state in ("success", "failed") for state in states.values()) else None

    states = wait_for(finished, 300, "the scheduler to run the triggered DAGs", interval=2)
    assert states == dict.fromkeys(SUITE_DAGS_RUN_BY_THE_SCHEDULER, "success")
    with sqlite3.connect(started_stack.settings.data_dir / "warehouse.db") as warehouse:
        assert warehouse.execute("SELECT count(*) FROM orders").fetchone()[0] > 0
        assert warehouse.execute("SELECT count(*) FROM stack_health WHERE healthy = 0").fetchone()[0] == 0

    # The exporter sees what the scheduler did: the runs' outcomes, the finished work counted (its snapshot
    # may be a few seconds old, hence the wait; a DAG may also have had a scheduled run) and every unpaused
    # DAG's next expected run.
    def exposition_with_completed_runs():
        metrics = http_json(started_stack.url("exporter") + "/metrics")[1]
        samples = exposition_samples(metrics)
        completed = [sample_of(samples, "airflow_dag_runs_completed_total", dag_id=d, state="success") for d in runs]
        return metrics if all(count >= 1 for count in completed) else None

    metrics = wait_for(exposition_with_completed_runs, 30, "the exporter to count the finished runs", interval=2)
    samples = exposition_samples(metrics)
    extract = {"dag_id": "etl_orders", "task_id": "extract_orders", "state": "success"}
    assert sample_of(samples, "airflow_task_instances_finished_total", **extract) >= 1
    assert sample_of(samples, "airflow_dag_run_duration_seconds_count", dag_id="etl_orders", state="success") >= 1
    # The plugin traced the run from the real processes: the run span (scheduler) and one span per task
    # try (task runner) in one trace whose id anyone can compute from (dag_id, run_id).
    from airflow_obs.observability.trace_store import read_spans, run_traces
    from airflow_obs.observability.tracing import trace_id_for_run

    traces_file = started_stack.settings.airflow_home / "observability" / "traces.jsonl"
    etl_run = runs["etl_orders"]
    traces = wait_for(
        lambda: run_traces(read_spans(traces_file), "etl_orders", etl_run) if traces_file.exists() else None,
        30,
        "the plugin's spans of the etl_orders run",
    )
    assert list(traces) == [trace_id_for_run("etl_orders", etl_run)]
    span_names = " ".join(span.name for span in traces[trace_id_for_run("etl_orders", etl_run)])
    for task_id in ("extract_orders", "transform", "load", "quality_checks"):
        assert task_id in span_names, span_names
    for dag_id in SUITE_DAGS_RUN_BY_THE_SCHEDULER:
        assert f'airflow_dag_last_run_failed{{dag_id="{dag_id}"}} 0.0' in metrics, dag_id
        assert f'airflow_dag_last_success_timestamp_seconds{{dag_id="{dag_id}"}}' in metrics, dag_id
    for dag_id in expected:
        assert f'airflow_dag_next_run_expected_timestamp_seconds{{dag_id="{dag_id}"}}' in metrics, dag_id


def test_a_task_failing_for_good_under_the_scheduler_pages_once_through_alertmanager_with_that_trys_log(
    started_stack: LocalStack,
) -> None:
    api = started_stack.url("airflow") + "/api/v2"
    admin = {"Authorization": f"Bearer {airflow_token(started_stack, 'admin')}"}
    dag_id, task_id = "maintenance_audit", "check_config_drift"  # retries=1: the second try is the last
    conf = {"demo_fault_task": task_id, "demo_fault_mode": "fail"}

    def trigger():
        body = {"logical_date": "2026-11-21T00:00:00Z", "conf": conf}
        status, run = http_json(f"{api}/dags/{dag_id}/dagRuns", body, headers=admin)
        assert status in (200, 500), run  # 500: SQLite "database is locked" while the scheduler writes
        return run["dag_run_id"] if status == 200 else None

    run_id = wait_for(trigger, 30, f"a failing run of {dag_id}", interval=2)

    def pages():
        """The pager's notifications (Alertmanager's JSON) holding this run's AirflowTaskFailed alert."""
        found = []
        for record in read_records(started_stack.settings.capture_file("webhook")):
            body = record.get("body")
            if not isinstance(body, dict) or record.get("path") != "/pager":
                continue
            found += [
                alert
                for alert in body.get("alerts", [])
                if alert["labels"].get("alertname") == "AirflowTaskFailed"
                and alert["annotations"].get("run_id") == run_id
                and alert["status"] == "firing"
            ]
        return found or None

    page = wait_for(pages, 240, "the final-failure page of the failing run", interval=3)
    time.sleep(5)  # a duplicate (or a page for the first try) would have arrived by now
    assert len(pages()) == 1
    page = page[0]
    assert (page["labels"]["task_id"], page["annotations"]["try_number"]) == (task_id, "2")
    assert page["labels"]["owner"] == "platform-oncall" and page["labels"]["team"] == "data-platform"
    assert "DemoFault" in page["annotations"]["error"]

    # The log link addresses that very try: the same path under the REST API serves its log.
    log_path = urlsplit(page["annotations"]["log_url"])
    assert log_path.query == "try_number=2"
    run_segment = quote(run_id, safe="")
    assert log_path.path.endswith(f"/dags/{dag_id}/runs/{run_segment}/tasks/{task_id}")
    status, log = http_json(f"{api}/dags/{dag_id}/dagRuns/{run_segment}/taskInstances/{task_id}/logs/2", headers=admin)
    assert status == 200 and "DemoFault" in json.dumps(log)
    # Slack got Alertmanager's notification of it (not a second, direct one), with the try's log link.
    slack = [
        r["body"] for r in read_records(started_stack.settings.capture_file("slack")) if run_segment in json.dumps(r)
    ]
    assert len(slack) == 1 and "attachments" in slack[0]
    assert f"<{page['annotations']['log_url']}|Task log>" in slack[0]["attachments"][0]["text"]


def test_make_up_twice_is_safe_and_keeps_processes_and_data(started_stack: LocalStack) -> None:
    before = started_stack.program_pids()
    result = started_stack.run("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already running" in result.stdout
    assert started_stack.program_pids() == before
    pool = getattr(started_stack, "created_pool", None)
    if pool:
        admin = {"Authorization": f"Bearer {airflow_token(started_stack, 'admin')}"}
        assert http_json(f"{started_stack.url('airflow')}/api/v2/pools/{pool}", headers=admin)[0] == 200


def test_make_down_stops_exactly_what_it_started(started_stack: LocalStack) -> None:
    pids = started_stack.program_pids()
    supervisord = started_stack.supervisord_pid()
    assert supervisord and len(pids) == len(stack_programs(started_stack.settings))
    # Airflow's components fork workers: they count as started too.
    assert len(processes_of(started_stack.settings.home)) > len(pids)

    result = started_stack.run("down", timeout=150)

    assert result.returncode == 0, result.stderr
    time.sleep(0.5)
    assert [name for name, pid in pids.items() if alive(pid)] == []
    assert not alive(supervisord)
    assert processes_of(started_stack.settings.home) == []
    assert started_stack.run("status").returncode == 1
