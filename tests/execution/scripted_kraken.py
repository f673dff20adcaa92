"""A scripted stand-in for KrakenClient, as the seed's AsyncMock is: each add_order
call takes the next scripted outcome (an exception to raise, or None to succeed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from core.domain.enums import OrderType, Side
from core.domain.errors import UnknownOrderError
from core.exchange import AddOrderAck, CallCosts, ExchangeOrder, PairInfo
from tests.exchange.kraken_fakes import BTC_USDT, order_wire


class ScriptedKraken:
    def __init__(
        self,
        add_order_outcomes: Sequence[BaseException | None] = (),
        *,
        price: Decimal = Decimal("60000"),
        fill_ratio: Decimal = Decimal("1"),
        visible_after_queries: int = 0,
        never_visible: bool = False,
    ) -> None:
        self.outcomes = list(add_order_outcomes)
        self.price = price
        self.fill_ratio = fill_ratio
        self.hidden_queries = visible_after_queries
        self.never_visible = never_visible
        self.add_order_calls: list[dict[str, Any]] = []
        self.cancel_calls: list[str] = []
        self.orders: dict[str, dict[str, Any]] = {}

    @contextmanager
    def measure(self) -> Iterator[CallCosts]:
        """A script neither retries nor waits: its calls cost nothing."""
        yield CallCosts()

    async def resolve_pair(self, symbol: str) -> PairInfo:
        return BTC_USDT

    async def add_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        volume: Decimal,
        price: Decimal | None = None,
        *,
        cl_ord_id: str | None = None,
        userref: int | None = None,
        validate: bool = False,
        close: object = None,
    ) -> AddOrderAck:
        self.add_order_calls.append(
            {
                "symbol": symbol,
                "side": side,
                "type": order_type,
                "volume": volume,
                "price": price,
                "cl_ord_id": cl_ord_id,
            }
        )
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        txid = f"ORDER-{len(self.add_order_calls)}"
        filled = volume * self.fill_ratio if order_type is OrderType.MARKET else Decimal("0")
        self.orders[txid] = order_wire(
            "closed" if filled == volume else "open",
            pair="XBTUSDT",
            side=side.value,
            ordertype=order_type.value,
            price=str(price or 0),
            vol=str(volume),
            vol_exec=str(filled),
            cost=str(filled * self.price),
            fee=str(filled * self.price * Decimal("0.0026")),
            avg_price=str(self.price if filled else 0),
            cl_ord_id=cl_ord_id,
        )
        return AddOrderAck(txid=txid, description="")

    async def query_orders(self, txids: Sequence[str], *, trades: bool = False) -> dict[str, ExchangeOrder]:
        if self.never_visible:
            return {}
        if self.hidden_queries > 0:
            self.hidden_queries -= 1
            return {}
        return {t: ExchangeOrder.from_wire(t, self.orders[t]) for t in txids if t in self.orders}

    def _listed(self, open_: bool, cl_ord_id: str | None) -> dict[str, ExchangeOrder]:
        if self.never_visible:
            return {}
        return {
            t: ExchangeOrder.from_wire(t, o)
            for t, o in self.orders.items()
            if (o["status"] == "open") is open_ and (cl_ord_id is None or o["cl_ord_id"] == cl_ord_id)
        }

    async def open_orders(self, *, cl_ord_id: str | None = None) -> dict[str, ExchangeOrder]:
        return self._listed(True, cl_ord_id)

    async def closed_orders(self, *, cl_ord_id: str | None = None) -> dict[str, ExchangeOrder]:
        return self._listed(False, cl_ord_id)

    async def cancel_order(self, ref: str) -> int:
        """By txid or client order id, as Kraken's CancelOrder."""
        self.cancel_calls.append(ref)
        named = [o for t, o in self.orders.items() if ref in (t, o["cl_ord_id"]) and o["status"] == "open"]
        if not named:
            raise UnknownOrderError(f"Kraken answered EOrder:Unknown order to CancelOrder ({ref})")
        for order in named:
            order["status"] = "canceled"
        return len(named)
