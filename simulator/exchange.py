"""The exchange: places, matches, cancels and reports orders against the seeded market,
on the clock's time. No HTTP here: the wire layer calls these methods.

Rules a client can observe:

- Time. The market moves only as the clock does. Every method first calls `sync()`,
  which walks from the last processed instant to the clock's now, minute by minute,
  firing triggers and filling resting limits on each minute's low and high. Expiry is
  checked at minute resolution too.
- Funds. A resting limit order holds what it may spend: the base volume of a sell, or
  volume x limit price plus the highest taker fee of a buy. Available = balance - holds.
  Stop-loss and take-profit orders hold NOTHING while untriggered, so a stop-loss and a
  take-profit may both protect the same whole position. Each is checked against the
  available funds when placed; when one fires and the funds are gone (its sibling
  already sold them) it is canceled with reason "Insufficient funds".
- Fills. Market orders, marketable limits and fired stop-loss/take-profit orders fill
  whole at once at the market price plus spread and size-dependent slippage, paying the
  taker fee. A resting limit fills whole at its own price once the market trades
  through it, paying the maker fee. Fees are charged in the quote currency, at the tier
  of the account's 30-day USD volume.
- Ids. Txids and trade ids derive from the seed and a serial number: the same seed and
  the same requests give the same ids.
"""

from __future__ import annotations

import base64
import math
import random
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from core.clock import Clock, VirtualClock
from simulator.exceptions import (
    CostMinimumNotMet,
    InsufficientFunds,
    InvalidArguments,
    InvalidKey,
    InvalidOrder,
    OrderMinimumNotMet,
    PermissionDenied,
    UnknownOrder,
)
from simulator.matching import (
    fee_rate,
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
    Side,
    Trade,
)
from simulator.pairs import ASSETS, PAIRS, USD_QUOTES, Pair
from simulator.price_path import DAY, HOUR, MINUTE, Bar, PricePath, synthetic_paths

DEFAULT_ACCOUNT = "default"
DEFAULT_BALANCES = {"ZUSD": Decimal("100000"), "USDT": Decimal("100000")}
OHLC_INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})
OHLC_ENTRIES = 720
CLOSED_ORDERS_PAGE = 50
MAX_ADVANCE = 366 * DAY
"""The longest single step of the sandbox's clock: its market is made for a few years."""
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


class Exchange:
    """One exchange: its accounts and orders (`state`), its market (a price path per
    pair) and its clock. `paths` replaces the seeded market, e.g. by recorded candles."""

    def __init__(self, state: ExchangeState, clock: Clock,
                 paths: Mapping[str, PricePath] | None = None) -> None:
        self._state = state
        self._clock = clock
        self._paths = dict(paths) if paths is not None else synthetic_paths(
            state.seed, PAIRS.values(), state.origin
        )

    @classmethod
    def create(cls, clock: Clock, *, seed: int = 42,
               balances: Mapping[str, Decimal] | None = None) -> Exchange:
        """A fresh exchange opening at the clock's time, with one funded account."""
        now = clock.time()
        initial = dict(DEFAULT_BALANCES if balances is None else balances)
        state = ExchangeState(
            seed=seed, origin=now, processed_until=now, initial_balances=initial,
            accounts={DEFAULT_ACCOUNT: Account(dict(initial))},
        )
        return cls(state, clock)

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
            hour_end = float((math.floor(start / HOUR) + 1) * HOUR)
            if hour_end <= now and self._quiet(live, start, hour_end):
                end = hour_end
                self._expire(live, end)
            else:
                end = min(now, float((math.floor(start / MINUTE) + 1) * MINUTE))
                self._match_segment(live, start, end)
            live = [order for order in live if order.is_live]
            start = end
        self._expire(live, now)
        state.processed_until = max(state.processed_until, now)

    def advance(self, seconds: float) -> None:
        """Move the sandbox's own clock forward and let the market catch up."""
        if not isinstance(self._clock, VirtualClock):
            raise PermissionDenied()
        if not 0 <= seconds <= MAX_ADVANCE:
            raise InvalidArguments("seconds")
        self._clock.advance(seconds)
        self.sync()

    def reset(self) -> None:
        """Back to the opening balances with no orders, trades or nonces. Keeps the seed,
        the API keys and the time: the clock never runs backwards, and the market is a
        function of time."""
        state = self._state
        for account in state.accounts.values():
            account.balances = dict(state.initial_balances)
        for api_key in state.api_keys.values():
            api_key.last_nonce = 0
        state.orders.clear()
        state.trades.clear()
        state.next_serial = 0
        state.processed_until = self.now()

    # --- market data ------------------------------------------------------------

    def price(self, pair: Pair) -> Decimal:
        return self._paths[pair.key].price_at(self.now())

    def ticker(self, pair: Pair) -> Ticker:
        now = self.now()
        path = self._paths[pair.key]
        last = path.price_at(now)
        book = quote(pair, last)
        return Ticker(
            ask=book.ask, bid=book.bid, last=last,
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

    # --- account ----------------------------------------------------------------

    def balance(self, account: str) -> dict[str, Decimal]:
        self.sync()
        return dict(self._state.accounts[account].balances)

    def add_order(self, account: str, spec: OrderSpec, *, validate: bool = False) -> Order | None:
        """Place an order, or with `validate` only check it. Raises the Kraken error
        the order would be refused with."""
        self.sync()
        pair = PAIRS[spec.pair]
        now = self.now()
        market = self._paths[pair.key].price_at(now)
        self._check(account, pair, spec, market)
        if validate:
            return None
        order = Order(txid=self._state.new_id("O"), account=account, spec=spec, opentm=now)
        self._state.orders[order.txid] = order
        if spec.ordertype is OrderType.MARKET:
            self._fill(order, self._market_fill(order, market), now, maker=False)
        elif spec.ordertype is OrderType.LIMIT:
            assert spec.price is not None
            self._enter_limit(order, spec.price, market, now)
        else:
            self._match(order, market, market, market, now)
        return order

    def cancel_order(self, account: str, *, txid: str | None = None,
                     cl_ord_id: str | None = None) -> int:
        """Cancel the live orders named by `cl_ord_id`, or by `txid`, which Kraken lets
        be a txid, a userref or a cl_ord_id. Returns how many were canceled."""
        self.sync()
        orders = self._orders_of(account)
        if cl_ord_id is not None or txid is None:
            named = [o for o in orders if o.spec.cl_ord_id == cl_ord_id]
        elif txid in self._state.orders:
            named = [o for o in orders if o.txid == txid]
        elif re.fullmatch(r"-?\d+", txid):
            named = [o for o in orders if o.spec.userref == int(txid)]
        else:
            named = [o for o in orders if o.spec.cl_ord_id == txid]
        live = [o for o in named if o.is_live]
        if not live:
            raise UnknownOrder()
        for order in live:
            self._close(order, OrderStatus.CANCELED, self.now(), "User requested")
        return len(live)

    def query_orders(self, account: str, txids: list[str] | None, *,
                     userref: int | None = None, cl_ord_id: str | None = None) -> list[Order]:
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

    def open_orders(self, account: str, *, userref: int | None = None,
                    cl_ord_id: str | None = None) -> list[Order]:
        self.sync()
        return _filter([o for o in self._orders_of(account) if o.is_live], userref, cl_ord_id)

    def closed_orders(self, account: str, *, userref: int | None = None,
                      cl_ord_id: str | None = None, start: float | None = None,
                      end: float | None = None, closetime: ClosedTime = "both",
                      offset: int = 0) -> tuple[list[Order], int]:
        """One page of closed, canceled and expired orders, newest first, and how many
        match in all."""
        self.sync()
        done = _filter([o for o in self._orders_of(account) if not o.is_live], userref, cl_ord_id)

        def in_window(order: Order) -> bool:
            times = [order.opentm, order.closetm]
            chosen = {"open": times[:1], "close": times[1:], "both": times}[closetime]
            return any(t is not None and (start is None or t > start)
                       and (end is None or t <= end) for t in chosen)

        matching = sorted((o for o in done if in_window(o)),
                          key=lambda o: o.closetm or o.opentm, reverse=True)
        return matching[offset:offset + CLOSED_ORDERS_PAGE], len(matching)

    def order(self, txid: str) -> Order | None:
        return self._state.orders.get(txid)

    # --- placement checks -------------------------------------------------------

    def _check(self, account: str, pair: Pair, spec: OrderSpec, market: Decimal) -> None:
        for name, price in (("price", spec.price), ("price2", spec.price2)):
            if price is not None and _decimals(price) > pair.pair_decimals:
                raise InvalidArguments(name)
        if _decimals(spec.volume) > pair.lot_decimals:
            raise InvalidArguments("volume")
        if spec.ordertype is not OrderType.MARKET and spec.price is None:
            raise InvalidArguments("price")
        if spec.ordertype.limit_after_trigger and spec.price2 is None:
            raise InvalidArguments("price2")
        if OrderFlag.POST in spec.oflags and spec.ordertype is not OrderType.LIMIT:
            raise InvalidArguments("oflags")
        if spec.expiretm is not None and spec.expiretm <= self.now():
            raise InvalidArguments("expiretm")
        if spec.cl_ord_id is not None and any(
            o.is_live and o.spec.cl_ord_id == spec.cl_ord_id for o in self._orders_of(account)
        ):
            raise InvalidArguments("cl_ord_id")
        if spec.volume < pair.ordermin:
            raise OrderMinimumNotMet()
        spend_price = _spend_price(spec, pair, market)
        if spec.volume * spend_price < pair.costmin:
            raise CostMinimumNotMet()
        if not self._can_pay(account, pair, spec.side, spec.volume, spend_price, excluding=None):
            raise InsufficientFunds()

    def _can_pay(self, account: str, pair: Pair, side: Side, volume: Decimal, price: Decimal,
                 excluding: Order | None) -> bool:
        if side is Side.BUY:
            need = volume * price * (1 + _highest_taker_fee(pair))
            return self._available(account, pair.quote, excluding) >= need
        return self._available(account, pair.base, excluding) >= volume

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
            remaining = order.spec.volume - order.vol_exec
            if order.spec.side is Side.BUY and pair.quote == asset:
                held += remaining * limit * (1 + _highest_taker_fee(pair))
            elif order.spec.side is Side.SELL and pair.base == asset:
                held += remaining
        return held

    # --- matching ---------------------------------------------------------------

    def _quiet(self, live: list[Order], start: float, end: float) -> bool:
        """No live order would act on the market between `start` and `end`: the whole
        stretch can be skipped, exactly as if walked minute by minute."""
        ranges = {key: self._paths[key].price_range(start, end)
                  for key in {order.spec.pair for order in live}}
        return not any(_acts(order, *ranges[order.spec.pair]) for order in live)

    def _match_segment(self, live: list[Order], start: float, end: float) -> None:
        self._expire(live, start)
        markets: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for order in live:
            if not order.is_live:
                continue
            key = order.spec.pair
            if key not in markets:
                path = self._paths[key]
                markets[key] = (path.price_at(start), *path.price_range(start, end))
            opening, low, high = markets[key]
            self._match(order, opening, low, high, end)

    def _match(self, order: Order, opening: Decimal, low: Decimal, high: Decimal,
               at: float) -> None:
        if not _acts(order, low, high):
            return
        spec = order.spec
        limit = order.resting_limit
        if limit is not None:
            self._fill(order, limit, at, maker=True)
        else:
            assert spec.price is not None
            self._fire(order, trigger_reference(spec.ordertype, spec.side, spec.price, opening), at)

    def _fire(self, order: Order, market: Decimal, at: float) -> None:
        order.triggered = True
        spec = order.spec
        if spec.ordertype.limit_after_trigger:
            assert spec.price2 is not None
            self._enter_limit(order, spec.price2, market, at)
            return
        price = self._market_fill(order, market)
        if self._can_pay(order.account, PAIRS[spec.pair], spec.side, spec.volume, price, order):
            self._fill(order, price, at, maker=False)
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
        elif not self._can_pay(order.account, pair, spec.side, spec.volume, limit, order):
            self._close(order, OrderStatus.CANCELED, at, "Insufficient funds")
        elif crosses:
            fill = self._market_fill(order, market)
            price = min(fill, limit) if spec.side is Side.BUY else max(fill, limit)
            self._fill(order, price, at, maker=False)

    def _market_fill(self, order: Order, market: Decimal) -> Decimal:
        noise = random.Random(f"{self._state.seed}:{order.txid}").randrange(1_000_000)
        return market_fill_price(PAIRS[order.spec.pair], order.spec.side, order.spec.volume,
                                 market, Decimal(noise) / 1_000_000)

    def _fill(self, order: Order, price: Decimal, at: float, *, maker: bool) -> None:
        """Execute the rest of `order` at `price`, settle both legs and the fee."""
        spec = order.spec
        pair = PAIRS[spec.pair]
        unit = ASSETS[pair.quote].unit
        volume = spec.volume - order.vol_exec
        tiers = pair.fees_maker if maker else pair.fees
        rate = fee_rate(tiers, self._thirty_day_volume(order.account, at))
        cost = (volume * price).quantize(unit)
        fee = (cost * rate).quantize(unit)
        balances = self._state.accounts[order.account].balances
        if spec.side is Side.BUY:
            _credit(balances, pair.quote, -(cost + fee))
            _credit(balances, pair.base, volume)
        else:
            _credit(balances, pair.base, -volume)
            _credit(balances, pair.quote, cost - fee)
        trade = Trade(
            id=self._state.new_id("T"), ordertxid=order.txid, account=order.account,
            pair=pair.key, time=at, side=spec.side, ordertype=spec.ordertype, price=price,
            vol=volume, cost=cost, fee=fee, maker=maker,
            usd_value=cost * self._usd_price(pair.quote, at),
        )
        self._state.trades[trade.id] = trade
        order.trades.append(trade.id)
        order.vol_exec += volume
        order.cost += cost
        order.fee += fee
        self._close(order, OrderStatus.CLOSED, at, None)

    def _close(self, order: Order, status: OrderStatus, at: float, reason: str | None) -> None:
        order.status = status
        order.closetm = at
        order.reason = reason

    def _expire(self, orders: list[Order], at: float) -> None:
        for order in orders:
            expiry = order.spec.expiretm
            if order.is_live and expiry is not None and expiry <= at:
                self._close(order, OrderStatus.EXPIRED, expiry, None)

    def _thirty_day_volume(self, account: str, at: float) -> Decimal:
        return sum(
            (t.usd_value for t in self._state.trades.values()
             if t.account == account and t.time > at - _FEE_WINDOW),
            Decimal(0),
        )

    def _usd_price(self, asset: str, at: float) -> Decimal:
        if asset in USD_QUOTES:
            return Decimal(1)
        dollar_pair = next(p for p in PAIRS.values() if p.base == asset and p.quote == "ZUSD")
        return self._paths[dollar_pair.key].price_at(at)

    def _orders_of(self, account: str) -> list[Order]:
        return [o for o in self._state.orders.values() if o.account == account]


def _acts(order: Order, low: Decimal, high: Decimal) -> bool:
    """Whether `order` fires (a trigger) or fills (a resting limit) when the market
    trades between `low` and `high`."""
    spec = order.spec
    if spec.ordertype.is_trigger and not order.triggered:
        assert spec.price is not None
        return trigger_fired(spec.ordertype, spec.side, spec.price, low, high)
    limit = order.resting_limit
    return limit is not None and limit_reached(spec.side, limit, low, high)


def _spend_price(spec: OrderSpec, pair: Pair, market: Decimal) -> Decimal:
    """The price an order's cost and funds are judged at when it is placed."""
    if spec.ordertype is OrderType.MARKET:
        return market_fill_price(pair, spec.side, spec.volume, market, _WORST_NOISE)
    if spec.ordertype.limit_after_trigger and spec.price2 is not None:
        return spec.price2
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
        o for o in orders
        if (userref is None or o.spec.userref == userref)
        and (cl_ord_id is None or o.spec.cl_ord_id == cl_ord_id)
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
