"""How the local stack's long-running servers run: until SIGTERM or SIGINT, then a clean shutdown."""

from __future__ import annotations

import signal
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def catching_stop_signals(poll_seconds: float = 0.2) -> Iterator[Callable[[], int]]:
    """Catch SIGTERM/SIGINT while inside; yields a wait() that blocks until one arrives. Main thread only.

    Installed before a server announces it is listening, so a supervisor's prompt SIGTERM is never
    handled by the default action (abrupt death without cleanup).
    """
    received: list[int] = []

    def _on_signal(signum: int, _frame: object) -> None:
        # Only a list append: taking locks (Event.set) inside a handler can deadlock the main thread.
        received.append(signum)

    def wait() -> int:
        while not received:
            time.sleep(poll_seconds)
        return received[0]

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield wait
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_until_stopped(server: socketserver.BaseServer, label: str, announcement: str = "") -> None:
    """Serve `server` on a thread until SIGTERM or SIGINT, then shut it down and close it. Main thread only.

    Announced as `[label] <announcement>` once listening; by default "listening on http://host:port".
    """
    with catching_stop_signals() as wait_for_stop:
        thread = threading.Thread(target=server.serve_forever, name=label, daemon=True)
        thread.start()
        try:
            host, port = server.server_address[:2]
            print(f"[{label}] {announcement or f'listening on http://{host}:{port}'}", flush=True)
            wait_for_stop()
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            print(f"[{label}] stopped", flush=True)
