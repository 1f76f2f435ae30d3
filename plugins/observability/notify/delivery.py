"""Sending within a bounded time (with the retries of retries.py), and the spool for what could not be sent.

The bound is hard. Each sink's messages go out on a daemon thread, and the caller waits for all of them
until one shared deadline (settings.notify_timeout_seconds), whatever a sink does: refuse, answer slowly,
drip bytes or never answer. A message still in flight at the deadline is already in the spool (write-ahead,
see spool.py); if its send succeeds later after all, the sender removes it again. The one window for a
duplicate is another process redelivering that message in between: delivery is at least once.

Connections are looked up before the threads start (by sinks.py, on the caller's thread): in a task, a
lookup goes through the supervisor's channel, which must not be held by a thread nobody waits for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from airflow_obs.observability.notify.retries import DeliveryError, Policy, Sender, send_with_retries
from airflow_obs.observability.notify.spool import Envelope, Spool
from airflow_obs.observability.settings import PluginSettings

log = logging.getLogger("airflow_obs.notify")


@dataclass(frozen=True)
class Outcome:
    """What became of one envelope: delivered, spooled (to be redelivered), rejected (4xx), kept or lost."""

    envelope_id: str
    sink: str
    status: str
    attempts: int = 0
    reason: str = ""


class _Lane:
    """One sink's envelopes, sent in order on a daemon thread until done, a failure (if asked), or abandoned."""

    def __init__(self, sink: str, envelopes: list[Envelope], send: Sender, run: _Pass, stop_on_failure: bool) -> None:
        self.envelopes = envelopes
        self._send, self._pass, self._stop_on_failure = send, run, stop_on_failure
        self._lock = threading.Lock()
        self._abandoned = False
        self._results: dict[str, tuple[int, DeliveryError | None]] = {}
        self.thread = threading.Thread(target=self._run, name=f"airflow-obs-notify-{sink}", daemon=True)

    def _run(self) -> None:
        run = self._pass
        for envelope in self.envelopes:
            with self._lock:
                if self._abandoned:
                    return
            error: DeliveryError | None = None
            try:
                attempts = send_with_retries(
                    self._send, envelope, policy=run.policy, deadline=run.deadline, clock=run.clock, sleep=run.sleep
                )
            except DeliveryError as failure:
                attempts, error = failure.attempts, failure
            except Exception as failure:  # never let a sender thread die with a traceback on stderr
                attempts, error = 0, DeliveryError(f"unexpected {type(failure).__name__}", retryable=True)
            if error is None:
                # Also after the caller stopped waiting: the spooled copy must not be sent twice.
                run.spool.delivered(envelope.id)
            with self._lock:
                self._results[envelope.id] = (attempts, error)
            if error is not None and self._stop_on_failure:
                return

    def abandon(self) -> dict[str, tuple[int, DeliveryError | None]]:
        """Stop after the envelope in flight; what is settled so far (the rest: not sent, or still in flight)."""
        with self._lock:
            self._abandoned = True
            return dict(self._results)


@dataclass
class _Pass:
    """One bounded round of sending: lanes started together, waited for until one deadline, then settled."""

    spool: Spool
    policy: Policy
    deadline: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    lanes: list[_Lane] = field(default_factory=list)

    def add(self, sink: str, envelopes: list[Envelope], send: Sender, *, stop_on_failure: bool) -> None:
        self.lanes.append(_Lane(sink, envelopes, send, self, stop_on_failure))

    def run(self) -> Iterator[tuple[_Lane, dict[str, tuple[int, DeliveryError | None]]]]:
        for lane in self.lanes:
            lane.thread.start()
        for lane in self.lanes:
            lane.thread.join(max(0.0, self.deadline - self.clock()))
        return ((lane, lane.abandon()) for lane in self.lanes)

    def settle(
        self,
        envelope: Envelope,
        result: tuple[int, DeliveryError | None] | None,
        not_before: Callable[[Envelope, DeliveryError | None], float],
        *,
        spooled: bool = True,
    ) -> Outcome:
        """Record one envelope's fate in the spool; `result` None: still in flight at the deadline."""
        if result is not None and result[1] is None:
            return _log(Outcome(envelope.id, envelope.sink, "delivered", result[0]))
        attempts, error = result if result is not None else (0, None)
        reason = error.reason if error is not None else f"no answer within {self.policy.timeout_seconds:g} s"
        if not spooled:
            return _log(Outcome(envelope.id, envelope.sink, "lost", attempts, reason))
        if error is not None and not error.retryable:
            self.spool.reject(envelope.failed(attempts, reason, 0.0))
            return _log(Outcome(envelope.id, envelope.sink, "rejected", attempts, reason))
        if not self.spool.release(envelope.failed(attempts, reason, not_before(envelope, error))):
            return _log(Outcome(envelope.id, envelope.sink, "delivered", attempts, "after the deadline"))
        return _log(Outcome(envelope.id, envelope.sink, "spooled", attempts, reason))


_LOG_LINES = {
    "delivered": (logging.INFO, "notification %s delivered to %s (%d attempt(s))"),
    "spooled": (logging.WARNING, "notification %s to %s spooled for redelivery (%d attempt(s)): %s"),
    "rejected": (logging.ERROR, "notification %s rejected by %s (%d attempt(s)), kept aside in the spool: %s"),
    "lost": (logging.ERROR, "notification %s to %s is lost (%d attempt(s)): %s, and the spool could not keep it"),
}


def _log(outcome: Outcome) -> Outcome:
    """Each outcome is logged exactly once, here."""
    if outcome.status in _LOG_LINES:
        level, line = _LOG_LINES[outcome.status]
        args = (outcome.envelope_id, outcome.sink, outcome.attempts)
        log.log(level, line, *(args if outcome.status == "delivered" else (*args, outcome.reason)))
    return outcome


def deliver(
    envelopes: Iterable[Envelope],
    senders: Mapping[str, Sender],
    *,
    spool: Spool,
    policy: Policy,
    deadline: float,
    unavailable: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome]:
    """Send new messages, all sinks at once, until `deadline`; whatever is not delivered stays spooled.

    `unavailable` names sinks whose connection could not be read just now (with the reason): their
    messages go straight to the spool.
    """
    run = _Pass(spool, policy, deadline, clock, sleep)
    outcomes: list[Outcome] = []
    unspooled: set[str] = set()

    def right_away(envelope: Envelope, error: DeliveryError | None) -> float:
        return spool.clock() + (error.retry_after if error is not None and error.retry_after else 0.0)

    for envelope in envelopes:
        try:
            spool.claim_new(envelope)
        except OSError as error:  # still sent: only a failure now loses it, and that is logged as an error
            unspooled.add(envelope.id)
            log.warning("notification %s could not be spooled ahead of sending: %s", envelope.id, type(error).__name__)
        send = senders.get(envelope.sink)
        if send is not None:
            run.add(envelope.sink, [envelope], send, stop_on_failure=False)
            continue
        unreachable = DeliveryError((unavailable or {}).get(envelope.sink, "sink not available"), retryable=True)
        outcomes.append(run.settle(envelope, (0, unreachable), right_away, spooled=envelope.id not in unspooled))

    for lane, results in run.run():
        for envelope in lane.envelopes:
            outcome = run.settle(envelope, results.get(envelope.id), right_away, spooled=envelope.id not in unspooled)
            outcomes.append(outcome)
    return outcomes


def redeliver_spooled(
    *,
    settings: PluginSettings | None = None,
    senders: Mapping[str, Sender] | None = None,
    budget_seconds: float | None = None,
    spool: Spool | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome]:
    """One bounded pass over the spool: send what is due, oldest first per sink, deleting each on success.

    A sink's pass stops at its first failure (the sink is likely still down); that message waits an
    exponentially growing time, or the sink's Retry-After, before the next pass tries the sink again.
    Sinks switched off in the settings keep their messages. `senders` default to the configured sinks.
    """
    if settings is None:
        from airflow_obs.observability.settings import settings as plugin_settings

        settings = plugin_settings()
    policy = Policy.from_settings(settings)
    spool = spool or Spool(settings.spool_path)
    budget = policy.timeout_seconds if budget_seconds is None else budget_seconds
    run = _Pass(spool, policy, clock() + budget, clock, sleep)
    spool.recover_stale(policy.stale_claim_seconds)
    ready = spool.ready(policy.redelivery_batch)
    if not ready:
        return []
    if senders is None:
        from airflow_obs.observability.notify.sinks import prepare_sinks  # sinks import this module

        senders = prepare_sinks(settings, only=set(ready)).senders
    for sink, envelopes in ready.items():
        send = senders.get(sink)
        claimed = [envelope for envelope in envelopes if send is not None and spool.claim(envelope.id)]
        if send is not None and claimed:
            run.add(sink, claimed, send, stop_on_failure=True)

    def backed_off(envelope: Envelope, error: DeliveryError | None) -> float:
        retry_after = error.retry_after if error is not None and error.retry_after else 0.0
        return spool.clock() + max(policy.redelivery_backoff(envelope.failed_rounds + 1), retry_after)

    outcomes = []
    for lane, results in run.run():
        failed = False
        for envelope in lane.envelopes:
            if envelope.id in results or not failed:  # settled, or the one in flight at the deadline
                outcome = run.settle(envelope, results.get(envelope.id), backed_off)
                failed = failed or outcome.status != "delivered"
            else:  # behind a failure in its sink's queue: back unchanged, not tried in this pass
                spool.release(envelope)
                outcome = Outcome(envelope.id, envelope.sink, "kept")
            outcomes.append(outcome)
    return outcomes
