"""Every URL in every message the captures hold, opened as the on-call engineer would open it.

Each link must open something real on this stack, signed in as the read-only `oncall` account: the console's pages
and runbooks (200), an Airflow UI route (the UI's page, and the REST resource it shows: the DAG, the run, the try),
Alertmanager's views (its page, and its API with the view's filter, so a matcher it could not parse fails),
Prometheus's graph (its page, and the expression through the query API), and Grafana where one is configured.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from local_stack.captures.recorder import read_records
from local_stack.incidents.client import StackClient
from local_stack.settings import StackSettings
from tests.integration.conftest import http_json

# Up to what ends a URL in JSON, HTML, Slack's <url|text> and plain text.
URL = re.compile(r"https?://[^\s\"'<>|\\`]+")
CONSOLE_PATHS = ("/observability/dags/", "/observability/console", "/observability/traces/")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def captured_urls(settings: StackSettings) -> set[str]:
    """Every URL in the messages Slack, the mail relay and the webhooks received (not the capture's own fields)."""
    texts: list[str] = []
    for kind in ("slack", "webhook"):
        texts.extend(text for record in read_records(settings.capture_file(kind)) for text in _strings(record["body"]))
    for mail in read_records(settings.capture_file("smtp")):
        texts += [mail.get("subject") or "", mail.get("text") or "", html.unescape(mail.get("html") or "")]
    return {url.rstrip(".,;") for text in texts for url in URL.findall(text)}


def airflow_rest_route(path: str, query: str) -> str:
    """The REST resource behind an Airflow UI route the toolkit links (a new kind of link must be added here)."""
    parts = path.strip("/").split("/")
    tries = parse_qs(query).get("try_number", [""])[0]
    if parts == [""]:
        return "/api/v2/monitor/health"
    if len(parts) == 2 and parts[0] == "dags":
        return f"/api/v2/dags/{parts[1]}"
    if len(parts) == 4 and parts[0] == "dags" and parts[2] == "runs":
        return f"/api/v2/dags/{parts[1]}/dagRuns/{parts[3]}"
    if len(parts) in (6, 8) and parts[2] == "runs" and parts[4] == "tasks" and tries:
        mapped = f"/{parts[7]}" if len(parts) == 8 and parts[6] == "mapped" else ""
        return f"/api/v2/dags/{parts[1]}/dagRuns/{parts[3]}/taskInstances/{parts[5]}{mapped}/tries/{tries}"
    raise AssertionError(f"an Airflow UI route the link check does not know: {path}?{query}")


def _matchers(fragment: str) -> list[str]:
    """The matchers of an Alertmanager view's `filter={a="b",c=~"d"}`, one string each."""
    raw = unquote(parse_qs(urlsplit(fragment).query).get("filter", ["{}"])[0])
    return re.findall(r'[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"', raw)


def _opens(client: StackClient, url: str, grafana: Any) -> int:
    """The status of a GET: as `oncall` on Airflow, through `grafana`'s stand-in for Grafana, plainly elsewhere."""
    if url.startswith(client.settings.url("airflow")):
        return client.signed_in_get(url)[0]
    if grafana is not None and url.startswith(grafana.url):
        return grafana.status(url)
    return http_json(url)[0]


def failures(settings: StackSettings, urls: set[str], grafana: Any = None) -> list[str]:
    """`url: what failed` for every URL that does not open, as `oncall`; `grafana` checks Grafana's links."""
    client = StackClient(settings, user="oncall")
    airflow, alertmanager, prometheus = (settings.url(name) for name in ("airflow", "alertmanager", "prometheus"))
    failed = []
    for url in sorted(urls):
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        checks: list[str] = [url.split("#", 1)[0]]
        if base == airflow and not parts.path.startswith("/observability/"):
            checks.append(airflow + airflow_rest_route(parts.path, parts.query))
        elif base == alertmanager and parts.fragment:
            filters = [f"filter={quote(matcher, safe='')}" for matcher in _matchers(parts.fragment)]
            checks.append(f"{alertmanager}/api/v2/alerts?" + "&".join(["silenced=true", *filters]))
        elif base == prometheus and parts.path == "/graph":
            expression = parse_qs(parts.query)["g0.expr"][0]
            checks.append(f"{prometheus}/api/v1/query?{urlencode({'query': expression})}")
        elif grafana is not None and url.startswith(grafana.url):
            checks = [url]
        elif base not in (airflow, alertmanager, prometheus):
            failed.append(f"{url}: not on this stack")
            continue
        for check in checks:
            status = _opens(client, check, grafana)
            if status != 200:
                failed.append(f"{url}: {check} answered {status}")
    return failed


def console_links(urls: set[str], settings: StackSettings) -> list[str]:
    airflow = settings.url("airflow")
    return sorted(url for url in urls if url.startswith(tuple(airflow + path for path in CONSOLE_PATHS)))


def dump(urls: set[str]) -> str:
    return json.dumps(sorted(urls), indent=1)
