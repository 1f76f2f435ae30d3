"""SMTP alert capture (stands in for a mail relay): no auth, no TLS, records every message."""

from __future__ import annotations

import email
import email.policy
import os
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any, cast

from aiosmtpd.controller import Controller

from airflow_obs.serving import catching_stop_signals
from local_stack.captures.recorder import CaptureRecorder, truncate

KIND = "smtp"
# Fixed so aiosmtpd does not call socket.getfqdn(), which can stall on a machine without DNS.
SERVER_HOSTNAME = "smtp-capture.localhost"


class _TextExtractor(HTMLParser):
    """Collects the visible text of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML body, whitespace collapsed per line."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _content(part: EmailMessage | None) -> str | None:
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, ValueError):
        # An unknown or lying charset: keep what can be decoded rather than lose the message.
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def _header(message: EmailMessage, name: str) -> str | None:
    value = message[name]
    return None if value is None else str(value)


def message_fields(raw: bytes) -> dict[str, Any]:
    """The recorded fields of one RFC 5322 message."""
    # policy.default makes the parser build EmailMessage objects (get_body, iter_attachments).
    # SMTP carries CRLF line endings; normalised so text and html read like any Python string.
    normalised = raw.replace(b"\r\n", b"\n")
    message = cast(EmailMessage, email.message_from_bytes(normalised, policy=email.policy.default))
    html = _content(message.get_body(preferencelist=("html",)))
    text = _content(message.get_body(preferencelist=("plain",)))
    if text is None and html is not None:
        text = html_to_text(html)
    return {
        "subject": _header(message, "subject"),
        "from": _header(message, "from"),
        "to": _header(message, "to"),
        "cc": _header(message, "cc"),
        "content_type": message.get_content_type(),
        "text": text,
        "html": html,
        "attachments": [part.get_filename() for part in message.iter_attachments()],
        "size": len(raw),
    }


class SMTPCaptureHandler:
    """aiosmtpd handler that records each message and accepts it."""

    def __init__(self, recorder: CaptureRecorder) -> None:
        self.recorder = recorder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content
        fields: dict[str, Any] = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos)}
        try:
            fields.update(message_fields(raw))
        except Exception as error:  # a malformed message must still be recorded, whatever broke parsing
            fields.update(subject=None, text=raw.decode("utf-8", errors="replace"), parse_error=repr(error))
        recipients = ", ".join(fields["rcpt_tos"])
        subject = truncate(fields["subject"] or "")
        self.recorder.record(fields, f'{fields["mail_from"]} -> {recipients} {len(raw)} B: "{subject}"')
        return "250 Message accepted for delivery"


class CaptureController(Controller):
    """aiosmtpd Controller that also works with port 0: after start(), `port` is the bound port."""

    def _trigger_server(self) -> None:
        # start() wakes the server by connecting to self.port, which is still 0 when a free port was
        # asked for; the listening socket exists by now, so take the real port from it first.
        if self.server is not None and self.server.sockets:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def make_smtp_capture(host: str, port: int, out_path: str | os.PathLike[str]) -> Controller:
    """A capture SMTP server, not started; port 0 picks a free port, read `.port` after start()."""
    handler = SMTPCaptureHandler(CaptureRecorder(out_path, KIND))
    return CaptureController(handler, hostname=host, port=port, server_hostname=SERVER_HOSTNAME, ready_timeout=5.0)


def serve_smtp_capture(host: str, port: int, out_path: str | os.PathLike[str]) -> None:
    """Serve the SMTP capture until SIGTERM or SIGINT, then stop it."""
    controller = make_smtp_capture(host, port, out_path)
    with catching_stop_signals() as wait_for_stop:
        controller.start()
        try:
            address = f"smtp://{host}:{controller.port}"
            print(f"[{KIND}] listening on {address}, recording to {out_path}", flush=True)
            wait_for_stop()
        finally:
            controller.stop()
