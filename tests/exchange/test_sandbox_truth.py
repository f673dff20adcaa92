"""SandboxControl.truth keeps what it parsed of each order and parses an order again
only when the exchange tells it differently: the truth must stay the exchange's own,
order by order, as the account's history grows, changes and starts over."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from cli.wiring import open_embedded
from core.domain.enums import OrderType, Side
from core.exchange import Credentials, ExchangeOrder, KrakenClient
from core.exchange.sandbox_control import SandboxControl


async def test_the_truth_follows_each_order_through_fills_and_a_reset(tmp_path: Path) -> None:
    sandbox = open_embedded(tmp_path / "sandbox.db", seed=4, tier=None)
    client = KrakenClient(
        sandbox.base_url,
        Credentials(api_key=sandbox.api_key, api_secret=sandbox.api_secret),
        transport=sandbox.transport,
        clock=sandbox.clock,
    )
    control = SandboxControl(sandbox.base_url, transport=sandbox.transport)
    try:
        limit = await client.add_order("BTC/USD", Side.BUY, OrderType.LIMIT, Decimal("0.01"), price=Decimal("30000"))
        market = await client.add_order("BTC/USD", Side.BUY, OrderType.MARKET, Decimal("0.01"))
        first = await control.truth()
        assert first.orders[limit.txid].status == "open"
        settled = first.orders[market.txid]
        assert settled.status == "closed"

        sandbox.app.sandbox.exchange.force_fill(limit.txid, None, None)
        second = await control.truth()
        assert second.orders[limit.txid].status == "closed"
        assert second.orders[limit.txid].volume_executed == Decimal("0.01")
        assert second.orders[market.txid] is settled  # unchanged on the wire: not parsed again

        await control.reset()
        assert (await control.truth()).orders == {}
        again = await client.add_order("BTC/USD", Side.BUY, OrderType.MARKET, Decimal("0.02"))
        [(txid, order)] = (await control.truth()).orders.items()
        assert txid == again.txid and order.volume == Decimal("0.02")
        raw = (await control.state(prices=False))["accounts"]["default"]["orders"][txid]
        assert order == ExchangeOrder.from_wire(txid, raw)
    finally:
        await client.aclose()
        await control.aclose()
        sandbox.close()
