"""A stand-in for Grafana (which cannot run here), on loopback: it answers a dashboard link with 200 when the
dashboard is one the toolkit generates and every `var-<name>` is one of its variables, and an Explore link when it
opens a trace in the Tempo datasource. Anything else is a 404, as a dead link would be."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from airflow_obs.grafana_dashboards.write import render

from tests.integration.conftest import http_json


class FakeGrafana:
    def __init__(self, url: str) -> None:
        self.url = url

    def status(self, url: str) -> int:
        return http_json(url)[0]


def _variables() -> dict[str, set[str]]:
    dashboards = [json.loads(text) for text in render().values()]
    return {d["uid"]: {v["name"] for v in d["templating"]["list"]} for d in dashboards}


def _answer(path: str, query: str, variables: dict[str, set[str]]) -> int:
    found = re.fullmatch(r"/d/([A-Za-z0-9_-]+)", path)
    if found:
        wanted = {name.removeprefix("var-") for name in parse_qs(query) if name.startswith("var-")}
        return 200 if found[1] in variables and wanted <= variables[found[1]] else 404
    if path == "/explore":
        try:
            left = json.loads(parse_qs(query)["left"][0])
        except (KeyError, ValueError):
            return 400
        queries = [q.get("query", "") for q in left.get("queries", [])]
        traced = left.get("datasource") == "tempo" and any(re.fullmatch(r"[0-9a-f]{32}", q) for q in queries)
        return 200 if traced else 400
    return 404


@contextmanager
def fake_grafana() -> Iterator[FakeGrafana]:
    variables = _variables()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = urlsplit(self.path)
            status = _answer(parts.path, parts.query, variables)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield FakeGrafana(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
