"""Health checks report a component that is down or half-started; they never raise into `make up`."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from local_stack.health import check
from tests.unit.stack_helpers import settings_for


def serve_once(response: bytes) -> tuple[int, threading.Thread]:
    """A loopback server answering every connection with `response` and closing, for a few connections."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(2)

    def answer() -> None:
        with listener:
            for _ in range(2):  # /healthz, then /metrics
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    return
                with connection:
                    connection.recv(4096)
                    connection.sendall(response)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_a_server_that_cuts_its_answer_short_is_unhealthy_not_an_error(tmp_path: Path) -> None:
    # What a server still starting can do: promise 30 bytes, send 3, close.
    port, thread = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nok\n")
    health = check("exporter", settings_for(tmp_path, AIRFLOW_OBS_EXPORTER_PORT=str(port)))
    thread.join(timeout=10)
    assert not health.ok
    assert "IncompleteRead" in health.detail


def test_nothing_listening_is_unhealthy_with_the_reason(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    health = check("airflow-celery-flower", settings_for(tmp_path, AIRFLOW_OBS_EXECUTOR="celery",
                                                          AIRFLOW_OBS_FLOWER_PORT=str(port)))  # fmt: skip
    assert not health.ok
    assert "ConnectionRefused" in health.detail or "Connection refused" in health.detail
