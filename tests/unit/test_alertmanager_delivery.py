"""What Alertmanager delivers with the toolkit's templates: Slack with buttons, an HTML and plain-text e-mail, the
pager's JSON, resolved messages and the daily digest, as a real Alertmanager sends them to the local captures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote

import pytest

from tests.integration.conftest import wait_for
from tests.running_alertmanager import RunningAlertmanager, alert, unique

# --- What arrives: Slack with buttons, HTML e-mail, the pager's JSON ----------------------------------


@dataclass
class Page:
    alert: dict[str, Any]
    slack: dict[str, Any]
    email: dict[str, Any]
    webhook: dict[str, Any]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            self.links[data.strip()] = self._href
            self._href = None


def html_links(html: str) -> dict[str, str]:
    """Link text -> href (unescaped) of an HTML document."""
    parser = _Links()
    parser.feed(html)
    return parser.links


@pytest.fixture(scope="module")
def critical_page(alertmanager: RunningAlertmanager) -> Page:
    """A critical DAG alert whose description carries markup, as delivered to Slack, e-mail and the pager."""
    dag_id = unique("etl_orders")
    page = {
        "labels": {
            "alertname": "AirflowDagLastRunFailed",
            "severity": "critical",
            "team": "data-platform",
            "dag_id": dag_id,
            "environment": unique("page"),
        },
        "annotations": {
            "summary": f"The latest run of {dag_id} failed.",
            "description": "Task load failed: <script>alert('x')</script> & more",
            "runbook_url": "https://runbooks.example/runbooks/AirflowDagLastRunFailed.md",
            "dashboard_url": f"https://grafana.example/d/airflow-dag?var-dag_id={dag_id}",
            "airflow_url": f"https://airflow.example/dags/{dag_id}",
        },
    }
    alertmanager.post(page)

    def delivered() -> tuple[list[dict[str, Any]], ...] | None:
        found = tuple(alertmanager.records(kind, dag_id) for kind in ("slack", "smtp", "webhook"))
        return found if all(found) else None

    slack, email, webhook = wait_for(delivered, 20, "the page in the Slack, SMTP and webhook captures", interval=0.2)
    return Page(page, slack[0]["body"], email[0], webhook[0])


def test_a_critical_page_reaches_the_oncall_channel_with_runbook_airflow_dashboard_and_silence_buttons(
    alertmanager: RunningAlertmanager, critical_page: Page
) -> None:
    labels, annotations = critical_page.alert["labels"], critical_page.alert["annotations"]
    (attachment,) = critical_page.slack["attachments"]

    assert critical_page.slack["channel"] == "#airflow-oncall"
    assert attachment["title"] == f"[FIRING:1] AirflowDagLastRunFailed · {labels['dag_id']}"
    assert attachment["color"] == "danger"
    buttons = {action["text"]: action["url"] for action in attachment["actions"] if action["type"] == "button"}
    assert list(buttons) == ["Runbook", "Airflow", "Dashboard", "Silence"]
    assert buttons["Runbook"] == annotations["runbook_url"]
    assert buttons["Airflow"] == annotations["airflow_url"]
    assert buttons["Dashboard"] == annotations["dashboard_url"]
    prefix = f"{alertmanager.url}/#/silences/new?filter="
    assert buttons["Silence"].startswith(prefix)
    assert unquote(buttons["Silence"][len(prefix) :]) == (
        f'{{alertname="AirflowDagLastRunFailed",dag_id="{labels["dag_id"]}"}}'
    )
    assert "&lt;script&gt;" in attachment["text"] and "<script>" not in attachment["text"]


def test_the_silence_buttons_matchers_select_exactly_the_alert_in_alertmanager(
    alertmanager: RunningAlertmanager, critical_page: Page
) -> None:
    (attachment,) = critical_page.slack["attachments"]
    silence = next(action["url"] for action in attachment["actions"] if action["text"] == "Silence")
    matchers = re.findall(r'\w+="(?:[^"\\]|\\.)*"', unquote(silence.split("filter=", 1)[1]))

    selected = alertmanager.alerts(*matchers)

    assert len(matchers) == 2
    assert [a["labels"] for a in selected] == [critical_page.alert["labels"]]


def test_the_page_email_is_html_with_every_value_escaped_and_the_links(critical_page: Page) -> None:
    annotations = critical_page.alert["annotations"]
    html = critical_page.email["html"]

    assert critical_page.email["rcpt_tos"] == ["oncall@localhost"]
    assert critical_page.email["subject"].startswith("[FIRING:1] AirflowDagLastRunFailed")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in html
    links = html_links(html)
    assert links["Runbook"] == annotations["runbook_url"]
    assert links["Airflow"] == annotations["airflow_url"]
    assert links["Dashboard"] == annotations["dashboard_url"]
    assert links["Silence this group"].startswith(f"{critical_page.webhook['body']['externalURL']}/#/silences/new")


def test_the_page_email_has_a_plain_text_part_with_every_link_written_out(critical_page: Page) -> None:
    annotations = critical_page.alert["annotations"]
    text = critical_page.email["text"]

    assert text.startswith("[FIRING:1] AirflowDagLastRunFailed")
    assert "-- FIRING AirflowDagLastRunFailed (critical)" in text
    assert annotations["summary"] in text
    assert "<script>alert('x')</script> & more" in text, "plain text is not HTML-escaped"
    for name, key in (("Runbook", "runbook_url"), ("Airflow", "airflow_url"), ("Dashboard", "dashboard_url")):
        assert f"{name}: {annotations[key]}\n" in text
    external = critical_page.webhook["body"]["externalURL"]
    assert f"Silence this group: {external}/#/silences/new" in text


def test_the_pager_gets_alertmanagers_version_4_json_with_labels_and_annotations(critical_page: Page) -> None:
    body = critical_page.webhook["body"]

    assert critical_page.webhook["path"] == "/pager"
    assert body["version"] == "4"
    assert body["receiver"] == "oncall-critical"
    assert body["status"] == "firing"
    assert body["commonLabels"] == critical_page.alert["labels"]
    assert body["alerts"][0]["annotations"] == critical_page.alert["annotations"]


def test_a_team_warning_without_an_airflow_link_goes_to_the_teams_channel_and_opens_the_airflow_home(
    alertmanager: RunningAlertmanager,
) -> None:
    pool = unique("ml_gpu_pool")
    warning = alert("AirflowPoolSaturated", unique("team"), team="ml", pool=pool)
    warning["annotations"]["runbook_url"] = "https://runbooks.example/runbooks/AirflowPoolSaturated.md"
    alertmanager.post(warning)

    (record, *_) = wait_for(lambda: alertmanager.records("slack", pool), 20, "the warning in the Slack capture", 0.2)
    (attachment,) = record["body"]["attachments"]

    assert record["body"]["channel"] == "#ml-alerts"
    assert attachment["title"] == "[FIRING:1] AirflowPoolSaturated"
    buttons = {action["text"]: action["url"] for action in attachment["actions"]}
    assert buttons["Airflow"] == alertmanager.settings.url("airflow")
    # No dashboard_url: the Dashboard button falls back to the alert's page in Alertmanager, never to nothing.
    assert buttons["Dashboard"].startswith(f"{alertmanager.url}/#/alerts?receiver=slack-ml-alerts")
    assert all(url.startswith("http") for url in buttons.values())


def test_a_resolved_alert_sends_a_resolved_message(alertmanager: RunningAlertmanager) -> None:
    dag_id = unique("resolving")
    firing = alert("AirflowDagFailingForAnHour", unique("resolve"), dag_id=dag_id)
    alertmanager.post(firing)
    wait_for(lambda: alertmanager.records("slack", dag_id), 20, "the firing message", 0.2)

    alertmanager.post({**firing, "endsAt": datetime.now(UTC).isoformat()})

    def resolved() -> list[dict[str, Any]]:
        titles = [r["body"]["attachments"][0]["title"] for r in alertmanager.records("slack", dag_id)]
        return [title for title in titles if title.startswith("[RESOLVED")]

    assert wait_for(resolved, 20, "the resolved message", 0.2) == [
        f"[RESOLVED:1] AirflowDagFailingForAnHour · {dag_id}"
    ]


def test_info_alerts_arrive_together_in_one_email_digest(alertmanager: RunningAlertmanager) -> None:
    environment = unique("digest")
    alertmanager.post(
        alert("AirflowTaskRetriesElevated", environment, "info", dag_id="etl_orders"),
        alert("AirflowDagRunSlowerThanUsual", environment, "info", dag_id="reports"),
    )

    def digest() -> list[dict[str, Any]]:
        return [r for r in alertmanager.records("smtp", environment) if "AirflowDagRunSlowerThanUsual" in r["html"]]

    (email, *_) = wait_for(digest, 20, "the digest e-mail", 0.2)
    assert "AirflowTaskRetriesElevated" in email["html"]
    assert not alertmanager.records("slack", environment)
