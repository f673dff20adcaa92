"""The endpoints: each takes the exchange and the call's parameters, validates them,
asks the exchange, and returns the `result` part of Kraken's envelope.

Public handlers take (exchange, params); private ones also the authenticated account.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from simulator import wire
from simulator.exceptions import InvalidArguments
from simulator.exchange import Exchange
from simulator.models import CloseSpec, Order, OrderSpec, OrderType, Side
from simulator.order_prices import resolve, trailing_offset
from simulator.pairs import ASSETS, PAIRS, Pair, find_asset, find_pair
from simulator.params import (
    LATEST_EPOCH,
    AddOrderBatchParams,
    AddOrderParams,
    AmendOrderParams,
    AssetPairsParams,
    AssetsParams,
    BalanceExParams,
    BalanceParams,
    BatchOrderParams,
    CancelAllOrdersAfterParams,
    CancelAllParams,
    CancelOrderBatchParams,
    CancelOrderParams,
    ClosedOrdersParams,
    DepthParams,
    EditOrderParams,
    GetWebSocketsTokenParams,
    OHLCParams,
    OpenOrdersParams,
    OrderFields,
    Params,
    QueryOrdersParams,
    QueryTradesParams,
    SpreadParams,
    TickerParams,
    TradeBalanceParams,
    TradesHistoryParams,
    TradesParams,
    parse,
)
from simulator.tape import MAX_TRADES
from simulator.websocket import tokens

Json = dict[str, Any]


# --- public -------------------------------------------------------------------


def server_time(exchange: Exchange, params: Params) -> Json:
    return wire.server_time(exchange.now())


def system_status(exchange: Exchange, params: Params) -> Json:
    exchange.sync()  # the mode as of now, scheduled changes included
    return {"status": str(exchange.state.system_status), "timestamp": wire.iso_time(exchange.now())}


def assets(exchange: Exchange, params: Params) -> Json:
    call = parse(AssetsParams, params)
    chosen = ASSETS.values() if call.asset is None else [find_asset(n) for n in _names(call.asset)]
    return {a.id: wire.asset(a) for a in chosen}


def asset_pairs(exchange: Exchange, params: Params) -> Json:
    """A pair asked for by a slashed name (BTC/USD) is answered under that name, as
    Kraken does: python-kraken-sdk's SpotOrderBookClient looks its v2 symbol up so."""
    call = parse(AssetPairsParams, params)
    if call.pair is None:
        return {p.key: wire.asset_pair(p, call.info) for p in PAIRS.values()}
    named = [(name, find_pair(name)) for name in _names(call.pair)]
    return {(name if "/" in name else p.key): wire.asset_pair(p, call.info) for name, p in named}


def ticker(exchange: Exchange, params: Params) -> Json:
    call = parse(TickerParams, params)
    chosen = PAIRS.values() if call.pair is None else [find_pair(n) for n in _names(call.pair)]
    return {p.key: wire.ticker(p, exchange.ticker(p)) for p in chosen}


def ohlc(exchange: Exchange, params: Params) -> Json:
    call = parse(OHLCParams, params)
    pair = find_pair(call.pair)
    bars, last = exchange.ohlc(pair, call.interval, call.since)
    return {pair.key: [wire.candle(pair, bar) for bar in bars], "last": last}


def depth(exchange: Exchange, params: Params) -> Json:
    call = parse(DepthParams, params)
    pair = find_pair(call.pair)
    return {pair.key: wire.book(pair, exchange.depth(pair, call.count))}


def trades(exchange: Exchange, params: Params) -> Json:
    call = parse(TradesParams, params)
    pair = find_pair(call.pair)
    tape = exchange.public_trades(pair, _cursor(call.since), min(call.count, MAX_TRADES))
    if tape:
        last = wire.nanoseconds(tape[-1].time)
    else:
        last = call.since if call.since is not None else wire.nanoseconds(exchange.now())
    return {pair.key: [wire.public_trade(pair, t) for t in tape], "last": last}


def spread(exchange: Exchange, params: Params) -> Json:
    call = parse(SpreadParams, params)
    pair = find_pair(call.pair)
    rows = exchange.spread(pair, call.since)
    last = int(rows[-1].time) if rows else (call.since or int(exchange.now()))
    return {pair.key: [wire.spread(pair, row) for row in rows], "last": last}


# --- private: account ---------------------------------------------------------


def balance(exchange: Exchange, account: str, params: Params) -> Json:
    parse(BalanceParams, params)
    return wire.balances(exchange.balance(account))


def balance_ex(exchange: Exchange, account: str, params: Params) -> Json:
    parse(BalanceExParams, params)
    return wire.extended_balances(exchange.balance(account), exchange.holds(account))


def get_websockets_token(exchange: Exchange, account: str, params: Params) -> Json:
    parse(GetWebSocketsTokenParams, params)
    return {"token": tokens.issue(exchange, account), "expires": tokens.TOKEN_LIFETIME_S}


def trade_balance(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(TradeBalanceParams, params)
    return wire.trade_balance(exchange.trade_balance(account, find_asset(call.asset)))


# --- private: placing ---------------------------------------------------------


def add_order(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(AddOrderParams, params)
    spec = _order_spec(exchange, find_pair(call.pair), call)
    placed = exchange.add_order(account, spec, validate=call.validate_only)
    result: Json = {"descr": _descr(placed.spec if placed is not None else spec)}
    if placed is not None:
        result["txid"] = [placed.txid]
    return result


def add_order_batch(exchange: Exchange, account: str, params: Params) -> Json:
    """Kraken validates the whole batch first (one malformed order refuses them all),
    then places each order; one the engine refuses (funds, minimums) carries its own
    error and the rest are placed."""
    call = parse(AddOrderBatchParams, _gather_orders(params))
    pair = find_pair(call.pair)
    specs = []
    for index, fields in enumerate(call.orders):
        try:
            spec = _order_spec(exchange, pair, parse(BatchOrderParams, _flatten_close(fields)))
            exchange.check_order(account, spec)
        except InvalidArguments as exc:
            raise InvalidArguments(f"orders[{index}].{exc.detail}" if exc.detail else None) from None
        specs.append(spec)
    results: list[Json] = []
    for spec, outcome in zip(specs, exchange.add_orders(account, specs, validate=call.validate_only)):
        if isinstance(outcome, Order):
            results.append({"descr": _descr(outcome.spec), "txid": outcome.txid})
        elif outcome is None:
            results.append({"descr": _descr(spec)})
        else:
            results.append({"error": outcome.wire})
    return {"orders": results}


def amend_order(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(AmendOrderParams, params)
    if (call.txid is None) == (call.cl_ord_id is None):
        raise InvalidArguments("txid")
    if call.order_qty is None and call.limit_price is None and call.trigger_price is None:
        raise InvalidArguments("order_qty")
    target = exchange.live_order(account, txid=call.txid, cl_ord_id=call.cl_ord_id)
    pair = PAIRS[target.spec.pair]
    market = exchange.price(pair)

    def price(text: str | None, name: str) -> Decimal | None:
        if text is None:
            return None
        return resolve(text, name, pair=pair, side=target.spec.side, ordertype=target.spec.ordertype, market=market)

    amend_id = exchange.amend_order(
        account,
        txid=target.txid,
        order_qty=call.order_qty,
        limit_price=price(call.limit_price, "limit_price"),
        trigger_price=price(call.trigger_price, "trigger_price"),
        post_only=call.post_only,
    )
    return {"amend_id": amend_id}


def edit_order(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(EditOrderParams, params)
    pair = find_pair(call.pair)
    target = exchange.live_order(account, txid=call.txid)
    market = exchange.price(pair)

    def price(text: str | None, name: str) -> Decimal | None:
        if text is None:
            return None
        return resolve(text, name, pair=pair, side=target.spec.side, ordertype=target.spec.ordertype, market=market)

    old, new = exchange.edit_order(
        account,
        target.txid,
        pair,
        volume=call.volume,
        price=price(call.price, "price"),
        price2=price(call.price2, "price2"),
        oflags=call.oflags,
        userref=call.userref,
        validate=call.validate_only,
    )
    spec = new.spec if new is not None else old.spec
    result: Json = {
        "status": "ok",
        "descr": {"order": wire.order_description(spec)},
        "volume": wire.amount(spec.volume, pair.lot_decimals),
        "price": wire.amount(spec.price or Decimal(0), pair.pair_decimals),
        "price2": wire.amount(spec.price2 or Decimal(0), pair.pair_decimals),
        "originaltxid": old.txid,
        "orders_cancelled": 0 if new is None else 1,
    }
    if new is not None:
        result["txid"] = new.txid
    return result


# --- private: canceling -------------------------------------------------------


def cancel_order(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(CancelOrderParams, params)
    if (call.txid is None) == (call.cl_ord_id is None):
        raise InvalidArguments("txid")
    return {"count": exchange.cancel_order(account, txid=call.txid, cl_ord_id=call.cl_ord_id)}


def cancel_order_batch(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(CancelOrderBatchParams, params)
    names = [str(name) for name in call.orders] + list(call.cl_ord_ids)
    if not names:
        raise InvalidArguments("orders")
    return {"count": exchange.cancel_orders(account, names)}


def cancel_all(exchange: Exchange, account: str, params: Params) -> Json:
    parse(CancelAllParams, params)
    return {"count": exchange.cancel_all(account)}


def cancel_all_orders_after(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(CancelAllOrdersAfterParams, params)
    trigger = exchange.cancel_all_after(account, call.timeout)
    return {
        "currentTime": wire.iso_time(exchange.now()),
        "triggerTime": "0" if trigger is None else wire.iso_time(trigger),
    }


# --- private: reading ---------------------------------------------------------


def query_orders(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(QueryOrdersParams, params)
    if call.txid is None and call.userref is None and call.cl_ord_id is None:
        raise InvalidArguments("txid")
    found = exchange.query_orders(account, call.txid, userref=call.userref, cl_ord_id=call.cl_ord_id)
    return {o.txid: wire.order(o, with_trades=call.trades) for o in found}


def open_orders(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(OpenOrdersParams, params)
    found = exchange.open_orders(account, userref=call.userref, cl_ord_id=call.cl_ord_id)
    return {"open": {o.txid: wire.order(o, with_trades=call.trades) for o in found}}


def closed_orders(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(ClosedOrdersParams, params)
    page, count = exchange.closed_orders(
        account,
        userref=call.userref,
        cl_ord_id=call.cl_ord_id,
        start=_bound(exchange, account, call.start, "start"),
        end=_bound(exchange, account, call.end, "end"),
        closetime=call.closetime,
        offset=call.ofs,
    )
    result: Json = {"closed": {o.txid: wire.order(o, with_trades=call.trades) for o in page}}
    if not call.without_count:
        result["count"] = count
    return result


def trades_history(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(TradesHistoryParams, params)
    page, count = exchange.trades_history(
        account,
        start=_trade_bound(exchange, account, call.start, "start"),
        end=_trade_bound(exchange, account, call.end, "end"),
        offset=call.ofs,
    )
    seed = exchange.state.seed
    result: Json = {"trades": {t.id: wire.trade(t, seed, with_ledgers=call.ledgers) for t in page}}
    if not call.without_count:
        result["count"] = count
    return result


def query_trades(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(QueryTradesParams, params)
    seed = exchange.state.seed
    return {t.id: wire.trade(t, seed) for t in exchange.query_trades(account, call.txid)}


# --- helpers ------------------------------------------------------------------


def _names(value: str) -> list[str]:
    return [name for name in value.split(",") if name]


def _descr(spec: OrderSpec) -> Json:
    descr: Json = {"order": wire.order_description(spec)}
    if spec.close is not None:
        descr["close"] = wire.close_description(spec)
    return descr


def _order_spec(exchange: Exchange, pair: Pair, call: OrderFields) -> OrderSpec:
    """The order a client asked for, its relative prices resolved against the last
    traded price."""
    if call.userref is not None and call.cl_ord_id is not None:
        raise InvalidArguments("cl_ord_id")
    ordertype = call.ordertype
    now = exchange.now()
    market = exchange.price(pair)

    def price(text: str | None, name: str, side: Side, kind: OrderType) -> Decimal | None:
        if text is None:
            return None
        return resolve(text, name, pair=pair, side=side, ordertype=kind, market=market)

    trailing = None
    if ordertype is OrderType.TRAILING_STOP:
        if call.price is None:
            raise InvalidArguments("price")
        trailing = trailing_offset(call.price, "price")
    return OrderSpec(
        pair=pair.key,
        side=call.type,
        ordertype=ordertype,
        volume=call.volume,
        price=None
        if trailing is not None or ordertype is OrderType.MARKET
        else price(call.price, "price", call.type, ordertype),
        price2=price(call.price2, "price2", call.type, ordertype) if ordertype.limit_after_trigger else None,
        userref=call.userref,
        cl_ord_id=call.cl_ord_id,
        oflags=call.oflags,
        expiretm=_time(call.expiretm, "expiretm", now),
        timeinforce=call.timeinforce,
        starttm=_time(call.starttm, "starttm", now),
        trailing=trailing,
        close=_close(call, price),
    )


def _close(call: OrderFields, price: Any) -> CloseSpec | None:
    """The conditional close, its prices read as for an order on the other side."""
    kind = call.close_ordertype
    if kind is None:
        if call.close_price is not None or call.close_price2 is not None:
            raise InvalidArguments("close[ordertype]")
        return None
    if kind is OrderType.TRAILING_STOP:
        raise InvalidArguments("close[ordertype]")
    side = Side.SELL if call.type is Side.BUY else Side.BUY
    close = CloseSpec(
        ordertype=kind,
        price=price(call.close_price, "close[price]", side, kind),
        price2=price(call.close_price2, "close[price2]", side, kind),
    )
    if kind is not OrderType.MARKET and close.price is None:
        raise InvalidArguments("close[price]")
    if kind.limit_after_trigger and close.price2 is None:
        raise InvalidArguments("close[price2]")
    return close


_FORM_ORDER = re.compile(r"orders\[(\d{1,2})\]\[(\w+)\](?:\[(\w+)\])?")


def _gather_orders(params: Params) -> Params:
    """A form-encoded batch names its orders' fields "orders[0][price]" (and
    "orders[0][close][price]"): gather them into the list a JSON body carries."""
    rows: dict[int, dict[str, object]] = {}
    rest: dict[str, object] = {}
    for name, value in params.items():
        match = _FORM_ORDER.fullmatch(name)
        if match is None:
            rest[name] = value
            continue
        index, field, inner = int(match[1]), match[2], match[3]
        rows.setdefault(index, {})[f"{field}[{inner}]" if inner else field] = value
    if not rows:
        return params
    if "orders" in rest or sorted(rows) != list(range(len(rows))):
        raise InvalidArguments("orders")
    return {**rest, "orders": [rows[i] for i in range(len(rows))]}


def _flatten_close(fields: dict[str, object]) -> dict[str, object]:
    """A batch order may give its conditional close as an object, {"close": {...}}."""
    close = fields.get("close")
    if not isinstance(close, dict):
        return fields
    flat = {name: value for name, value in fields.items() if name != "close"}
    flat.update({f"close[{name}]": value for name, value in close.items()})
    return flat


def _time(value: str | None, name: str, now: float) -> float | None:
    """Kraken's starttm/expiretm: "0" or absent for none, "+<seconds>" from now, or an
    epoch."""
    if value is None or value == "0":
        return None
    try:
        seconds = Decimal(value.removeprefix("+"))
    except InvalidOperation:
        raise InvalidArguments(name) from None
    if not seconds.is_finite() or not 0 < seconds < LATEST_EPOCH:
        raise InvalidArguments(name)
    return now + float(seconds) if value.startswith("+") else float(seconds)


def _cursor(since: str | None) -> float | None:
    """Trades' `since`: epoch seconds, or the nanoseconds a previous `last` gave."""
    if since is None:
        return None
    value = Decimal(since)
    return float(value / 1_000_000_000) if len(since) > 12 else float(value)


def _epoch_or_id(value: str | None, name: str, times: dict[str, float]) -> float | None:
    """A start/end bound: an epoch, or an id whose time `times` gives."""
    if value is None:
        return None
    if re.fullmatch(r"[0-9]{1,11}(\.[0-9]+)?", value):
        return float(value)
    if value not in times:
        raise InvalidArguments(name)
    return times[value]


def _bound(exchange: Exchange, account: str, value: str | None, name: str) -> float | None:
    """A ClosedOrders start/end: an epoch, or the txid of an order (its open time)."""
    named = exchange.order(value) if value is not None else None
    times = {named.txid: named.opentm} if named is not None and named.account == account else {}
    return _epoch_or_id(value, name, times)


def _trade_bound(exchange: Exchange, account: str, value: str | None, name: str) -> float | None:
    """A TradesHistory start/end: an epoch, or the id of a trade (its time)."""
    named = exchange.trade(value) if value is not None else None
    times = {named.id: named.time} if named is not None and named.account == account else {}
    return _epoch_or_id(value, name, times)
