"""Stand-ins for HTTP services the monitoring DAGs call: real loopback servers answering through a route.

Stand-ins for Airflow's API are acceptable here: the real stack (a real api-server) is tested in
tests/integration. Their JSON is produced by Airflow's own api_fastapi response models, so its shape is real.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

HEALTH_DAG = "monitoring_stack_health"
REPORT_DAG = "monitoring_daily_report"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VIEWER, VIEWER_PASSWORD, TOKEN = "oncall", "s3cret/pw", "token-for-oncall"

# (status, content type, body) for a request: (method, path, query, headers, body)
Route = Callable[[str, str, dict[str, list[str]], dict[str, str], bytes], tuple[int, str, bytes]]


def _text(body: str, status: int = 200) -> tuple[int, str, bytes]:
    return status, "text/plain", body.encode()


def _json(payload: Any, status: int = 200) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(payload).encode()


@contextlib.contextmanager
def serving(route: Route) -> Iterator[str]:
    """A real HTTP server on a free loopback port, answering with `route`; stopped on exit."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            url = urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, content_type, payload = route(self.command, url.path, parse_qs(url.query), dict(self.headers), body)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
