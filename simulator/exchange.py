"""The exchange: places, matches, cancels and reports orders against the seeded market,
on the clock's time. No HTTP here: the wire layer calls these methods.

Rules a client can observe:

- Time. The market moves only as the clock does. Every method first calls `sync()`,
  which walks from the last processed instant to the clock's now, minute by minute,
  firing triggers and filling orders on each minute's low and high. The walk is also
  cut exactly at every event: a price gap, an order's start or expiry time, a dead
  man's switch (CancelAllOrdersAfter) running out.
- Funds. A resting limit order holds what it may spend: the base volume of a sell, or
  volume x limit price plus the highest taker fee of a buy. Available = balance - holds.
  Stop-loss, take-profit and trailing-stop orders hold NOTHING while untriggered, so a
  stop-loss and a take-profit may both protect the same whole position. Each is
  checked against the available funds when placed; when one fires and the funds are
  gone (its sibling already sold them) it is canceled with reason "Insufficient funds".
- Fills. Market orders, marketable limits and fired stops take liquidity at the market
  price plus spread and size-dependent slippage, paying the taker fee. A resting limit
  fills at its own price once the market trades through it, paying the maker fee. How
  much of an order fills at each chance is the fill model's (default: all of it); an
  order filled in part stays open and fills further at later chances. Fees are the fee
  model's (default: the pair's tier for the account's 30-day USD volume), charged in
  the quote currency, or in the base currency with the fcib flag.
- Stops first. When one stretch of matching reaches both a stop and another order
  (a position's take-profit, say), the stop is matched first: the order of prices
  inside a stretch is unknown, and the worst case is the only safe assumption.
- Gaps. `add_price_gap` makes the market jump; a stop the gap jumps over fires at the
  gapped price, not at its own.
- Ids. Txids and trade ids are unique for the life of the exchange's state, across
  resets, as Kraken's are (a random id space is drawn at creation and at each reset);
  with `fixed_ids` they derive from the seed and a serial number alone. Fills and
  prices never depend on ids: the same seed and requests give the same fills.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal

from core.domain.clock import Clock, SkippableSystemClock, VirtualClock
from simulator.exceptions import (
    InvalidArguments,
    InvalidOrder,
    PermissionDenied,
)
from simulator.exchange_base import DEFAULT_ACCOUNT, DEFAULT_BALANCES, MAX_ADVANCE
from simulator.fill_models import (
    FeeModel,
    FillModel,
    LatencyModel,
)
from simulator.history import NO_HISTORY, History
from simulator.models import (
    ExchangeState,
    Order,
    OrderStatus,
    PriceGap,
    PriceShape,
    StatusChange,
    SystemStatus,
)
from simulator.order_book import OrderBook
from simulator.order_index import OrderIndex
from simulator.pairs import PAIRS
from simulator.price_path import (
    PricePath,
)


class Exchange(OrderBook):
    """One exchange: its accounts and orders (`state`), its market (a price path per
    pair), its clock, and its models of fills, latency and fees. `paths` replaces the
    seeded market of the pairs it names, e.g. by recorded candles; the other pairs
    keep theirs. Built from its parts, one on another: accounts, market data, the
    matching engine, the order book; here what moves or resets the whole of it."""

    @classmethod
    def create(
        cls,
        clock: Clock,
        *,
        seed: int = 42,
        balances: Mapping[str, Decimal] | None = None,
        paths: Mapping[str, PricePath] | None = None,
        fills: FillModel | None = None,
        latency: LatencyModel | None = None,
        fees: FeeModel | None = None,
        fixed_ids: bool = False,
    ) -> Exchange:
        """A fresh exchange opening at the clock's time, with one funded account;
        `paths` as in the constructor. Its ids are unique for the life of its state,
        or with `fixed_ids` the same for the same seed and requests (for tests)."""
        now = clock.time()
        initial = dict(DEFAULT_BALANCES if balances is None else balances)
        state = ExchangeState(
            seed=seed,
            origin=now,
            processed_until=now,
            initial_balances=initial,
        )
        if fixed_ids:
            state.id_space = ""
        exchange = cls(state, clock, paths, fills=fills, latency=latency, fees=fees)
        exchange._open(DEFAULT_ACCOUNT, initial, now)
        return exchange

    def advance(self, seconds: float) -> None:
        """Move the sandbox's own clock forward and let the market catch up."""
        clock = self._clock
        if not isinstance(clock, (VirtualClock, SkippableSystemClock)):
            raise PermissionDenied()
        if not 0 <= seconds <= MAX_ADVANCE:
            raise InvalidArguments("seconds")
        clock.advance(seconds)
        self.sync()

    def reset(self) -> None:
        """Back to the opening balances with no orders, trades, nonces, timers, or gaps
        and price shapes still to come. Keeps the seed, the API keys, the time and the
        gaps and shapes the market already went through: the clock never runs backwards, the market is a function
        of time, and what it published (trades, candles) stays published."""
        state = self._state
        now = self.now()
        state.orders.clear()
        self._index = OrderIndex()
        state.trades.clear()
        state.ledger.clear()
        self._history = NO_HISTORY
        state.renew_history()
        state.next_serial = 0
        state.ledger_serial = 0
        state.renew_id_space()  # ids handed out before the reset are never handed out again
        for account in list(state.accounts):
            self._open(account, state.initial_balances, now)
        for api_key in state.api_keys.values():
            api_key.last_nonce = 0
        state.gaps[:] = [gap for gap in state.gaps if gap.at <= now]
        state.shapes[:] = [shape for shape in state.shapes if shape.at <= now]
        state.dead_man.clear()
        state.requests = 0
        state.processed_until = now
        self._paths = self._with_gaps()

    def add_price_gap(self, at: float, pct: Decimal) -> None:
        """From time `at` on, the market trades `pct` percent away from its path (say
        Decimal(-8) for a drop of 8%). A stop the gap jumps over fires at the gapped
        price. `at` may not lie before the time already matched."""
        self.sync()
        if at < self._state.processed_until or not pct.is_finite() or pct <= -100:
            raise InvalidArguments("at" if pct.is_finite() and pct > -100 else "pct")
        self._state.gaps.append(PriceGap(at=at, pct=pct))
        self._paths = self._with_gaps()

    def add_price_shape(self, shape: PriceShape) -> None:
        """Lay `shape` over the market (simulator.price_shapes). It may not start before
        the time already matched: what was traded stays traded. One dated in the moment
        this call matches (from now, on a running clock) starts as it is laid."""
        matched = self._state.processed_until
        self.sync()
        if shape.at < matched:
            raise InvalidArguments("at")
        shape = replace(shape, at=max(shape.at, self._state.processed_until))
        if shape.pair is not None and shape.pair not in PAIRS:
            raise InvalidArguments("pair")
        self._state.shapes.append(shape)
        self._paths = self._with_gaps()

    def force_fill(self, txid: str, volume: Decimal | None = None, price: Decimal | None = None) -> Order:
        """Fill `volume` (default: all that is left) of the live order `txid` now, at
        `price` (default: a resting limit's own price as maker, else the market's as
        taker), whatever the market does: the fill a test wants to see next."""
        self.sync()
        order = self._state.orders.get(txid)
        if order is None or not order.is_live:
            raise InvalidOrder()
        remaining = order.remaining
        volume = remaining if volume is None else volume
        if not 0 < volume <= remaining:
            raise InvalidArguments("volume")
        limit = order.resting_limit
        maker = price is None and limit is not None
        if price is None:
            price = limit if limit is not None else self._market_fill(order, self.price(PAIRS[order.spec.pair]))
        if price <= 0:
            raise InvalidArguments("price")
        order.triggered = order.triggered or order.spec.ordertype.is_trigger
        if order.status is OrderStatus.PENDING:
            order.status = OrderStatus.OPEN
        self._execute(order, volume, price, self.now(), maker=maker)
        return order

    def set_system_status(self, status: SystemStatus) -> None:
        """Switch the trading mode (simulator.system_status). The market up to now is
        matched under the mode it had: the change acts from now on."""
        self.sync()
        self._state.system_status = status

    def schedule_system_status(self, at: float, status: SystemStatus) -> None:
        """The mode becomes `status` at `at` on the exchange's clock (a scenario's
        status event); orders match under each mode in its own stretch."""
        self.sync()
        if at < self._state.processed_until:
            raise InvalidArguments("at")
        self._state.status_changes.append(StatusChange(at, status))
        self._state.status_changes.sort(key=lambda change: change.at)

    def keep_history_in(self, history: History) -> None:
        """`history` now holds what the exchange settled, traded and posted (its state
        was just saved there): memory keeps the live orders only."""
        state = self._state
        self._history = history
        for txid in [txid for txid, order in state.orders.items() if not order.is_live]:
            del state.orders[txid]
        state.trades.clear()
        state.ledger.clear()
        self._index.keep_live_only()

    @contextmanager
    def using(self, *, fills: FillModel | None = None) -> Iterator[None]:
        """Another fill model for the duration of the block (one call a fault hits)."""
        if fills is None:
            yield
            return
        kept, self._fills = self._fills, fills
        try:
            yield
        finally:
            self._fills = kept

    @property
    def fill_model(self) -> FillModel:
        return self._fills
