"""A scripted HTTP server on 127.0.0.1 standing in for a sink that misbehaves: 5xx, 4xx, Retry-After, hangs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


class ScriptedServer(ThreadingHTTPServer):
    """Answers POSTs with scripted replies, in order (the last one repeats), and records each request."""

    daemon_threads = True

    def __init__(self, port: int, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        self.release = threading.Event()  # set to let hanging handlers go
        super().__init__(("127.0.0.1", port), ScriptedHandler)


class ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((time.monotonic(), dict(self.headers.items()), body))
        reply = self.server.replies.pop(0) if len(self.server.replies) > 1 else self.server.replies[0]
        if reply.hang:
            self.server.release.wait(30)
            return
        self.send_response(reply.status)
        for name, value in {"Content-Length": "2", **reply.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass
