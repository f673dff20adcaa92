"""An AddOrder whose answer is lost, at the wire: the real client over a respx-mocked
Kraken that placed the order anyway. The execution finds it by its cl_ord_id and never
sends it twice."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.domain.clock import VirtualClock
from core.domain.enums import ExecutionStatus, OrderRole, Side
from core.domain.models import ExecutionResult, TradeProposal
from core.exchange import Credentials, KrakenClient, NonceSource
from core.exchange.ratelimit import KrakenRateLimiter
from core.execution.manager import OrderExecutionManager
from core.storage.store import Store
from tests.exchange.kraken_fakes import API_KEY, BASE_URL, SECRET, START, form, mocked_kraken, ok, order_wire, refused

PROPOSAL = TradeProposal(
    symbol="BTC/USD",
    side=Side.BUY,
    entry_price=Decimal("37500"),
    stop_loss=Decimal("36750"),
    take_profit=Decimal("39000"),
    confidence=0.8,
    volume=Decimal("0.05"),
)


class Book:
    """The exchange's orders: what AddOrder placed, whatever became of its answer."""

    def __init__(self, lose_answers: int, busy_reads: int = 0) -> None:
        self.lose_answers = lose_answers
        self.busy_reads = busy_reads
        self.orders: dict[str, dict[str, Any]] = {}
        self.placements: list[dict[str, str]] = []

    def add_order(self, request: httpx.Request) -> httpx.Response:
        fields = dict(form(request))
        self.placements.append(fields)
        txid = f"O{len(self.placements):05d}-AAAAA-BBBBBB"
        market = fields["ordertype"] == "market"
        order = order_wire(
            "closed" if market else "open",
            ordertype=fields["ordertype"],
            vol_exec=fields["volume"] if market else "0",
            vol=fields["volume"],
            cl_ord_id=fields["cl_ord_id"],
        )
        self.orders[txid] = order
        if self.lose_answers:
            self.lose_answers -= 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return ok({"descr": {"order": "placed"}, "txid": [txid]})

    def listing(self, *, open_: bool) -> dict[str, dict[str, Any]]:
        return {t: o for t, o in self.orders.items() if (o["status"] == "open") == open_}

    def query(self, request: httpx.Request) -> httpx.Response:
        if self.busy_reads:
            self.busy_reads -= 1
            return refused("EService:Busy")
        wanted = dict(form(request))["txid"].split(",")
        return ok({t: self.orders[t] for t in wanted if t in self.orders})


@pytest.fixture
def book(request: pytest.FixtureRequest) -> Iterator[Book]:
    book = Book(**getattr(request, "param", {"lose_answers": 1}))
    with mocked_kraken() as kraken:
        kraken.post("/0/private/AddOrder").mock(side_effect=book.add_order)
        kraken.post("/0/private/QueryOrders").mock(side_effect=book.query)
        kraken.post("/0/private/OpenOrders").mock(side_effect=lambda _: ok({"open": book.listing(open_=True)}))
        kraken.post("/0/private/ClosedOrders").mock(
            side_effect=lambda _: ok({"closed": book.listing(open_=False), "count": 0})
        )
        yield book


async def execute(tmp_path: Path) -> ExecutionResult:
    clock = VirtualClock(START)
    ids = iter(["entry-id", "stop-id", "target-id"])
    async with KrakenClient(
        BASE_URL,
        Credentials(API_KEY, SECRET),
        clock=clock,
        nonce_source=NonceSource(clock),
        rate_limiter=KrakenRateLimiter("starter", clock=clock),
    ) as client:
        with Store.open(tmp_path / "tg.db") as store:
            manager = OrderExecutionManager(client, store, clock=clock, client_order_ids=lambda role: next(ids))
            return await manager.execute_trade(PROPOSAL)


async def test_a_lost_add_order_answer_is_resolved_by_lookup_without_a_duplicate(book: Book, tmp_path: Path) -> None:
    result = await execute(tmp_path)

    assert [p["cl_ord_id"] for p in book.placements] == ["entry-id", "stop-id", "target-id"]
    assert result.status is ExecutionStatus.FILLED
    entry = result.order_for(OrderRole.ENTRY)
    assert entry is not None and entry.external_id == "O00001-AAAAA-BBBBBB"
    assert result.warnings_contains("found it by client order id")


@pytest.mark.parametrize("book", [{"lose_answers": 0, "busy_reads": 2}], indirect=True)
async def test_the_clients_read_retries_count_in_the_result(book: Book, tmp_path: Path) -> None:
    result = await execute(tmp_path)

    assert result.status is ExecutionStatus.FILLED
    assert result.retry_count == 2
    assert result.warnings_contains("2 exchange read(s) retried after transient errors")
    assert result.latency_ms > 0  # the backoff waited on the clock the result is timed by
