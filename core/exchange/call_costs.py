"""What calls to the exchange cost in waiting: totals over a client's life, and per
caller through measure(), so an execution (or one stress request) reports its own
retries and rate-limit waits, not those of other tasks sharing the client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class CallCosts:
    retries: int = 0
    retry_wait_s: float = 0.0
    rate_limit_waits: int = 0
    """Calls the rate limiter held back."""
    rate_limit_wait_s: float = 0.0
    rate_limit_errors: int = 0
    """Rate-limit refusals the exchange answered (each one risks the key's standing)."""


class CostLedger:
    """Counts into the totals and into every measure() open in the current context.

    A measure follows the asyncio task that opened it and the tasks that task starts
    (they inherit its context), which is what "the calls of this caller" means.
    """

    def __init__(self) -> None:
        self.totals = CallCosts()
        self._open: ContextVar[tuple[CallCosts, ...]] = ContextVar(f"call_costs_{id(self)}", default=())

    @contextmanager
    def measure(self) -> Iterator[CallCosts]:
        costs = CallCosts()
        token = self._open.set((*self._open.get(), costs))
        try:
            yield costs
        finally:
            self._open.reset(token)

    def retried(self, wait_s: float) -> None:
        for costs in self._counting():
            costs.retries += 1
            costs.retry_wait_s += wait_s

    def held_back(self, wait_s: float) -> None:
        for costs in self._counting():
            costs.rate_limit_waits += 1
            costs.rate_limit_wait_s += wait_s

    def refused(self) -> None:
        for costs in self._counting():
            costs.rate_limit_errors += 1

    def _counting(self) -> tuple[CallCosts, ...]:
        return (self.totals, *self._open.get())
