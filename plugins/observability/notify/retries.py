"""Retrying one send: 5xx, 408, 429 and network errors again, with exponential backoff or Retry-After; 4xx never.

Bounded twice: by `settings.notify_max_attempts`, and by the deadline of the callback that sends (a wait that
would end past it stops the attempts at once, and the spool honours a Retry-After that long).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from airflow_obs.observability.notify.spool import Envelope
from airflow_obs.observability.settings import PluginSettings
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

# No attempt starts with less time than this left: it could not finish anyway.
MIN_ATTEMPT_SECONDS = 0.05


class DeliveryError(Exception):
    """A send that did not reach its sink. The reason is already redacted; `retry_after` is in seconds."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = 0


# Sends one envelope or raises DeliveryError; the float is the most time this attempt may take.
Sender = Callable[[Envelope, float], None]


@dataclass(frozen=True)
class Policy:
    timeout_seconds: float
    max_attempts: int
    backoff_first_seconds: float = 0.25
    backoff_max_seconds: float = 4.0
    # Between redelivery rounds of one message: doubles from the first value up to the second. The cap keeps a
    # receiver that comes back from waiting long: the scheduler's pass (every reconcile interval) then finds the
    # message due within 30 s.
    redelivery_backoff_seconds: float = 15.0
    redelivery_backoff_max_seconds: float = 30.0
    redelivery_batch: int = 20

    @classmethod
    def from_settings(cls, settings: PluginSettings) -> Policy:
        return cls(timeout_seconds=settings.notify_timeout_seconds, max_attempts=settings.notify_max_attempts)

    @property
    def stale_claim_seconds(self) -> float:
        """A claim older than this outlived any sender that could still finish it."""
        return max(60.0, 4 * self.timeout_seconds)

    def redelivery_backoff(self, failed_rounds: int) -> float:
        exponent = max(0, failed_rounds - 2)  # the first redelivery may follow the first failure at once
        return min(self.redelivery_backoff_max_seconds, self.redelivery_backoff_seconds * 2**exponent)


def send_with_retries(
    send: Sender,
    envelope: Envelope,
    *,
    policy: Policy,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send, retrying what is retryable with exponential backoff or the server's Retry-After.

    Stops at `policy.max_attempts`, or when the next wait would end past `deadline` (a Retry-After longer
    than the time left ends the attempts at once; the spool honours it). Returns the attempts made;
    raises the last DeliveryError, its `attempts` set.
    """
    attempts = 0

    def attempt() -> None:
        nonlocal attempts
        remaining = deadline - clock()
        if remaining < MIN_ATTEMPT_SECONDS:
            raise DeliveryError("no time left for an attempt", retryable=True)
        attempts += 1
        try:
            # A little under the time left, so a slow sink ends as this attempt's timeout, not as the deadline.
            send(envelope, remaining * 0.9)
        except DeliveryError:
            raise
        except Exception as error:  # a sender bug or an unforeseen library error: retried, then spooled
            raise DeliveryError(f"unexpected {type(error).__name__}", retryable=True) from None

    exponential = wait_exponential(multiplier=policy.backoff_first_seconds, max=policy.backoff_max_seconds)

    def wait(state) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, DeliveryError) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        return exponential(state)

    def out_of_time(state) -> bool:
        return clock() + state.upcoming_sleep > deadline - MIN_ATTEMPT_SECONDS

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts) | out_of_time,
        wait=wait,
        retry=retry_if_exception(lambda error: isinstance(error, DeliveryError) and error.retryable),
        sleep=sleep,
        reraise=True,
    )
    try:
        retrying(attempt)
    except DeliveryError as error:
        error.attempts = attempts
        raise
    return attempts
