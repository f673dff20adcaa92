"""A price shape asked for "from now" on a running clock (`tg sim serve`, which follows
the wall clock): the clock moves between the reading that dates the shape and the
matching the exchange does before laying it, and the shape must still be laid, from
the moment it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.app import create_app
from simulator.embedded import SANDBOX_EPOCH
from simulator.exceptions import InvalidArguments
from simulator.exchange import Exchange
from simulator.models import PriceShape

_TICK_S = 0.001


class TickingClock(VirtualClock):
    """A clock that runs: each reading is a millisecond after the one before, as the
    wall clock moves while a request is answered (and no test waits for it)."""

    def time(self) -> float:
        self.advance(_TICK_S)
        return super().time()


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock(SANDBOX_EPOCH)


@pytest.fixture
async def http(clock: TickingClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Exchange.create(clock, seed=42), tier=None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox.kraken", headers={"X-TG-Sandbox": "1"}
    ) as client:
        yield client


async def test_a_flash_crash_from_now_is_laid_on_a_running_clock(http: httpx.AsyncClient) -> None:
    before = await http.get("/_sandbox/state", params={"orders": "false"})
    asked = before.json()["result"]["time"]
    answer = (
        await http.post("/_sandbox/price", json={"shape": "flash-crash", "pair": "BTC/USD", "pct": -8, "over": 60})
    ).json()
    assert answer["error"] == []
    shape = answer["result"]["shape"]
    assert shape["shape"] == "flash-crash" and shape["pair"] == "XXBTZUSD"
    assert asked < shape["at"] < asked + 1  # from the moment it was laid, not a second later

    await http.post("/_sandbox/advance", json={"seconds": 60})
    bottom = Decimal((await http.get("/_sandbox/state")).json()["result"]["prices"]["XXBTZUSD"])
    start = Decimal(before.json()["result"]["prices"]["XXBTZUSD"])
    assert bottom < start * Decimal("0.95")


def test_a_shape_dated_before_what_was_matched_is_still_refused(clock: TickingClock) -> None:
    exchange = Exchange.create(clock, seed=42)
    exchange.sync()
    matched = exchange.now()
    with pytest.raises(InvalidArguments):
        exchange.add_price_shape(PriceShape("jump", matched - 1, "XXBTZUSD", Decimal(5)))
