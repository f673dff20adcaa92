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

import base64
import math
import random
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from core.domain.clock import Clock, SkippableSystemClock, VirtualClock
from simulator.exceptions import (
    CostMinimumNotMet,
    DuplicateOrder,
    InsufficientFunds,
    InvalidArguments,
    InvalidKey,
    InvalidOrder,
    KrakenError,
    OrderMinimumNotMet,
    PermissionDenied,
    UnknownOrder,
)
from simulator.fill_models import (
    FeeModel,
    FillModel,
    FullFills,
    LatencyModel,
    NoLatency,
    TieredFees,
)
from simulator.market_data import Book, PublicTrade, order_book, recent_trades
from simulator.matching import (
    limit_crosses,
    limit_reached,
    market_fill_price,
    quote,
    trigger_fired,
    trigger_reference,
)
from simulator.models import (
    Account,
    ApiKey,
    ExchangeState,
    Order,
    OrderFlag,
    OrderSpec,
    OrderStatus,
    OrderType,
    PriceGap,
    Side,
    TimeInForce,
    Trade,
)
from simulator.pairs import ASSETS, PAIRS, USD_QUOTES, Asset, Pair
from simulator.price_path import (
    DAY,
    HOUR,
    MINUTE,
    Bar,
    GappedPricePath,
    PricePath,
    synthetic_paths,
)

DEFAULT_ACCOUNT = "default"
DEFAULT_BALANCES = {"ZUSD": Decimal("100000"), "USDT": Decimal("100000")}
OHLC_INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})
OHLC_ENTRIES = 720
CLOSED_ORDERS_PAGE = 50
MAX_ADVANCE = 366 * DAY
"""The longest single step of the sandbox's clock: its market is made for a few years."""
MAX_DEAD_MAN_TIMEOUT = 86_400
_FEE_WINDOW = 30 * DAY
_WORST_NOISE = Decimal(1)

ClosedTime = Literal["open", "close", "both"]


@dataclass(frozen=True)
class Ticker:
    ask: Decimal
    bid: Decimal
    last: Decimal
    today: Bar
    """Since midnight UTC."""
    last_24h: Bar


@dataclass(frozen=True)
class TradeBalance:
    """An account's worth in one asset, as Kraken's TradeBalance reports it for spot."""

    asset: Asset
    equivalent: Decimal
    """Every balance valued in `asset`."""
    unexecuted: Decimal
    """What the open orders would still trade, valued in `asset`."""


class Exchange:
    """One exchange: its accounts and orders (`state`), its market (a price path per
    pair), its clock, and its models of fills, latency and fees. `paths` replaces the
    seeded market of the pairs it names, e.g. by recorded candles; the other pairs
    keep theirs."""

    def __init__(
        self,
        state: ExchangeState,
        clock: Clock,
        paths: Mapping[str, PricePath] | None = None,
        *,
        fills: FillModel | None = None,
        latency: LatencyModel | None = None,
        fees: FeeModel | None = None,
    ) -> None:
        self._state = state
        self._clock = clock
        self._plain_paths = synthetic_paths(state.seed, PAIRS.values(), state.origin)
        self._plain_paths.update(paths or {})
        self._paths = self._with_gaps()
        self._fills: FillModel = fills or FullFills()
        self._latency: LatencyModel = latency or NoLatency()
        self._fees: FeeModel = fees or TieredFees()
        self._spawned: list[Order] = []

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
            accounts={DEFAULT_ACCOUNT: Account(dict(initial))},
        )
        if fixed_ids:
            state.id_space = ""
        return cls(state, clock, paths, fills=fills, latency=latency, fees=fees)

    @property
    def state(self) -> ExchangeState:
        return self._state

    @property
    def clock(self) -> Clock:
        return self._clock

    def now(self) -> float:
        return self._clock.time()

    # --- keys -------------------------------------------------------------------

    def create_api_key(self, account: str = DEFAULT_ACCOUNT) -> ApiKey:
        """A new key pair for `account` (opened with the initial balances if new)."""
        if account not in self._state.accounts:
            self._state.accounts[account] = Account(dict(self._state.initial_balances))
        api_key = ApiKey(
            key=base64.b64encode(secrets.token_bytes(42)).decode(),
            secret=base64.b64encode(secrets.token_bytes(64)).decode(),
            account=account,
        )
        self._state.api_keys[api_key.key] = api_key
        return api_key

    def api_key(self, key: str) -> ApiKey:
        try:
            return self._state.api_keys[key]
        except KeyError:
            raise InvalidKey() from None

    # --- time -------------------------------------------------------------------

    def sync(self) -> None:
        """Match the live orders against the market up to the clock's now."""
        now = self.now()
        state = self._state
        live = [order for order in state.orders.values() if order.is_live]
        start = state.processed_until
        while live and start < now:
            event = self._next_event(live, start, now)
            hour_end = float((math.floor(start / HOUR) + 1) * HOUR)
            if hour_end <= event and self._quiet(live, start, hour_end):
                end = hour_end
                self._follow(live, start, end)
            else:
                end = min(event, float((math.floor(start / MINUTE) + 1) * MINUTE))
                self._match_segment(live, start, end)
            start = end
            self._timers(live, start)
            live = [order for order in live if order.is_live] + self._take_spawned()
        self._timers(live, now)
        self._take_spawned()
        state.processed_until = max(state.processed_until, now)

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
        """Back to the opening balances with no orders, trades, nonces, gaps or timers.
        Keeps the seed, the API keys and the time: the clock never runs backwards, and
        the market is a function of time."""
        state = self._state
        for account in state.accounts.values():
            account.balances = dict(state.initial_balances)
        for api_key in state.api_keys.values():
            api_key.last_nonce = 0
        state.orders.clear()
        state.trades.clear()
        state.gaps.clear()
        state.dead_man.clear()
        state.next_serial = 0
        state.renew_id_space()  # ids handed out before the reset are never handed out again
        state.requests = 0
        state.processed_until = self.now()
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

    def _with_gaps(self) -> dict[str, PricePath]:
        gaps = [(gap.at, gap.pct) for gap in self._state.gaps]
        if not gaps:
            return dict(self._plain_paths)
        return {key: GappedPricePath(path, PAIRS[key], gaps) for key, path in self._plain_paths.items()}

    # --- market data ------------------------------------------------------------

    def price(self, pair: Pair) -> Decimal:
        return self._paths[pair.key].price_at(self.now())

    def ticker(self, pair: Pair) -> Ticker:
        now = self.now()
        path = self._paths[pair.key]
        last = path.price_at(now)
        book = quote(pair, last)
        return Ticker(
            ask=book.ask,
            bid=book.bid,
            last=last,
            today=path.candles(DAY // MINUTE, now, now)[0],
            last_24h=_summarize(path.candles(60, now - DAY, now)),
        )

    def ohlc(self, pair: Pair, interval: int, since: int | None) -> tuple[list[Bar], int]:
        """Up to 720 candles, oldest first, newer than `since`; and the time of the last
        committed (closed) candle, for the next poll's `since`."""
        if interval not in OHLC_INTERVALS:
            raise InvalidArguments("interval")
        now = self.now()
        step = interval * MINUTE
        current = math.floor(now / step) * step
        first = current - (OHLC_ENTRIES - 1) * step
        if since is not None:
            first = max(first, (math.floor(since / step) + 1) * step)
        return self._paths[pair.key].candles(interval, first, now), current - step

    def depth(self, pair: Pair, count: int) -> Book:
        return order_book(self._state.seed, pair, self.price(pair), self.now(), count)

    def public_trades(self, pair: Pair, since: float | None, count: int) -> list[PublicTrade]:
        return recent_trades(self._state.seed, pair, self._paths[pair.key], self.now(), since, count)

    # --- account ----------------------------------------------------------------

    def balance(self, account: str) -> dict[str, Decimal]:
        self.sync()
        return dict(self._state.accounts[account].balances)

    def holds(self, account: str) -> dict[str, Decimal]:
        """What the open orders hold of each asset the account has."""
        self.sync()
        return {asset: self._held(account, asset, None) for asset in self._state.accounts[account].balances}

    def trade_balance(self, account: str, asset: Asset) -> TradeBalance:
        self.sync()
        now = self.now()
        unit = self._usd_price(asset.id, now)
        worth = sum(
            (amount * self._usd_price(name, now) for name, amount in self._state.accounts[account].balances.items()),
            Decimal(0),
        )
        unexecuted = Decimal(0)
        for order in self._orders_of(account):
            if order.is_live:
                pair = PAIRS[order.spec.pair]
                price = order.resting_limit or order.stop_price or self.price(pair)
                unexecuted += order.remaining * price * self._usd_price(pair.quote, now)
        return TradeBalance(asset, (worth / unit).quantize(asset.unit), (unexecuted / unit).quantize(asset.unit))

    # --- orders -----------------------------------------------------------------

    def add_order(self, account: str, spec: OrderSpec, *, validate: bool = False) -> Order | None:
        """Place an order, or with `validate` only check it. Raises the Kraken error
        the order would be refused with."""
        self._request("AddOrder")
        return self._place(account, spec, validate=validate)

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

    def add_orders(
        self, account: str, specs: list[OrderSpec], *, validate: bool = False
    ) -> list[Order | KrakenError | None]:
        """AddOrderBatch: each order placed (None if only validated) or refused with
        its own error."""
        self._request("AddOrderBatch")
        placed: list[Order | KrakenError | None] = []
        for spec in specs:
            try:
                placed.append(self._place(account, spec, validate=validate))
            except (InsufficientFunds, OrderMinimumNotMet, CostMinimumNotMet) as exc:
                placed.append(exc)
        return placed

    def check_order(self, account: str, spec: OrderSpec) -> None:
        """Refuse `spec` as AddOrder would, short of funds and minimums."""
        self.sync()
        pair = PAIRS[spec.pair]
        self._check_form(account, pair, spec, excluding=None)

    def _place(self, account: str, spec: OrderSpec, *, validate: bool) -> Order | None:
        pair = PAIRS[spec.pair]
        now = self.now()
        market = self._paths[pair.key].price_at(now)
        spec = self._in_base_volume(spec, pair, market)
        self._check(account, pair, spec, market, excluding=None)
        if validate:
            return None
        order = Order(
            txid=self._state.new_id("O"),
            account=account,
            spec=spec,
            opentm=now,
            serial=self._state.next_serial,
        )
        self._state.orders[order.txid] = order
        if spec.starttm is not None and spec.starttm > now:
            order.status = OrderStatus.PENDING
        else:
            self._arrive(order, market, now)
        return order

    def cancel_order(self, account: str, *, txid: str | None = None, cl_ord_id: str | None = None) -> int:
        """Cancel the live orders named by `cl_ord_id`, or by `txid`, which Kraken lets
        be a txid, a userref or a cl_ord_id. Returns how many were canceled."""
        self._request("CancelOrder")
        live = self._named(account, txid, cl_ord_id)
        if not live:
            raise UnknownOrder()
        for order in live:
            self._close(order, OrderStatus.CANCELED, self.now(), "User requested")
        return len(live)

    def cancel_orders(self, account: str, names: list[str]) -> int:
        """CancelOrderBatch: cancel every live order each name (txid, userref or
        cl_ord_id) names; how many were canceled."""
        self._request("CancelOrderBatch")
        canceled = 0
        for name in names:
            for order in self._named(account, name, None):
                self._close(order, OrderStatus.CANCELED, self.now(), "User requested")
                canceled += 1
        return canceled

    def cancel_all(self, account: str) -> int:
        self._request("CancelAll")
        live = [o for o in self._orders_of(account) if o.is_live]
        for order in live:
            self._close(order, OrderStatus.CANCELED, self.now(), "User requested")
        return len(live)

    def cancel_all_after(self, account: str, timeout: int) -> float | None:
        """Arm (or with 0 disarm) the dead man's switch: when `timeout` seconds pass
        without another call, every order of the account is canceled. Returns when."""
        if not 0 <= timeout <= MAX_DEAD_MAN_TIMEOUT:
            raise InvalidArguments("timeout")
        self._request("CancelAllOrdersAfter")
        if timeout == 0:
            self._state.dead_man.pop(account, None)
            return None
        trigger = self.now() + timeout
        self._state.dead_man[account] = trigger
        return trigger

    def amend_order(
        self,
        account: str,
        *,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        order_qty: Decimal | None = None,
        limit_price: Decimal | None = None,
        trigger_price: Decimal | None = None,
        post_only: bool = False,
    ) -> str:
        """Change a live order in place (same txid). Returns the amend id."""
        self._request("AmendOrder")
        order = self.live_order(account, txid=txid, cl_ord_id=cl_ord_id)
        spec = order.spec
        pair = PAIRS[spec.pair]
        changes: dict[str, object] = {}
        if order_qty is not None:
            if _decimals(order_qty) > pair.lot_decimals:
                raise InvalidArguments("order_qty")
            changes["volume"] = max(order_qty, order.vol_exec)
        if limit_price is not None:
            if _decimals(limit_price) > pair.pair_decimals:
                raise InvalidArguments("limit_price")
            if spec.ordertype is OrderType.LIMIT:
                changes["price"] = limit_price
            elif spec.ordertype.limit_after_trigger:
                changes["price2"] = limit_price
            else:
                raise InvalidArguments("limit_price")
        if trigger_price is not None:
            if (
                not spec.ordertype.is_trigger
                or spec.trailing is not None
                or order.triggered
                or _decimals(trigger_price) > pair.pair_decimals
            ):
                raise InvalidArguments("trigger_price")
            changes["price"] = trigger_price
        amended = replace(spec, **changes)  # type: ignore[arg-type]
        now = self.now()
        market = self._paths[pair.key].price_at(now)
        limit = amended.price if amended.ordertype is OrderType.LIMIT else (amended.price2 if order.triggered else None)
        if post_only and limit is not None and limit_crosses(spec.side, limit, quote(pair, market)):
            raise InvalidOrder()
        if (
            amended.volume - order.vol_exec > 0
            and limit is not None
            and not self._can_pay(account, pair, spec.side, amended.volume - order.vol_exec, limit, order, amended)
        ):
            raise InsufficientFunds()
        order.spec = amended
        order.amended = True
        if order.remaining <= 0:
            self._close(order, OrderStatus.CLOSED, now, None)
        elif limit is not None and order.status is OrderStatus.OPEN:
            self._enter_limit(order, limit, market, now)
        elif order.status is OrderStatus.OPEN:
            self._match(order, market, market, market, now)
        return self._state.new_id("T")

    def edit_order(
        self,
        account: str,
        txid: str,
        pair: Pair,
        *,
        volume: Decimal | None,
        price: Decimal | None,
        price2: Decimal | None,
        oflags: tuple[OrderFlag, ...] | None,
        userref: int | None,
        validate: bool = False,
    ) -> tuple[Order, Order | None]:
        """Replace a live, untriggered order without conditional close by a new one
        (a new txid) for the volume still to fill. Returns the old and the new."""
        self._request("EditOrder")
        old = self.live_order(account, txid=txid)
        if old.spec.pair != pair.key:
            raise InvalidArguments("pair")
        if old.triggered or old.spec.close is not None or old.spec.ordertype is OrderType.MARKET:
            raise InvalidOrder()
        total = old.spec.volume if volume is None else volume
        if total <= old.vol_exec:
            raise InvalidArguments("volume")
        spec = replace(
            old.spec,
            volume=total - old.vol_exec,
            price=old.spec.price if price is None else price,
            price2=old.spec.price2 if price2 is None else price2,
            oflags=old.spec.oflags if oflags is None else oflags,
            userref=old.spec.userref if userref is None else userref,
        )
        now = self.now()
        market = self._paths[pair.key].price_at(now)
        self._check(account, pair, spec, market, excluding=old)
        if validate:
            return old, None
        self._close(old, OrderStatus.CANCELED, now, "Order replaced")
        new = Order(
            txid=self._state.new_id("O"), account=account, spec=spec, opentm=now, serial=self._state.next_serial
        )
        self._state.orders[new.txid] = new
        if old.status is OrderStatus.PENDING:
            new.status = OrderStatus.PENDING
        else:
            self._arrive(new, market, now)
        return old, new

    def query_orders(
        self, account: str, txids: list[str] | None, *, userref: int | None = None, cl_ord_id: str | None = None
    ) -> list[Order]:
        self.sync()
        if txids is None:
            orders = self._orders_of(account)
        else:
            orders = []
            for txid in txids:
                order = self._state.orders.get(txid)
                if order is None or order.account != account:
                    raise InvalidOrder()
                orders.append(order)
        return _filter(orders, userref, cl_ord_id)

    def open_orders(self, account: str, *, userref: int | None = None, cl_ord_id: str | None = None) -> list[Order]:
        self.sync()
        return _filter([o for o in self._orders_of(account) if o.is_live], userref, cl_ord_id)

    def closed_orders(
        self,
        account: str,
        *,
        userref: int | None = None,
        cl_ord_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
        closetime: ClosedTime = "both",
        offset: int = 0,
    ) -> tuple[list[Order], int]:
        """One page of closed, canceled and expired orders, newest first, and how many
        match in all."""
        self.sync()
        done = _filter([o for o in self._orders_of(account) if not o.is_live], userref, cl_ord_id)

        def in_window(order: Order) -> bool:
            times = [order.opentm, order.closetm]
            chosen = {"open": times[:1], "close": times[1:], "both": times}[closetime]
            return any(t is not None and (start is None or t > start) and (end is None or t <= end) for t in chosen)

        matching = sorted((o for o in done if in_window(o)), key=lambda o: o.closetm or o.opentm, reverse=True)
        return matching[offset : offset + CLOSED_ORDERS_PAGE], len(matching)

    def order(self, txid: str) -> Order | None:
        return self._state.orders.get(txid)

    def trades_history(
        self, account: str, *, start: float | None = None, end: float | None = None, offset: int = 0
    ) -> tuple[list[Trade], int]:
        """One page of the account's trades, newest first, and how many match in all."""
        self.sync()
        matching = [
            t
            for t in self._state.trades.values()
            if t.account == account and (start is None or t.time > start) and (end is None or t.time <= end)
        ]
        matching.sort(key=lambda t: (t.time, t.serial), reverse=True)
        return matching[offset : offset + CLOSED_ORDERS_PAGE], len(matching)

    def query_trades(self, account: str, ids: list[str]) -> list[Trade]:
        self.sync()
        found = []
        for trade_id in ids:
            trade = self._state.trades.get(trade_id)
            if trade is None or trade.account != account:
                raise InvalidArguments("txid")
            found.append(trade)
        return found

    # --- placement checks -------------------------------------------------------

    def _in_base_volume(self, spec: OrderSpec, pair: Pair, market: Decimal) -> OrderSpec:
        """A viqc order's volume is quote currency: turn it into the base volume it
        buys or sells at the worst fill the market allows now."""
        if OrderFlag.VIQC not in spec.oflags:
            return spec
        if spec.ordertype is not OrderType.MARKET:
            raise InvalidArguments("oflags")
        if _decimals(spec.volume) > ASSETS[pair.quote].decimals:
            raise InvalidArguments("volume")
        estimate = spec.volume / market
        worst = market_fill_price(pair, spec.side, estimate, market, _WORST_NOISE)
        return replace(spec, volume=(spec.volume / worst).quantize(pair.lot_size, ROUND_DOWN))

    def _check_form(self, account: str, pair: Pair, spec: OrderSpec, excluding: Order | None) -> None:
        for name, price in (("price", spec.price), ("price2", spec.price2)):
            if price is not None and _decimals(price) > pair.pair_decimals:
                raise InvalidArguments(name)
        if OrderFlag.VIQC not in spec.oflags and _decimals(spec.volume) > pair.lot_decimals:
            raise InvalidArguments("volume")
        if spec.ordertype is OrderType.TRAILING_STOP:
            if spec.trailing is None:
                raise InvalidArguments("price")
        elif spec.ordertype is not OrderType.MARKET and spec.price is None:
            raise InvalidArguments("price")
        if spec.ordertype.limit_after_trigger and spec.price2 is None:
            raise InvalidArguments("price2")
        if OrderFlag.POST in spec.oflags and spec.ordertype is not OrderType.LIMIT:
            raise InvalidArguments("oflags")
        if OrderFlag.FCIB in spec.oflags and OrderFlag.FCIQ in spec.oflags:
            raise InvalidArguments("oflags")
        if spec.timeinforce is TimeInForce.GTD and spec.expiretm is None:
            raise InvalidArguments("expiretm")
        if spec.expiretm is not None and spec.expiretm <= self.now():
            raise InvalidArguments("expiretm")
        if spec.cl_ord_id is not None and any(
            o.is_live and o is not excluding and o.spec.cl_ord_id == spec.cl_ord_id for o in self._orders_of(account)
        ):
            raise DuplicateOrder()

    def _check(self, account: str, pair: Pair, spec: OrderSpec, market: Decimal, excluding: Order | None) -> None:
        self._check_form(account, pair, spec, excluding)
        if spec.volume < pair.ordermin:
            raise OrderMinimumNotMet()
        spend_price = _spend_price(spec, pair, market)
        if spec.volume * spend_price < pair.costmin:
            raise CostMinimumNotMet()
        if not self._can_pay(account, pair, spec.side, spec.volume, spend_price, excluding, spec):
            raise InsufficientFunds()

    def _can_pay(
        self,
        account: str,
        pair: Pair,
        side: Side,
        volume: Decimal,
        price: Decimal,
        excluding: Order | None,
        spec: OrderSpec,
    ) -> bool:
        fee = 1 + _highest_taker_fee(pair)
        if side is Side.BUY:
            return self._available(account, pair.quote, excluding) >= volume * price * fee
        need = volume * fee if OrderFlag.FCIB in spec.oflags else volume
        return self._available(account, pair.base, excluding) >= need

    def _available(self, account: str, asset: str, excluding: Order | None) -> Decimal:
        balance = self._state.accounts[account].balances.get(asset, Decimal(0))
        return balance - self._held(account, asset, excluding)

    def _held(self, account: str, asset: str, excluding: Order | None) -> Decimal:
        held = Decimal(0)
        for order in self._orders_of(account):
            limit = order.resting_limit
            if order is excluding or limit is None:
                continue
            pair = PAIRS[order.spec.pair]
            if order.spec.side is Side.BUY and pair.quote == asset:
                held += order.remaining * limit * (1 + _highest_taker_fee(pair))
            elif order.spec.side is Side.SELL and pair.base == asset:
                held += order.remaining
        return held

    def _request(self, endpoint: str) -> None:
        """An order-entry request arrives: on the sandbox's own clock it takes the
        latency model's time (the market moves meanwhile), then the market catches up."""
        self._state.requests += 1
        rng = random.Random(f"{self._state.seed}:latency:{self._state.requests}")
        delay = self._latency.delay(rng, endpoint)
        if delay > 0 and isinstance(self._clock, VirtualClock):
            self._clock.advance(delay)
        self.sync()

    def _named(self, account: str, txid: str | None, cl_ord_id: str | None) -> list[Order]:
        """The live orders a cancel names: by `cl_ord_id`, or by `txid`, which may be a
        txid, a userref or a cl_ord_id."""
        orders = self._orders_of(account)
        if cl_ord_id is not None or txid is None:
            named = [o for o in orders if o.spec.cl_ord_id == cl_ord_id]
        elif txid in self._state.orders:
            named = [o for o in orders if o.txid == txid]
        elif re.fullmatch(r"-?\d+", txid):
            named = [o for o in orders if o.spec.userref == int(txid)]
        else:
            named = [o for o in orders if o.spec.cl_ord_id == txid]
        return [o for o in named if o.is_live]

    def live_order(self, account: str, *, txid: str | None = None, cl_ord_id: str | None = None) -> Order:
        """The one live order `txid` (a txid, userref or cl_ord_id) or `cl_ord_id`
        names; EOrder:Unknown order if none, Invalid arguments if several."""
        self.sync()
        named = self._named(account, txid, cl_ord_id)
        if not named:
            raise UnknownOrder()
        if len(named) > 1:
            raise InvalidArguments("txid")
        return named[0]

    # --- matching ---------------------------------------------------------------

    def _next_event(self, live: list[Order], start: float, now: float) -> float:
        """The first instant after `start` at which something happens but for prices."""
        times = [
            now,
            *(g.at for g in self._state.gaps if g.at > start),
            *(t for t in self._state.dead_man.values() if t > start),
        ]
        for order in live:
            spec = order.spec
            if order.status is OrderStatus.PENDING and spec.starttm is not None:
                times.append(spec.starttm)
            if spec.expiretm is not None:
                times.append(spec.expiretm)
        return min(t for t in times if t > start) if any(t > start for t in times) else now

    def _timers(self, live: list[Order], at: float) -> None:
        """What happens at `at` by the clock: dead man's switches, starts and expiries."""
        for account, trigger in list(self._state.dead_man.items()):
            if trigger <= at:
                del self._state.dead_man[account]
                for order in self._orders_of(account):
                    if order.is_live:
                        self._close(order, OrderStatus.CANCELED, trigger, "User requested")
        for order in live:
            spec = order.spec
            if not order.is_live:
                continue
            if spec.expiretm is not None and spec.expiretm <= at:
                self._close(order, OrderStatus.EXPIRED, spec.expiretm, None)
            elif order.status is OrderStatus.PENDING and spec.starttm is not None and spec.starttm <= at:
                order.status = OrderStatus.OPEN
                self._arrive(order, self._paths[spec.pair].price_at(spec.starttm), spec.starttm)

    def _take_spawned(self) -> list[Order]:
        spawned, self._spawned = self._spawned, []
        return [order for order in spawned if order.is_live]

    def _quiet(self, live: list[Order], start: float, end: float) -> bool:
        """No live order would act on the market between `start` and `end`: the whole
        stretch can be skipped, exactly as if walked minute by minute."""
        ranges = {key: self._paths[key].price_range(start, end) for key in {order.spec.pair for order in live}}
        return not any(_acts(order, *ranges[order.spec.pair]) for order in live)

    def _follow(self, live: list[Order], start: float, end: float) -> None:
        """Trailing stops follow the market over a quiet stretch."""
        for order in live:
            if order.spec.trailing is not None and order.is_live and not order.triggered:
                _follow_extreme(order, *self._paths[order.spec.pair].price_range(start, end))

    def _match_segment(self, live: list[Order], start: float, end: float) -> None:
        markets: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for order in sorted(live, key=_matched_after_stops):
            if not order.is_live or order.status is OrderStatus.PENDING:
                continue
            key = order.spec.pair
            if key not in markets:
                path = self._paths[key]
                markets[key] = (path.price_at(start), *path.price_range(start, end))
            opening, low, high = markets[key]
            self._match(order, opening, low, high, end, opened=start)

    def _match(
        self, order: Order, opening: Decimal, low: Decimal, high: Decimal, at: float, *, opened: float | None = None
    ) -> None:
        """Match `order` against a stretch of market that opened at `opening` (at time
        `opened`) and traded between `low` and `high` until `at`."""
        spec = order.spec
        if order.working_at_market:
            self._take(order, opening, at)
            return
        if spec.ordertype.is_trigger and not order.triggered:
            stop = order.stop_price
            assert stop is not None
            if trigger_fired(spec.ordertype, spec.side, stop, low, high):
                reference = trigger_reference(spec.ordertype, spec.side, stop, opening)
                # a market that opened through the stop (a gap) fired it right then
                fired = opened if opened is not None and reference != stop else at
                self._fire(order, reference, fired)
            else:
                _follow_extreme(order, low, high)
            return
        limit = order.resting_limit
        if limit is not None and limit_reached(spec.side, limit, low, high):
            self._fill_part(order, limit, at, maker=True)

    def _arrive(self, order: Order, market: Decimal, at: float) -> None:
        """The order meets the market: when placed, or when its start time comes."""
        spec = order.spec
        if spec.ordertype is OrderType.MARKET:
            self._take(order, market, at)
        elif spec.ordertype is OrderType.LIMIT:
            assert spec.price is not None
            self._enter_limit(order, spec.price, market, at)
        else:
            if spec.trailing is not None:
                order.extreme = market
            self._match(order, market, market, market, at)
        if spec.timeinforce is TimeInForce.IOC and order.is_live:
            self._close(order, OrderStatus.CANCELED, at, "Unfilled IOC")

    def _fire(self, order: Order, market: Decimal, at: float) -> None:
        order.triggered = True
        spec = order.spec
        if spec.ordertype.limit_after_trigger:
            assert spec.price2 is not None
            self._enter_limit(order, spec.price2, market, at)
        else:
            self._take(order, market, at)

    def _take(self, order: Order, market: Decimal, at: float) -> None:
        """Take liquidity for (part of) what is left of `order`."""
        price = self._market_fill(order, market)
        spec = order.spec
        if self._can_pay(order.account, PAIRS[spec.pair], spec.side, order.remaining, price, order, spec):
            self._fill_part(order, price, at, maker=False)
        else:
            self._close(order, OrderStatus.CANCELED, at, "Insufficient funds")

    def _enter_limit(self, order: Order, limit: Decimal, market: Decimal, at: float) -> None:
        """A limit order meets the book: it takes liquidity if it crosses the quote,
        else it rests, holding its funds."""
        spec = order.spec
        pair = PAIRS[spec.pair]
        crosses = limit_crosses(spec.side, limit, quote(pair, market))
        if crosses and OrderFlag.POST in spec.oflags:
            self._close(order, OrderStatus.CANCELED, at, "Post only order")
        elif not self._can_pay(order.account, pair, spec.side, order.remaining, limit, order, spec):
            self._close(order, OrderStatus.CANCELED, at, "Insufficient funds")
        elif crosses:
            fill = self._market_fill(order, market)
            price = min(fill, limit) if spec.side is Side.BUY else max(fill, limit)
            self._fill_part(order, price, at, maker=False)

    def _market_fill(self, order: Order, market: Decimal) -> Decimal:
        rng = random.Random(f"{self._state.seed}:{order.serial}:{order.fill_attempts}")
        noise = rng.randrange(1_000_000)
        return market_fill_price(
            PAIRS[order.spec.pair], order.spec.side, order.remaining, market, Decimal(noise) / 1_000_000
        )

    def _fill_part(self, order: Order, price: Decimal, at: float, *, maker: bool) -> None:
        """One chance to fill: the fill model says how much."""
        lot = PAIRS[order.spec.pair].lot_size
        remaining = order.remaining
        attempt = order.fill_attempts
        order.fill_attempts += 1
        rng = random.Random(f"{self._state.seed}:fill:{order.serial}:{order.fill_attempts}")
        volume = remaining * self._fills.fill_fraction(rng, maker=maker, attempt=attempt)
        volume = min(remaining, volume.quantize(lot, ROUND_DOWN))
        if remaining - volume < PAIRS[order.spec.pair].ordermin:
            volume = remaining  # no remainder below the pair's minimum order
        if volume > 0:
            self._execute(order, volume, price, at, maker=maker)

    def _execute(self, order: Order, volume: Decimal, price: Decimal, at: float, *, maker: bool) -> None:
        """Trade `volume` of `order` at `price`; settle both legs and the fee."""
        spec = order.spec
        pair = PAIRS[spec.pair]
        quote_unit, base_unit = ASSETS[pair.quote].unit, ASSETS[pair.base].unit
        rate = self._fees.rate(pair, maker=maker, thirty_day_volume=self._thirty_day_volume(order.account, at))
        cost = (volume * price).quantize(quote_unit)
        fee = (cost * rate).quantize(quote_unit)
        in_base = OrderFlag.FCIB in spec.oflags
        base_fee = (volume * rate).quantize(base_unit) if in_base else Decimal(0)
        quote_fee = Decimal(0) if in_base else fee
        balances = self._state.accounts[order.account].balances
        if spec.side is Side.BUY:
            _credit(balances, pair.quote, -(cost + quote_fee))
            _credit(balances, pair.base, volume - base_fee)
        else:
            _credit(balances, pair.base, -(volume + base_fee))
            _credit(balances, pair.quote, cost - quote_fee)
        trade = Trade(
            id=self._state.new_id("T"),
            ordertxid=order.txid,
            account=order.account,
            pair=pair.key,
            time=at,
            side=spec.side,
            ordertype=spec.ordertype,
            price=price,
            vol=volume,
            cost=cost,
            fee=fee,
            maker=maker,
            usd_value=cost * self._usd_price(pair.quote, at),
            serial=self._state.next_serial,
        )
        self._state.trades[trade.id] = trade
        order.trades.append(trade.id)
        order.vol_exec += volume
        order.cost += cost
        order.fee += fee
        if order.remaining <= 0:
            self._close(order, OrderStatus.CLOSED, at, None)
        if spec.close is not None:
            self._open_close(order, volume, at)

    def _open_close(self, parent: Order, volume: Decimal, at: float) -> None:
        """A fill of an order with a conditional close opens the closing order for the
        filled volume, on the other side."""
        close = parent.spec.close
        assert close is not None
        spec = OrderSpec(
            pair=parent.spec.pair,
            side=Side.SELL if parent.spec.side is Side.BUY else Side.BUY,
            ordertype=close.ordertype,
            volume=volume,
            price=close.price,
            price2=close.price2,
            userref=parent.spec.userref,
        )
        child = Order(
            txid=self._state.new_id("O"),
            account=parent.account,
            spec=spec,
            opentm=at,
            refid=parent.txid,
            serial=self._state.next_serial,
        )
        self._state.orders[child.txid] = child
        self._arrive(child, self._paths[spec.pair].price_at(at), at)
        self._spawned.append(child)

    def _close(self, order: Order, status: OrderStatus, at: float, reason: str | None) -> None:
        order.status = status
        order.closetm = at
        order.reason = reason

    def _thirty_day_volume(self, account: str, at: float) -> Decimal:
        return sum(
            (t.usd_value for t in self._state.trades.values() if t.account == account and t.time > at - _FEE_WINDOW),
            Decimal(0),
        )

    def _usd_price(self, asset: str, at: float) -> Decimal:
        if asset in USD_QUOTES:
            return Decimal(1)
        dollar_pair = min(
            (p for p in PAIRS.values() if p.base == asset and p.quote in USD_QUOTES), key=lambda p: p.quote != "ZUSD"
        )
        return self._paths[dollar_pair.key].price_at(at)

    def _orders_of(self, account: str) -> list[Order]:
        return [o for o in self._state.orders.values() if o.account == account]


def _acts(order: Order, low: Decimal, high: Decimal) -> bool:
    """Whether `order` fires (a trigger), fills (a resting limit) or trades (what is
    left of a market order) when the market trades between `low` and `high`."""
    spec = order.spec
    if order.status is OrderStatus.PENDING:
        return False
    if order.working_at_market:
        return True
    if spec.ordertype.is_trigger and not order.triggered:
        if spec.trailing is not None and order.extreme is not None:
            # the best price the stretch may reach, then its worst, in either order
            extreme = max(order.extreme, high) if spec.side is Side.SELL else min(order.extreme, low)
            stop = spec.trailing.level(extreme, spec.side)
        else:
            stop = order.stop_price
        assert stop is not None
        return trigger_fired(spec.ordertype, spec.side, stop, low, high)
    limit = order.resting_limit
    return limit is not None and limit_reached(spec.side, limit, low, high)


def _matched_after_stops(order: Order) -> bool:
    """The sort key of "stops first" (see the module docstring)."""
    return not order.spec.ordertype.is_stop


def _follow_extreme(order: Order, low: Decimal, high: Decimal) -> None:
    if order.spec.trailing is None or order.extreme is None:
        return
    order.extreme = max(order.extreme, high) if order.spec.side is Side.SELL else min(order.extreme, low)


def _spend_price(spec: OrderSpec, pair: Pair, market: Decimal) -> Decimal:
    """The price an order's cost and funds are judged at when it is placed."""
    if spec.ordertype is OrderType.MARKET:
        return market_fill_price(pair, spec.side, spec.volume, market, _WORST_NOISE)
    if spec.ordertype.limit_after_trigger and spec.price2 is not None:
        return spec.price2
    if spec.trailing is not None:
        return market
    assert spec.price is not None
    return spec.price


def _highest_taker_fee(pair: Pair) -> Decimal:
    return max(percent for _, percent in pair.fees) / 100


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _credit(balances: dict[str, Decimal], asset: str, amount: Decimal) -> None:
    balances[asset] = balances.get(asset, Decimal(0)) + amount


def _filter(orders: list[Order], userref: int | None, cl_ord_id: str | None) -> list[Order]:
    return [
        o
        for o in orders
        if (userref is None or o.spec.userref == userref) and (cl_ord_id is None or o.spec.cl_ord_id == cl_ord_id)
    ]


def _summarize(bars: list[Bar]) -> Bar:
    volume = sum((b.volume for b in bars), Decimal(0))
    turnover = sum((b.vwap * b.volume for b in bars), Decimal(0))
    return Bar(
        time=bars[0].time,
        open=bars[0].open,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        vwap=(turnover / volume).quantize(bars[0].open) if volume else bars[-1].close,
        volume=volume,
        count=sum(b.count for b in bars),
    )
