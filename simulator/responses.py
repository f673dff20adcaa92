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
from simulator.models import OrderSpec, OrderType
from simulator.pairs import ASSETS, PAIRS, find_asset, find_pair
from simulator.params import (
    LATEST_EPOCH,
    AddOrderParams,
    AdvanceParams,
    AssetPairsParams,
    AssetsParams,
    BalanceParams,
    CancelOrderParams,
    ClosedOrdersParams,
    OHLCParams,
    OpenOrdersParams,
    Params,
    QueryOrdersParams,
    TickerParams,
    parse,
)

Json = dict[str, Any]


# --- public -------------------------------------------------------------------


def server_time(exchange: Exchange, params: Params) -> Json:
    return wire.server_time(exchange.now())


def system_status(exchange: Exchange, params: Params) -> Json:
    return {"status": "online", "timestamp": wire.iso_time(exchange.now())}


def assets(exchange: Exchange, params: Params) -> Json:
    call = parse(AssetsParams, params)
    chosen = ASSETS.values() if call.asset is None else [find_asset(n) for n in _names(call.asset)]
    return {a.id: wire.asset(a) for a in chosen}


def asset_pairs(exchange: Exchange, params: Params) -> Json:
    call = parse(AssetPairsParams, params)
    chosen = PAIRS.values() if call.pair is None else [find_pair(n) for n in _names(call.pair)]
    return {p.key: wire.asset_pair(p, call.info) for p in chosen}


def ticker(exchange: Exchange, params: Params) -> Json:
    call = parse(TickerParams, params)
    chosen = PAIRS.values() if call.pair is None else [find_pair(n) for n in _names(call.pair)]
    return {p.key: wire.ticker(p, exchange.ticker(p)) for p in chosen}


def ohlc(exchange: Exchange, params: Params) -> Json:
    call = parse(OHLCParams, params)
    pair = find_pair(call.pair)
    bars, last = exchange.ohlc(pair, call.interval, call.since)
    return {pair.key: [wire.candle(pair, bar) for bar in bars], "last": last}


# --- private ------------------------------------------------------------------


def balance(exchange: Exchange, account: str, params: Params) -> Json:
    parse(BalanceParams, params)
    return wire.balances(exchange.balance(account))


def add_order(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(AddOrderParams, params)
    if call.userref is not None and call.cl_ord_id is not None:
        raise InvalidArguments("cl_ord_id")
    spec = OrderSpec(
        pair=find_pair(call.pair).key,
        side=call.type,
        ordertype=call.ordertype,
        volume=call.volume,
        price=None if call.ordertype is OrderType.MARKET else call.price,
        price2=call.price2 if call.ordertype.limit_after_trigger else None,
        userref=call.userref,
        cl_ord_id=call.cl_ord_id,
        oflags=call.oflags,
        expiretm=_expiry(call.expiretm, call.timeinforce, exchange.now()),
    )
    placed = exchange.add_order(account, spec, validate=call.validate_only)
    result: Json = {"descr": {"order": wire.order_description(spec)}}
    if placed is not None:
        result["txid"] = [placed.txid]
    return result


def query_orders(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(QueryOrdersParams, params)
    if call.txid is None and call.userref is None and call.cl_ord_id is None:
        raise InvalidArguments("txid")
    found = exchange.query_orders(account, call.txid, userref=call.userref,
                                  cl_ord_id=call.cl_ord_id)
    return {o.txid: wire.order(o, with_trades=call.trades) for o in found}


def open_orders(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(OpenOrdersParams, params)
    found = exchange.open_orders(account, userref=call.userref, cl_ord_id=call.cl_ord_id)
    return {"open": {o.txid: wire.order(o, with_trades=call.trades) for o in found}}


def closed_orders(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(ClosedOrdersParams, params)
    page, count = exchange.closed_orders(
        account, userref=call.userref, cl_ord_id=call.cl_ord_id,
        start=_bound(exchange, account, call.start, "start"),
        end=_bound(exchange, account, call.end, "end"),
        closetime=call.closetime, offset=call.ofs,
    )
    result: Json = {"closed": {o.txid: wire.order(o, with_trades=call.trades) for o in page}}
    if not call.without_count:
        result["count"] = count
    return result


def cancel_order(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(CancelOrderParams, params)
    if (call.txid is None) == (call.cl_ord_id is None):
        raise InvalidArguments("txid")
    return {"count": exchange.cancel_order(account, txid=call.txid, cl_ord_id=call.cl_ord_id)}


# --- sandbox control ----------------------------------------------------------


def sandbox_reset(exchange: Exchange, params: Params) -> Json:
    exchange.reset()
    return sandbox_state(exchange, params)


def sandbox_advance(exchange: Exchange, params: Params) -> Json:
    call = parse(AdvanceParams, params)
    exchange.advance(float(call.seconds))
    return sandbox_state(exchange, params)


def sandbox_state(exchange: Exchange, params: Params) -> Json:
    accounts = {
        name: {
            "balances": wire.balances(exchange.balance(name)),
            "open": {o.txid: wire.order(o, with_trades=False) for o in exchange.open_orders(name)},
        }
        for name in exchange.state.accounts
    }
    return {
        "time": exchange.now(),
        "seed": exchange.state.seed,
        "prices": {key: wire.amount(exchange.price(pair), pair.pair_decimals)
                   for key, pair in PAIRS.items()},
        "accounts": accounts,
    }


# --- helpers ------------------------------------------------------------------


def _names(value: str) -> list[str]:
    return [name for name in value.split(",") if name]


def _expiry(expiretm: str | None, timeinforce: str, now: float) -> float | None:
    """Kraken's expiretm: "0" or absent for none, "+<seconds>" from now, or an epoch."""
    if expiretm is None or expiretm == "0":
        if timeinforce == "GTD":
            raise InvalidArguments("expiretm")
        return None
    try:
        seconds = Decimal(expiretm.removeprefix("+"))
    except InvalidOperation:
        raise InvalidArguments("expiretm") from None
    if not seconds.is_finite() or not 0 < seconds < LATEST_EPOCH:
        raise InvalidArguments("expiretm")
    return now + float(seconds) if expiretm.startswith("+") else float(seconds)


def _bound(exchange: Exchange, account: str, value: str | None, name: str) -> float | None:
    """A ClosedOrders start/end: an epoch, or the txid of an order (its open time)."""
    if value is None:
        return None
    if re.fullmatch(r"[0-9]{1,11}(\.[0-9]+)?", value):
        return float(value)
    named = exchange.order(value)
    if named is None or named.account != account:
        raise InvalidArguments(name)
    return named.opentm
