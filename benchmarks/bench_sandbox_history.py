"""Does the sandbox slow down as an account's history grows? Signed AddOrder +
QueryOrders round trips, in process over httpx.ASGITransport (as tg embeds it),
against a fresh account and against one with thousands of settled orders (filled
market orders, each with its trade, and cancelled limits) behind it:

    python benchmarks/bench_sandbox_history.py [--history 5000] [--round-trips 200] [--rounds 5]

Both exchanges' clocks move a minute at each round trip, so matching runs; the
limit orders a round places rest until its end (then they are cancelled, untimed). The rounds
interleave the two sides (fresh, history, fresh, ...), so the machine's load falls on
both alike. Prints the median round trips per CPU-second of each side and the ratio
history / fresh (target: at least 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from decimal import Decimal

import httpx
from bench_simulator import Client

from core.domain.clock import VirtualClock
from simulator.app import create_app
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import DEFAULT_ACCOUNT, Exchange
from simulator.models import OrderSpec, OrderType, Side

_RESTING = {"pair": "XBTUSDT", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "1000"}
_STEP_S = 60.0


def exchange_with_history(orders: int) -> Exchange:
    """An exchange whose default account placed `orders` orders that all settled."""
    clock = VirtualClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock, seed=42, balances={"USDT": Decimal(10_000_000), "XXBT": Decimal(1000)})
    for i in range(orders):
        clock.advance(_STEP_S)
        if i % 3 == 2:
            rested = exchange.add_order(
                DEFAULT_ACCOUNT,
                OrderSpec("XBTUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.001"), price=Decimal(1000)),
            )
            assert rested is not None
            exchange.cancel_order(DEFAULT_ACCOUNT, txid=rested.txid)
        else:
            side = Side.BUY if i % 3 == 0 else Side.SELL
            exchange.add_order(DEFAULT_ACCOUNT, OrderSpec("XBTUSDT", side, OrderType.MARKET, Decimal("0.001")))
    assert all(not o.is_live for o in exchange.state.orders.values())
    return exchange


async def round_trips(exchange: Exchange, client: Client, count: int) -> float:
    """Round trips per CPU-second: place a resting order, then look it up."""
    clock = exchange.clock
    assert isinstance(clock, VirtualClock)
    start = time.process_time()
    for _ in range(count):
        clock.advance(_STEP_S)
        placed = await client.private("AddOrder", _RESTING)
        await client.private("QueryOrders", {"txid": placed["result"]["txid"][0]})
    spent = time.process_time() - start
    exchange.cancel_all(DEFAULT_ACCOUNT)  # untimed: each round starts with no order resting
    return count / spent


async def main(history: int, count: int, rounds: int) -> None:
    sides = {"fresh": exchange_with_history(0), "history": exchange_with_history(history)}
    clients: dict[str, Client] = {}
    for name, exchange in sides.items():
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(exchange, tier=None, lost_response="hang")),
            base_url="http://sandbox",
        )
        clients[name] = Client(http, exchange.create_api_key())
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, exchange in sides.items():
            rates[name].append(await round_trips(exchange, clients[name], count))
    for client in clients.values():
        await client.http.aclose()
    fresh, old = (statistics.median(rates[name]) for name in ("fresh", "history"))
    print(f"AddOrder + QueryOrders round trips per CPU-second, median of {rounds} x {count}")
    print(f"fresh account        {fresh:8.0f}")
    print(f"{history:>5} orders behind {old:8.0f}")
    print(f"ratio history/fresh  {old / fresh:8.2f}  (target >= 0.8)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=5000)
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.history, arguments.round_trips, arguments.rounds))
