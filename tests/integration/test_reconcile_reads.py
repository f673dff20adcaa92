"""What one reconcile pass reads: tg's records once, the holding baselines once, the
exchange's orders and balances once; again only under leases it has just taken."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from core.execution.leases import LeaseKeeper, asset_lease
from core.execution.reconcile import Reconciler
from core.storage.store import Store
from tests.integration.test_reconcile import open_long
from tests.integration.trade_history import counting_requests
from tests.tg_client import Rig

pytestmark = pytest.mark.integration

READS = ("orders_in_play", "positions", "holding_baselines", "namespace", "traded_symbols")


def counting_reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    counts: Counter[str] = Counter()

    def counted(name: str, read: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return read(*args, **kwargs)

        return call

    for name in READS:
        monkeypatch.setattr(store, name, counted(name, getattr(store, name)))
    return counts


async def test_a_pass_reads_the_store_and_the_exchange_once(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    await open_long(rig)
    await Reconciler(rig.client, rig.store, rig.clock).reconcile()  # measures the baselines
    reads = counting_reads(rig.store, monkeypatch)
    with counting_requests() as requests:
        report = await Reconciler(rig.client, rig.store, rig.clock).reconcile()

    assert report.changes == [] and report.errors == []
    assert reads == dict.fromkeys(READS, 1)
    assert {path.rsplit("/", 1)[1]: n for path, n in requests.items()} == {
        "ClosedOrders": 1,
        "OpenOrders": 1,
        "Balance": 1,
    }


async def test_records_are_read_again_under_a_lease_just_taken(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    await open_long(rig)
    keeper = LeaseKeeper(rig.store, clock=rig.clock)
    reads = counting_reads(rig.store, monkeypatch)
    await Reconciler(rig.client, rig.store, rig.clock, leases=keeper).reconcile()
    assert reads["orders_in_play"] == 2  # before the lease, to know what to lease; then under it
    reads.clear()

    name = asset_lease(rig.client.account, (await rig.client.resolve_pair("BTC/USDT")).base)
    assert keeper.try_acquire(name)  # held before the pass: what it reads is under the lease already
    await Reconciler(rig.client, rig.store, rig.clock, leases=keeper).reconcile()
    keeper.release(name)
    assert reads["orders_in_play"] == 1
