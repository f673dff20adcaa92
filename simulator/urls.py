"""Which handler answers which path.

Kraken's public methods answer GET and POST, its private ones POST only. The sandbox's
control plane lives under /_sandbox/, a path no Kraken client calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator import responses
from simulator.exchange import Exchange
from simulator.params import Params

PublicHandler = Callable[[Exchange, Params], dict[str, Any]]
PrivateHandler = Callable[[Exchange, str, Params], dict[str, Any]]

PUBLIC: dict[str, PublicHandler] = {
    "/0/public/Time": responses.server_time,
    "/0/public/SystemStatus": responses.system_status,
    "/0/public/Assets": responses.assets,
    "/0/public/AssetPairs": responses.asset_pairs,
    "/0/public/Ticker": responses.ticker,
    "/0/public/OHLC": responses.ohlc,
}

PRIVATE: dict[str, PrivateHandler] = {
    "/0/private/Balance": responses.balance,
    "/0/private/AddOrder": responses.add_order,
    "/0/private/QueryOrders": responses.query_orders,
    "/0/private/OpenOrders": responses.open_orders,
    "/0/private/ClosedOrders": responses.closed_orders,
    "/0/private/CancelOrder": responses.cancel_order,
}

SANDBOX: dict[tuple[str, str], PublicHandler] = {
    ("POST", "/_sandbox/reset"): responses.sandbox_reset,
    ("POST", "/_sandbox/advance"): responses.sandbox_advance,
    ("GET", "/_sandbox/state"): responses.sandbox_state,
}
