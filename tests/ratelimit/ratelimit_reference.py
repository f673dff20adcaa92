"""Reference models the limiters are checked against, written from the documents
(a token bucket's definition, Kraken's counter rules), independent of core.exchange.ratelimit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Kraken's tables, copied from docs.kraken.com rather than imported: a typo in the
# limiter's copy must fail a test, not agree with itself.
KRAKEN_REST = {"starter": (15, 0.33), "intermediate": (20, 0.5), "pro": (20, 1.0)}
KRAKEN_TRADING = {"starter": (60, 1.0), "intermediate": (125, 2.34), "pro": (180, 3.75)}


def counter_peaks(grants: Sequence[tuple[float, float]], decay_per_s: float) -> list[float]:
    """Kraken's counter just after each (time, increment), decaying continuously, never below 0."""
    peaks: list[float] = []
    counter, last = 0.0, 0.0
    for at, increment in sorted(grants, key=lambda grant: grant[0]):
        counter = max(0.0, counter - (at - last) * decay_per_s) + increment
        last = at
        peaks.append(counter)
    return peaks


def counter_at(grants: Sequence[tuple[float, float]], decay_per_s: float, at: float) -> float:
    """The same counter at time `at`, after all of `grants`."""
    counter, last = 0.0, 0.0
    for granted_at, increment in sorted(grants, key=lambda grant: grant[0]):
        counter = max(0.0, counter - (granted_at - last) * decay_per_s) + increment
        last = granted_at
    return max(0.0, counter - (at - last) * decay_per_s)


def fastest_finish(costs: Sequence[float], maximum: float, decay_per_s: float) -> float:
    """When the exchange would let the last of `costs` (all ready at 0, in order) through
    at the earliest, the counter never going above `maximum`."""
    counter, now = 0.0, 0.0
    for cost in costs:
        wait = max(0.0, (counter + cost - maximum) / decay_per_s)
        counter = max(0.0, counter - wait * decay_per_s) + cost
        now += wait
    return now


@dataclass(frozen=True)
class Request:
    arrival: float
    tokens: float


def fifo_bucket_grants(requests: Sequence[Request], rate: float, capacity: float) -> list[float]:
    """Grant times of a full-at-start token bucket serving `requests` in the given order,
    each as soon as it and everything before it can be served."""
    grants: list[float] = []
    tokens, last = capacity, 0.0
    for request in requests:
        now = max(request.arrival, last)
        tokens = min(capacity, tokens + (now - last) * rate)
        if tokens < request.tokens:
            now += (request.tokens - tokens) / rate
            tokens = request.tokens
        tokens -= request.tokens
        last = now
        grants.append(now)
    return grants
