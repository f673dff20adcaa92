"""The pair and age of orders a client may cancel: Kraken charges a cancel on the
order's pair, with a penalty that shrinks as the order ages, so the client must know
both before it sends one.

The age is known only for orders this client placed, from its own clock at the
acknowledgement (never earlier than the exchange's own opening time, so the age is
never overestimated and the penalty never underestimated). Orders seen only in
listings have a known pair and an unknown age, which is charged as the youngest.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.domain.clock import Clock

LIVE_STATUSES = frozenset({"pending", "open"})


@dataclass(frozen=True)
class _Known:
    pair: str
    """Kraken pair key."""
    placed_at: float | None
    """The client clock's monotonic reading at the acknowledgement; None: placed elsewhere."""
    names: tuple[str, ...]
    """txid, then the client order id if any."""


@dataclass(frozen=True)
class OrderCharge:
    """Where and how old: what the trading counter needs to price a cancel."""

    pair: str
    age_s: float | None


class OrderAges:
    """Orders by every name a cancel may use for them: txid and client order id."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._by_name: dict[str, _Known] = {}

    def placed(self, pair: str, txid: str, cl_ord_id: str | None) -> None:
        self._remember(pair, self._clock.monotonic(), txid, cl_ord_id)

    def seen(self, pair: str, txid: str, cl_ord_id: str | None, status: str) -> None:
        """An order in a listing: remembered while live (keeping a known age), forgotten once done."""
        if status not in LIVE_STATUSES:
            self.forget(txid)
        elif txid not in self._by_name:
            self._remember(pair, None, txid, cl_ord_id)

    def charge(self, name: str) -> OrderCharge | None:
        known = self._by_name.get(name)
        if known is None:
            return None
        age = None if known.placed_at is None else max(0.0, self._clock.monotonic() - known.placed_at)
        return OrderCharge(known.pair, age)

    def forget(self, name: str) -> None:
        known = self._by_name.get(name)
        for alias in known.names if known is not None else ():
            self._by_name.pop(alias, None)

    def _remember(self, pair: str, placed_at: float | None, txid: str, cl_ord_id: str | None) -> None:
        known = _Known(pair, placed_at, (txid,) if cl_ord_id is None else (txid, cl_ord_id))
        for name in known.names:
            self._by_name[name] = known
