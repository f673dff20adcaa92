"""Which handler answers which path.

Kraken's public methods answer GET and POST, its private ones POST only. The sandbox's
control plane, under /_sandbox/, has its own table in control.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator import account_responses, responses
from simulator.exchange import Exchange
from simulator.params import Params

Result = dict[str, Any] | list[Any]
"""A handler's answer: an object, or (OpenPositions consolidated by market) a list."""
PublicHandler = Callable[[Exchange, Params], Result]
PrivateHandler = Callable[[Exchange, str, Params], Result]

PUBLIC: dict[str, PublicHandler] = {
    "/0/public/Time": responses.server_time,
    "/0/public/SystemStatus": responses.system_status,
    "/0/public/Assets": responses.assets,
    "/0/public/AssetPairs": responses.asset_pairs,
    "/0/public/Ticker": responses.ticker,
    "/0/public/OHLC": responses.ohlc,
    "/0/public/Depth": responses.depth,
    "/0/public/Trades": responses.trades,
    "/0/public/Spread": responses.spread,
}

PRIVATE: dict[str, PrivateHandler] = {
    "/0/private/Balance": responses.balance,
    "/0/private/BalanceEx": responses.balance_ex,
    "/0/private/TradeBalance": responses.trade_balance,
    "/0/private/AddOrder": responses.add_order,
    "/0/private/AddOrderBatch": responses.add_order_batch,
    "/0/private/AmendOrder": responses.amend_order,
    "/0/private/EditOrder": responses.edit_order,
    "/0/private/CancelOrder": responses.cancel_order,
    "/0/private/CancelOrderBatch": responses.cancel_order_batch,
    "/0/private/CancelAll": responses.cancel_all,
    "/0/private/CancelAllOrdersAfter": responses.cancel_all_orders_after,
    "/0/private/QueryOrders": responses.query_orders,
    "/0/private/OpenOrders": responses.open_orders,
    "/0/private/ClosedOrders": responses.closed_orders,
    "/0/private/TradesHistory": responses.trades_history,
    "/0/private/QueryTrades": responses.query_trades,
    "/0/private/Ledgers": account_responses.ledgers,
    "/0/private/QueryLedgers": account_responses.query_ledgers,
    "/0/private/TradeVolume": account_responses.trade_volume,
    "/0/private/OpenPositions": account_responses.open_positions,
    "/0/private/OrderAmends": account_responses.order_amends,
}
