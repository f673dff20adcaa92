"""Retry policy for exchange calls, on tenacity: transient errors only, exponential
backoff with jitter, bounded by attempts and a deadline on the injected clock, and a
rate-limit error waits at least as long as the exchange's counter needs to decay."""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from core.domain.clock import Clock
from core.domain.errors import ExchangeError, RateLimitExceededError, TransientExchangeError

RetryHook = Callable[[ExchangeError | None, float], None]
"""Told of each retry: the error that caused it and the wait before the next attempt."""


def backoff(rate_limit_wait_s: float) -> Callable[[RetryCallState], float]:
    exponential = wait_exponential_jitter(multiplier=0.5, max=8.0)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitExceededError):
            return max(rate_limit_wait_s, exponential(state))
        return exponential(state)

    return wait


class _PastDeadline(stop_base):
    """Stop once the clock reaches the deadline. A stop_base, not a bare callable, so it
    composes with `|` as tenacity types it."""

    def __init__(self, clock: Clock, deadline: float) -> None:
        self._clock = clock
        self._deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._clock.monotonic() >= self._deadline


def retrying(
    clock: Clock,
    *,
    attempts: int,
    deadline_s: float,
    rate_limit_wait_s: float,
    retry_on: tuple[type[BaseException], ...] = (TransientExchangeError,),
    never_on: tuple[type[BaseException], ...] = (),
    on_retry: RetryHook | None = None,
) -> AsyncRetrying:
    deadline = clock.monotonic() + deadline_s

    def record(state: RetryCallState) -> None:
        if on_retry is not None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            on_retry(error if isinstance(error, ExchangeError) else None, wait)

    return AsyncRetrying(
        retry=retry_if_exception_type(retry_on) & retry_if_not_exception_type(never_on),
        stop=stop_after_attempt(attempts) | _PastDeadline(clock, deadline),
        wait=backoff(rate_limit_wait_s),
        sleep=clock.sleep,
        before_sleep=record,
        reraise=True,
    )
