"""The matching engine: walks the market from the last instant matched to the clock's
now, fires triggers, fills orders and settles trades (see simulator.exchange for the
rules a client can observe)."""

from __future__ import annotations

import math
import random
from decimal import ROUND_DOWN, Decimal

from simulator.market import MarketData
from simulator.matching import (
    limit_crosses,
    limit_reached,
    market_fill_price,
    quote,
    trigger_fired,
    trigger_reference,
)
from simulator.models import (
    LedgerType,
    Order,
    OrderFlag,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
    SystemStatus,
    TimeInForce,
    Trade,
)
from simulator.pairs import ASSETS, PAIRS
from simulator.price_path import (
    HOUR,
    MINUTE,
)
from simulator.price_shapes import knots


class MatchingEngine(MarketData):
    def sync(self) -> None:
        """Match the live orders against the market up to the clock's now. Outside
        the online trading mode nothing matches: the stretch passes, and only the
        clock's timers (expiries, starts, the dead man's switch) act."""
        now = self.now()
        state = self._state
        index = self._index
        # `active`: the live orders but the plain resting limits, which only the
        # market's reaching them wakes (OrderIndex.reached)
        active = index.active()
        start = state.processed_until
        self._change_status(start)
        if not active and start < now and not self._reaches(start, now):
            start = now  # only resting limits the market does not reach: nothing acts meanwhile
        while (active or index.has_resting()) and start < now:
            if state.system_status is not SystemStatus.ONLINE:  # nothing matches until the mode changes
                start = min([now, *(c.at for c in state.status_changes if c.at > start)])
                self._timers(active, start)
                self._change_status(start)
                active = index.active()
                continue
            event = self._next_event(active, start, now)
            hour_end = float((math.floor(start / HOUR) + 1) * HOUR)
            if hour_end <= event and self._quiet(active, start, hour_end):
                end = hour_end
                self._follow(active, start, end)
            else:
                end = min(event, float((math.floor(start / MINUTE) + 1) * MINUTE))
                self._match_segment(active, start, end)
            start = end
            self._timers(active, start)
            self._change_status(start)
            active = index.active()
        self._timers(active, now)
        self._change_status(now)
        state.processed_until = max(state.processed_until, now)

    def _change_status(self, until: float) -> None:
        """Make the scheduled mode changes due by `until` the exchange's mode."""
        state = self._state
        while state.status_changes and state.status_changes[0].at <= until:
            state.system_status = state.status_changes.pop(0).status

    def _next_event(self, live: list[Order], start: float, now: float) -> float:
        """The first instant after `start` at which something happens but for prices."""
        times = [
            now,
            *(g.at for g in self._state.gaps if g.at > start),
            *(k for shape in self._state.shapes for k in knots(shape) if k > start),
            *(t for t in self._state.dead_man.values() if t > start),
            *(c.at for c in self._state.status_changes if c.at > start),
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
                for order in self._live_of(account):
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

    def _reaches(self, start: float, end: float) -> bool:
        """Whether the market between `start` and `end` reaches a plain resting limit."""
        index = self._index
        return any(
            index.reached(key, *self._paths[key].price_range(start, end))
            for key, limits in index.resting.items()
            if limits.orders
        )

    def _quiet(self, active: list[Order], start: float, end: float) -> bool:
        """No live order would act on the market between `start` and `end`: the whole
        stretch can be skipped, exactly as if walked minute by minute."""
        if self._reaches(start, end):
            return False
        ranges = {key: self._paths[key].price_range(start, end) for key in {order.spec.pair for order in active}}
        return not any(_acts(order, *ranges[order.spec.pair]) for order in active)

    def _follow(self, live: list[Order], start: float, end: float) -> None:
        """Trailing stops follow the market over a quiet stretch."""
        for order in live:
            if order.spec.trailing is not None and order.is_live and not order.triggered:
                _follow_extreme(order, *self._paths[order.spec.pair].price_range(start, end))

    def _match_segment(self, active: list[Order], start: float, end: float) -> None:
        markets: dict[str, tuple[Decimal, Decimal, Decimal]] = {}

        def market(key: str) -> tuple[Decimal, Decimal, Decimal]:
            if key not in markets:
                path = self._paths[key]
                markets[key] = (path.price_at(start), *path.price_range(start, end))
            return markets[key]

        index = self._index
        orders = list(active)
        for key, resting in index.resting.items():
            if resting.orders:
                orders += index.reached(key, *market(key)[1:])
        if len(orders) > len(active):  # the live orders' own order: stops first, then as placed
            orders.sort(key=lambda order: (_matched_after_stops(order), index.placed(order)))
        else:
            orders.sort(key=_matched_after_stops)
        for order in orders:
            if not order.is_live or order.status is OrderStatus.PENDING:
                continue
            opening, low, high = market(order.spec.pair)
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
        self._index.refresh(order)  # a stop-limit now rests, holding its funds
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
        self._record_trade(trade)
        sign = 1 if spec.side is Side.BUY else -1
        trade.ledgers = [
            self._post(order.account, pair.quote, -sign * cost, quote_fee, LedgerType.TRADE, trade.id, at),
            self._post(order.account, pair.base, sign * volume, base_fee, LedgerType.TRADE, trade.id, at),
        ]
        order.trades.append(trade.id)
        order.vol_exec += volume
        self._index.refresh(order)
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
        self._insert(child)
        self._arrive(child, self._paths[spec.pair].price_at(at), at)

    def _close(self, order: Order, status: OrderStatus, at: float, reason: str | None) -> None:
        order.status = status
        order.closetm = at
        order.reason = reason
        self._index.settled(order)


def _acts(order: Order, low: Decimal, high: Decimal) -> bool:
    """Whether `order` fires (a trigger), fills (a resting limit) or trades (what is
    left of a market order) when the market trades between `low` and `high`."""
    spec = order.spec
    if order.status is OrderStatus.PENDING:
        return False
    if order.working_at_market:
        return True
    if spec.ordertype.is_trigger and not order.triggered:
        stop: Decimal | None = order.stop_price
        if spec.trailing is not None and order.extreme is not None:
            # the best price the stretch may reach, then its worst, in either order
            extreme = max(order.extreme, high) if spec.side is Side.SELL else min(order.extreme, low)
            stop = spec.trailing.level(extreme, spec.side)
        assert stop is not None, "a trigger order always has a trigger price"
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
