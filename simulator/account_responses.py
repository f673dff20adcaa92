"""The endpoints of an account's history and terms: its ledger (Ledgers, QueryLedgers),
its fee tiers (TradeVolume), its margin positions (OpenPositions: none on spot) and
its orders' amend trails (OrderAmends). Handlers as in simulator.responses."""

from __future__ import annotations

import re
from typing import Any

from simulator import wire
from simulator.exceptions import InvalidArguments
from simulator.exchange import Exchange
from simulator.ledger import LedgerQuery
from simulator.matching import fee_tier
from simulator.models import LedgerType
from simulator.pairs import PAIRS, find_asset, find_pair
from simulator.params import (
    LedgersParams,
    OpenPositionsParams,
    OrderAmendsParams,
    Params,
    QueryLedgersParams,
    TradeVolumeParams,
    parse,
)

Json = dict[str, Any]

_LEDGER_TYPES = {str(kind): kind for kind in LedgerType}


def ledgers(exchange: Exchange, account: str, params: Params) -> Json:
    """Newest first, 50 a page. A type the sandbox never posts (margin, staking...)
    is a valid filter that matches nothing."""
    call = parse(LedgersParams, params)
    if call.aclass != "currency":
        raise InvalidArguments("aclass")
    assets = None if call.asset == "all" else {find_asset(name).id for name in call.asset.split(",") if name}
    wanted = _LEDGER_TYPES.get(call.type)
    if call.type != "all" and wanted is None:
        return {"ledger": {}, **({} if call.without_count else {"count": 0})}
    page, count = exchange.ledger_entries(
        account,
        LedgerQuery(
            assets=assets,
            type=wanted,
            start=_bound(exchange, account, call.start, "start"),
            end=_bound(exchange, account, call.end, "end"),
            offset=call.ofs,
        ),
    )
    result: Json = {"ledger": {entry.id: wire.ledger_entry(entry) for entry in page}}
    if not call.without_count:
        result["count"] = count
    return result


def query_ledgers(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(QueryLedgersParams, params)
    return {entry.id: wire.ledger_entry(entry) for entry in exchange.query_ledgers(account, call.id)}


def trade_volume(exchange: Exchange, account: str, params: Params) -> Json:
    """The 30-day volume in US dollars; each named pair's taker tier in `fees` and
    maker tier in `fees_maker` (no fees without `pair`, as on Kraken)."""
    call = parse(TradeVolumeParams, params)
    volume = exchange.trade_volume(account)
    result: Json = {"currency": "ZUSD", "volume": wire.amount(volume, 4)}
    if call.pair:
        chosen = [find_pair(name.strip()) for name in call.pair]
        result["fees"] = {p.key: wire.fee_tier(fee_tier(p.fees, volume)) for p in chosen}
        result["fees_maker"] = {p.key: wire.fee_tier(fee_tier(p.fees_maker, volume)) for p in chosen}
        if call.fee_schedule:
            result["schedules"] = [wire.fee_schedule(p, volume) for p in chosen]
    return result


def open_positions(exchange: Exchange, account: str, params: Params) -> Json | list[Json]:
    """Spot trading opens no margin positions: Kraken's empty answer, an object, or
    a list when consolidated by market."""
    call = parse(OpenPositionsParams, params)
    return [] if call.consolidation == "market" else {}


def order_amends(exchange: Exchange, account: str, params: Params) -> Json:
    call = parse(OrderAmendsParams, params)
    amends = exchange.order_amends(account, call.order_id)
    order = exchange.order(call.order_id)
    assert order is not None
    pair = PAIRS[order.spec.pair]
    return {"amends": [wire.order_amend(pair, amend) for amend in amends], "count": len(amends)}


def _bound(exchange: Exchange, account: str, value: str | None, name: str) -> float | None:
    """A Ledgers start/end: an epoch, or the id of one of the account's entries (its time)."""
    if value is None:
        return None
    if re.fullmatch(r"[0-9]{1,11}(\.[0-9]+)?", value):
        return float(value)
    entry = exchange.ledger_entry(value)
    if entry is None or entry.account != account:
        raise InvalidArguments(name)
    return entry.time
