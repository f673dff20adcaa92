"""The order book's life cycle: placing, checking, cancelling, amending and editing
orders, and answering what they became."""

from __future__ import annotations

import heapq
import random
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal

from core.domain.clock import VirtualClock
from simulator.exceptions import (
    CostMinimumNotMet,
    DuplicateOrder,
    InsufficientFunds,
    InvalidArguments,
    InvalidOrder,
    InvalidPrice,
    KrakenError,
    OrderMinimumNotMet,
    UnknownOrder,
)
from simulator.exchange_base import CLOSED_ORDERS_PAGE, MAX_DEAD_MAN_TIMEOUT, WORST_NOISE
from simulator.history import ClosedQuery, ClosedTime, TradeQuery, closed_rank, trade_key
from simulator.matching import (
    limit_crosses,
    market_fill_price,
    quote,
)
from simulator.matching_engine import MatchingEngine
from simulator.models import (
    Amend,
    AmendKind,
    Order,
    OrderFlag,
    OrderSpec,
    OrderStatus,
    OrderType,
    TimeInForce,
    Trade,
    as_userref,
    kraken_id,
)
from simulator.pairs import ASSETS, PAIRS, Pair
from simulator.system_status import admit, admit_order


class OrderBook(MatchingEngine):
    def add_order(self, account: str, spec: OrderSpec, *, validate: bool = False) -> Order | None:
        """Place an order, or with `validate` only check it. Raises the Kraken error
        the order would be refused with."""
        self._request("AddOrder")
        return self._place(account, spec, validate=validate)

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
        self._insert(order)
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
        live = self._live_of(account)
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
        if not order.amends:
            order.amends.append(
                _terms(order, kraken_id("T", self._state.seed, f"{order.txid}:original"), AmendKind.ORIGINAL)
            )
        amend_id = self._state.new_id("T")
        order.spec = amended
        self._index.repriced(order)
        order.amended = True
        order.amends.append(_terms(order, amend_id, AmendKind.USER, at=now, post_only=post_only))
        if order.remaining <= 0:
            self._close(order, OrderStatus.CLOSED, now, None)
        elif limit is not None and order.status is OrderStatus.OPEN:
            self._enter_limit(order, limit, market, now)
        elif order.status is OrderStatus.OPEN:
            self._match(order, market, market, market, now)
        return amend_id

    def order_amends(self, account: str, txid: str) -> list[Amend]:
        """The order's amend trail, oldest first: its original terms, then each amend."""
        self.sync()
        order = self._order(txid)
        if order is None or order.account != account:
            raise UnknownOrder()
        if order.amends:
            return list(order.amends)
        return [_terms(order, kraken_id("T", self._state.seed, f"{order.txid}:original"), AmendKind.ORIGINAL)]

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
        self._insert(new)
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
                order = self._order(txid)
                if order is None or order.account != account:
                    raise InvalidOrder()
                orders.append(order)
        return _filter(orders, userref, cl_ord_id)

    def open_orders(self, account: str, *, userref: int | None = None, cl_ord_id: str | None = None) -> list[Order]:
        self.sync()
        return _filter(self._live_of(account), userref, cl_ord_id)

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
        match in all: those settled in memory, and the newest of those the history keeps."""
        self.sync()
        query = ClosedQuery(userref, cl_ord_id, start, end, closetime)
        wanted = offset + CLOSED_ORDERS_PAGE
        kept, count = self._history.closed_orders(account, query, wanted)
        held = [o for o in self._index.of(account) if not o.is_live and query.matches(o)]
        page = heapq.nsmallest(wanted, [*kept, *held], key=closed_rank)
        return page[offset:], count + len(held)

    def order(self, txid: str) -> Order | None:
        return self._order(txid)

    def trade(self, trade_id: str) -> Trade | None:
        return self._trade(trade_id)

    def trades_history(
        self, account: str, *, start: float | None = None, end: float | None = None, offset: int = 0
    ) -> tuple[list[Trade], int]:
        """One page of the account's trades, newest first, and how many match in all."""
        self.sync()
        query = TradeQuery(start, end)
        wanted = offset + CLOSED_ORDERS_PAGE
        kept, count = self._history.trades(account, query, wanted)
        held = [t for t in self._state.trades.values() if t.account == account and query.matches(t)]
        matching = sorted([*kept, *held], key=trade_key, reverse=True)
        return matching[offset:wanted], count + len(held)

    def query_trades(self, account: str, ids: list[str]) -> list[Trade]:
        self.sync()
        found = []
        for trade_id in ids:
            trade = self._trade(trade_id)
            if trade is None or trade.account != account:
                raise InvalidArguments("txid")
            found.append(trade)
        return found

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
        worst = market_fill_price(pair, spec.side, estimate, market, WORST_NOISE)
        return replace(spec, volume=(spec.volume / worst).quantize(pair.lot_size, ROUND_DOWN))

    def _check_form(self, account: str, pair: Pair, spec: OrderSpec, excluding: Order | None) -> None:
        admit_order(self._state.system_status, spec)
        if spec.price is not None and _decimals(spec.price) > pair.pair_decimals:
            raise InvalidPrice.too_many_decimals(pair.key, pair.pair_decimals)
        if spec.price2 is not None and _decimals(spec.price2) > pair.pair_decimals:
            raise InvalidArguments("price2")
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
            o is not excluding and o.spec.cl_ord_id == spec.cl_ord_id for o in self._live_of(account)
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

    def _request(self, endpoint: str) -> None:
        """An order-entry request arrives: the trading mode may refuse it; on the
        sandbox's own clock it takes the latency model's time (the market moves
        meanwhile), then the market catches up."""
        self.sync()  # a mode change a scenario scheduled may be due
        admit(self._state.system_status, endpoint)
        self._state.requests += 1
        rng = random.Random(f"{self._state.seed}:latency:{self._state.requests}")
        delay = self._latency.delay(rng, endpoint)
        if delay > 0 and isinstance(self._clock, VirtualClock):
            self._clock.advance(delay)
        self.sync()

    def _named(self, account: str, txid: str | None, cl_ord_id: str | None) -> list[Order]:
        """The live orders a cancel names: by `cl_ord_id`, or by `txid`, which may be a
        txid, a userref or a cl_ord_id."""
        live = self._live_of(account)
        if cl_ord_id is not None or txid is None:
            return [o for o in live if o.spec.cl_ord_id == cl_ord_id]
        if self._order(txid) is not None:
            return [o for o in live if o.txid == txid]
        userref = as_userref(txid)
        if userref is not None:
            return [o for o in live if o.spec.userref == userref]
        return [o for o in live if o.spec.cl_ord_id == txid]

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


def _spend_price(spec: OrderSpec, pair: Pair, market: Decimal) -> Decimal:
    """The price an order's cost and funds are judged at when it is placed."""
    if spec.ordertype is OrderType.MARKET:
        return market_fill_price(pair, spec.side, spec.volume, market, WORST_NOISE)
    if spec.ordertype.limit_after_trigger and spec.price2 is not None:
        return spec.price2
    if spec.trailing is not None:
        return market
    assert spec.price is not None
    return spec.price


def _terms(
    order: Order, amend_id: str, kind: AmendKind, *, at: float | None = None, post_only: bool | None = None
) -> Amend:
    """The order's terms now as a row of its amend trail (at its entry by default)."""
    spec = order.spec
    original = kind is AmendKind.ORIGINAL
    return Amend(
        amend_id=amend_id,
        kind=kind,
        time=order.opentm if at is None else at,
        order_qty=spec.volume,
        remaining_qty=spec.volume if original else spec.volume - order.vol_exec,
        limit_price=spec.price if spec.ordertype is OrderType.LIMIT else spec.price2,
        trigger_price=spec.price if spec.ordertype.is_trigger and spec.trailing is None else None,
        post_only=OrderFlag.POST in spec.oflags if post_only is None else post_only,
    )


def _decimals(value: Decimal) -> int:
    """Its places after the point, trailing zeros aside, counted on its digits:
    normalize() rounds to the context's 28, and 50000.000...0001 read as 50000."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return 0
    text = "".join(map(str, digits))
    return max(0, -exponent - (len(text) - len(text.rstrip("0"))))


def _filter(orders: list[Order], userref: int | None, cl_ord_id: str | None) -> list[Order]:
    return [
        o
        for o in orders
        if (userref is None or o.spec.userref == userref) and (cl_ord_id is None or o.spec.cl_ord_id == cl_ord_id)
    ]
