"""A `tg run` that is stopping does not wait out another tg's lease: a decision still
waiting for it gives up at once, in one line (found by two `tg run --every 2s` on one
database: the one whose `--for` ended sat out the other's 60 s lease first)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.domain.config import Settings
from core.domain.errors import BusyError
from core.execution.leases import LeaseKeeper, asset_lease
from core.flows.trade_cycle import ExchangeVenue
from tests.tg_client import Rig

pytestmark = pytest.mark.integration


async def test_a_stopping_venue_gives_up_the_wait_for_a_lease(rig: Rig, tmp_path: Path) -> None:
    other = LeaseKeeper(rig.store, clock=rig.clock)
    assert other.try_acquire(asset_lease(rig.client.account, "XXBT"))
    stopping = asyncio.Event()
    venue = ExchangeVenue(
        rig.client,
        rig.store,
        rig.clock,
        Settings(db=tmp_path / "tg.db"),
        leases=LeaseKeeper(rig.store, clock=rig.clock),
        stopping=stopping,
    )
    stopping.set()
    started = rig.clock.monotonic()

    with pytest.raises(BusyError, match="^stopping: no BTC/USDT decision while tg process"):
        async with venue.trading("BTC/USDT"):
            pytest.fail("the critical section was entered under another's lease")

    assert rig.clock.monotonic() - started < 1  # not the minute of execution.lease_wait_s
    other.release_all()
    async with venue.trading("BTC/USDT"):  # free, it is taken even while stopping: nothing waits
        pass
