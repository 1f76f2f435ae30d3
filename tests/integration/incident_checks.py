"""What every fault-injection test checks of what arrived, and the Alertmanager timings those tests run with."""

from __future__ import annotations

from collections import Counter

from local_stack.incidents.arrivals import Arrival
from local_stack.incidents.client import StackClient
from local_stack.incidents.runner import Report
from tests.conftest import REPO_ROOT
from tests.integration import link_checks
from tests.integration.conftest import LocalStack

# Alertmanager: group at once, flush changes (resolved) within seconds, never repeat during the test.
FAST_ALERTMANAGER = {
    "AIRFLOW_OBS_ALERTMANAGER_GROUP_WAIT": "1s",
    "AIRFLOW_OBS_ALERTMANAGER_GROUP_INTERVAL": "5s",
    "AIRFLOW_OBS_ALERTMANAGER_REPEAT_INTERVAL": "1h",
}


def assert_once_per_sink(report: Report, arrivals: list[Arrival]) -> None:
    """Exactly one message per alert and sink its route names: not zero, not one per evaluation or per DAG.

    A webhook notification lists every alert of its group; it counts once, however many alerts it carries.
    """
    notifications = {(arrival.alertname, arrival.sink, id(arrival.record)) for arrival in arrivals}
    counts = Counter((alertname, sink) for alertname, sink, _ in notifications)
    expected = {(name, sink): 1 for name, sinks in report.expected_sinks.items() for sink in sinks}
    assert {key: counts[key] for key in expected} == expected, counts


def assert_group_resolved_once_per_sink(report: Report) -> None:
    """For a group of alerts that resolve one by one (each DAG's healthy run ends in its own time): per sink, one
    notification says the whole group resolved, and the pager heard of each alert's resolution once.

    Before that, Alertmanager updates the group as each alert resolves (send_resolved): Slack's and email's titles
    still say FIRING then, and the pager's JSON marks the alerts resolved so far.
    """
    final = {(a.alertname, a.sink, id(a.record)) for a in report.resolved if _group_status(a) == "resolved"}
    counts = Counter((alertname, sink) for alertname, sink, _ in final)
    expected = {(name, sink): 1 for name, sinks in report.expected_sinks.items() for sink in sinks}
    assert {key: counts[key] for key in expected} == expected, counts
    resolutions = Counter(
        tuple(sorted(alert["labels"].items()))
        for record in {id(a.record): a.record for a in report.resolved if a.sink == "pager"}.values()
        for alert in record["body"]["alerts"]
        if alert["status"] == "resolved"
    )
    assert resolutions and set(resolutions.values()) == {1}, resolutions


def _group_status(arrival: Arrival) -> str:
    """The notification's own status: a webhook's group status, else the status its title shows."""
    body = arrival.record.get("body")
    return body["status"] if isinstance(body, dict) and "groupKey" in body else arrival.status


def assert_links_work(stack: LocalStack, arrival: Arrival) -> None:
    """The pager's copy carries the alert's annotations: each link opens on this stack.

    Its runbook is the api-server's rendered page of runbooks/<alert>.md, its dashboard the console's page, its
    Airflow link this stack's UI, and the alert's source (generatorURL) this stack's Prometheus or, for the plugin's
    alerts, the failed try's log.
    """
    links = arrival.links
    client = StackClient(stack.settings)
    runbook = links["runbook_url"]
    assert runbook == f"{stack.url('airflow')}/observability/runbooks/{arrival.alertname}.md", runbook
    assert (REPO_ROOT / "runbooks" / f"{arrival.alertname}.md").is_file()
    status, page = client.signed_in_get(runbook)
    assert status == 200 and f"<h1>{arrival.alertname}</h1>" in page, (runbook, status)
    # No Grafana on the embedded stack: the dashboard link is the console's page (the DAG's, or the top-level one).
    dashboard = links["dashboard_url"]
    assert dashboard.startswith(f"{stack.url('airflow')}/observability/"), dashboard
    status, page = client.signed_in_get(dashboard)
    assert status == 200 and ('id="alerts"' in page or 'id="firing"' in page), (dashboard, status)
    sources = {alert["generatorURL"] for alert in arrival.record["body"]["alerts"]}
    for source in sources:
        assert source.startswith((stack.url("prometheus") + "/", stack.url("airflow") + "/")), source
    if "airflow_url" in links:
        assert links["airflow_url"].startswith(stack.url("airflow"))
    # Each opens, with the REST resource or query behind it (link_checks: the check of every captured URL).
    assert link_checks.failures(stack.settings, {*links.values(), *sources}) == []
