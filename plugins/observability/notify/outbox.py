"""A background thread for the plugin's notifications in long-lived processes (scheduler, api-server, dag-processor).

Their listeners run inside Airflow's own loops and request handlers: the scheduler must never wait on an HTTP
call to Alertmanager or Slack. Work is queued here and done on one daemon thread, in order. The scheduler also
gives the thread a periodic duty (the reconciler: resolve what recovered, redeliver the spool).

A task runner does not use it: the process ends right after the task, so its listener sends within its own
bounded budget. At interpreter exit the queue is drained for a bounded time; what is still queued then is
logged as an error by name, never dropped silently.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("airflow_obs.notify")

MAX_QUEUED = 1000
EXIT_DRAIN_SECONDS = 5.0


@dataclass(frozen=True)
class _Work:
    name: str
    run: Callable[[], None]


class Outbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Work] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._periodic: tuple[float, Callable[[], None]] | None = None
        self._stopping = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._busy = 0

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            # A forked child (LocalExecutor workers are forked from the scheduler) inherits no thread: start its own.
            self._queue = queue.Queue(MAX_QUEUED)
            self._pid = os.getpid()
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name="airflow-obs-outbox", daemon=True)
            self._thread.start()

    def submit(self, name: str, run: Callable[[], None]) -> None:
        """Do `run` on the background thread; when the queue is full, right here (late beats lost)."""
        self._ensure_thread()
        with self._lock:
            self._busy += 1
        try:
            self._queue.put_nowait(_Work(name, run))
        except queue.Full:
            log.error("notification queue full (%d waiting): %s runs on the caller's thread", MAX_QUEUED, name)
            self._run(_Work(name, run))

    def every(self, seconds: float, duty: Callable[[], None]) -> None:
        """Also run `duty` whenever the thread has been idle for `seconds` (and at least that often)."""
        self._periodic = (seconds, duty)
        self._ensure_thread()

    def stop(self) -> None:
        self._periodic = None
        self._stopping.set()

    def drain(self, timeout: float) -> bool:
        """Wait until everything submitted so far is done; False if it was not within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _run(self, work: _Work) -> None:
        try:
            work.run()
        except Exception as error:  # the work logs its own outcome; this is a bug in it, not a delivery failure
            log.error("notification work %s failed: %s", work.name, type(error).__name__, exc_info=True)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _loop(self) -> None:
        # The first duty waits one period: a scheduler forks its executor's workers in its first seconds.
        next_duty = time.monotonic() + (self._periodic[0] if self._periodic else 0.0)
        while not self._stopping.is_set():
            periodic = self._periodic
            wait = min(1.0, max(0.0, next_duty - time.monotonic())) if periodic else 1.0
            try:
                work = self._queue.get(timeout=wait)
            except queue.Empty:
                work = None
            if work is not None:
                self._run(work)
            periodic = self._periodic
            if periodic and time.monotonic() >= next_duty:
                try:
                    periodic[1]()
                except Exception:
                    log.error("the notification thread's periodic duty failed", exc_info=True)
                next_duty = time.monotonic() + periodic[0]

    def pending(self) -> list[str]:
        return [work.name for work in list(self._queue.queue)]


OUTBOX = Outbox()


def _drain_at_exit() -> None:
    if OUTBOX._pid != os.getpid():  # noqa: SLF001 - a forked child's copy holds its parent's view
        return
    if not OUTBOX.drain(EXIT_DRAIN_SECONDS):
        waiting = ", ".join(OUTBOX.pending()) or "one in flight"
        log.error("exiting with notifications still queued, not sent: %s", waiting)


atexit.register(_drain_at_exit)
