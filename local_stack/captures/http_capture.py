"""HTTP alert captures: a Slack-compatible incoming webhook and a generic JSON webhook."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_obs.serving import serve_until_stopped
from local_stack.captures.recorder import CaptureRecorder, redact_headers, truncate

HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class Reply:
    """What a capture answers, and the summary tail printed after `METHOD /path N B`."""

    status: int
    content_type: str
    body: bytes
    summary: str


def _parse_body(raw: bytes) -> tuple[Any, bool]:
    """The body as parsed JSON when it is JSON, else as text; and whether it parsed."""
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(raw), True
    except ValueError:
        return text, False


def _plain(status: int, text: str, summary: str) -> Reply:
    return Reply(status, "text/plain; charset=utf-8", text.encode(), summary)


def _slack_text(payload: dict[str, Any]) -> str:
    """The human text of a Slack message: text, else the first attachment's, else the first block's."""
    if payload.get("text"):
        return str(payload["text"])
    for attachment in payload.get("attachments") or []:
        if isinstance(attachment, dict):
            for key in ("title", "fallback", "text"):
                if attachment.get(key):
                    return str(attachment[key])
    for block in payload.get("blocks") or []:
        text = block.get("text") if isinstance(block, dict) else None
        if isinstance(text, dict):
            text = text.get("text")
        if text:
            return str(text)
    return ""


def slack_reply(method: str, body: Any, is_json: bool) -> Reply:
    """Answer as hooks.slack.com does: 200 ok, or 400 invalid_payload / no_text."""
    if method != "POST":
        return _plain(405, "invalid_method", "-> 405 invalid_method")
    if not is_json or not isinstance(body, dict):
        return _plain(400, "invalid_payload", "-> 400 invalid_payload")
    if not any(key in body for key in ("text", "blocks", "attachments")):
        return _plain(400, "no_text", "-> 400 no_text")
    return _plain(200, "ok", f'"{truncate(_slack_text(body))}"')


def webhook_reply(method: str, body: Any, is_json: bool) -> Reply:
    """Accept any JSON (or other) POST; summarise Alertmanager payloads."""
    if method != "POST":
        return Reply(405, "application/json", b'{"status": "method not allowed"}', "-> 405")
    summary = ""
    if is_json and isinstance(body, dict) and "alerts" in body and "status" in body:
        alertname = (body.get("commonLabels") or {}).get("alertname", "?")
        summary = f"{body['status']}, {len(body['alerts'] or [])} alert(s), alertname={alertname}"
    return Reply(200, "application/json", b'{"status": "ok"}', summary)


REPLIES: dict[str, Callable[[str, Any, bool], Reply]] = {"slack": slack_reply, "webhook": webhook_reply}


class CaptureHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its capture kind and recorder."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], kind: str, recorder: CaptureRecorder) -> None:
        self.kind = kind
        self.recorder = recorder
        self.reply = REPLIES[kind]
        super().__init__(address, CaptureHandler)


class CaptureHandler(BaseHTTPRequestHandler):
    """Records every request except GET /healthz, then answers as the real endpoint would."""

    server: CaptureHTTPServer

    def do_GET(self) -> None:
        if urlsplit(self.path).path == HEALTH_PATH:
            self._send(_plain(200, "ok", ""))
        else:
            self._capture()

    def do_POST(self) -> None:
        self._capture()

    do_PUT = do_PATCH = do_DELETE = do_POST

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silence the access log: the recorder's one-line summary replaces it (errors still log)."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, up to the blank line
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _capture(self) -> None:
        raw = self._read_body()
        body, is_json = _parse_body(raw)
        reply = self.server.reply(self.command, body, is_json)
        url = urlsplit(self.path)
        fields = {
            "method": self.command,
            "path": url.path,
            "query": parse_qs(url.query, keep_blank_values=True),
            "headers": redact_headers(self.headers.items()),
            "body": body,
            "body_size": len(raw),
            "response_status": reply.status,
        }
        summary = f"{self.command} {url.path} {len(raw)} B"
        if reply.summary:
            summary += f": {reply.summary}" if reply.status < 300 else f" {reply.summary}"
        # Recorded before answering so a client that got its response can already read the record.
        self.server.recorder.record(fields, summary)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


def make_http_capture(kind: str, host: str, port: int, out_path: str | os.PathLike[str]) -> ThreadingHTTPServer:
    """A bound (not yet serving) capture server; port 0 picks a free port, see `server_address`."""
    if kind not in REPLIES:
        raise ValueError(f"unknown HTTP capture kind {kind!r}; expected one of: {', '.join(REPLIES)}")
    return CaptureHTTPServer((host, port), kind, CaptureRecorder(out_path, kind))


def serve_http_capture(kind: str, host: str, port: int, out_path: str | os.PathLike[str]) -> None:
    """Serve a capture until SIGTERM or SIGINT, then shut it down cleanly."""
    server = make_http_capture(kind, host, port, out_path)
    host, port = server.server_address[:2]
    serve_until_stopped(server, kind, f"listening on http://{host}:{port}, recording to {out_path}")
