"""Canned wire payloads shaped as Kraken's REST API answers them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
import respx

from core.exchange import PairInfo

BASE_URL = "https://kraken.test"
# The secret of Kraken's published signing example: a valid base64 secret.
SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
API_KEY = "k3yPUBL1Cpart0fTheTestKeyXYZ"
START = 1_700_000_000.0


def _pair(
    altname: str,
    wsname: str | None,
    base: str,
    quote: str,
    pair_decimals: int,
    ordermin: str,
    tick_size: str,
) -> dict[str, Any]:
    pair: dict[str, Any] = {
        "altname": altname,
        "base": base,
        "quote": quote,
        "pair_decimals": pair_decimals,
        "cost_decimals": 5,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "fees": [[0, 0.26], [50000, 0.24], [100000, 0.22]],
        "fees_maker": [[0, 0.16], [50000, 0.14], [100000, 0.12]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": ordermin,
        "costmin": "0.5",
        "tick_size": tick_size,
        "status": "online",
    }
    if wsname is not None:
        pair["wsname"] = wsname
    return pair


ASSET_PAIRS: dict[str, Any] = {
    "XXBTZUSD": _pair("XBTUSD", "XBT/USD", "XXBT", "ZUSD", 1, "0.0001", "0.1"),
    "XBTUSDT": _pair("XBTUSDT", "XBT/USDT", "XXBT", "USDT", 1, "0.0001", "0.1"),
    "XETHZUSD": _pair("ETHUSD", "ETH/USD", "XETH", "ZUSD", 2, "0.002", "0.01"),
    "XRPUSDT": _pair("XRPUSDT", "XRP/USDT", "XXRP", "USDT", 5, "10", "0.00001"),
    "XXRPXXBT": _pair("XRPXBT", "XRP/XBT", "XXRP", "XXBT", 8, "10", "0.00000001"),
    "XXBTZUSD.d": _pair("XBTUSD.d", None, "XXBT", "ZUSD", 1, "0.0001", "0.1"),
}
BTC_USDT = PairInfo(
    key="XBTUSDT",
    altname="XBTUSDT",
    wsname="XBT/USDT",
    base="XXBT",
    quote="USDT",
    symbol="BTC/USDT",
    pair_decimals=1,
    lot_decimals=8,
    cost_decimals=5,
    ordermin=Decimal("0.0001"),
    costmin=Decimal("0.5"),
    tick_size=Decimal("0.1"),
    taker_fee_pct=Decimal("0.26"),
    maker_fee_pct=Decimal("0.16"),
)
"""ASSET_PAIRS' XBTUSDT as tg reads it (its fees: Kraken's first tier), for the tests
that need a pair without asking for one."""


@contextmanager
def mocked_kraken() -> Iterator[respx.MockRouter]:
    """Kraken at BASE_URL, mocked: AssetPairs answers ASSET_PAIRS; a test routes the rest."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        router.get("/0/public/AssetPairs").mock(return_value=ok(ASSET_PAIRS))
        yield router


def ok(result: Any) -> httpx.Response:
    return httpx.Response(200, json={"error": [], "result": result})


def refused(*errors: str) -> httpx.Response:
    return httpx.Response(200, json={"error": list(errors)})


def order_wire(
    status: str = "closed",
    *,
    pair: str = "XBTUSD",
    side: str = "buy",
    ordertype: str = "limit",
    price: str = "37500.0",
    vol: str = "1.25000000",
    vol_exec: str = "1.25000000",
    cost: str = "46875.00000",
    fee: str = "121.87500",
    avg_price: str = "37500.0",
    cl_ord_id: str | None = None,
    reason: str | None = None,
    trades: list[str] | None = None,
) -> dict[str, Any]:
    """One order object as Kraken's QueryOrders/OpenOrders/ClosedOrders carry it
    (`price` is descr.price, the order's limit or trigger; `avg_price` its fills')."""
    order: dict[str, Any] = {
        "refid": None,
        "userref": 42,
        "cl_ord_id": cl_ord_id,
        "status": status,
        "reason": reason,
        "opentm": 1688665496.7808,
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": pair,
            "type": side,
            "ordertype": ordertype,
            "price": price,
            "price2": "0",
            "leverage": "none",
            "order": f"{side} {vol} {pair} @ {ordertype} {price}",
            "close": "",
        },
        "vol": vol,
        "vol_exec": vol_exec,
        "cost": cost,
        "fee": fee,
        "price": avg_price,
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "",
        "oflags": "fciq",
    }
    if status == "closed":
        order["closetm"] = 1688665499.1922
    if trades is not None:
        order["trades"] = trades
    return order


def form(request: httpx.Request) -> list[tuple[str, str]]:
    """The form fields of a request body, in the order they were sent."""
    return parse_qsl(request.content.decode(), strict_parsing=True)
