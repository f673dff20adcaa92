"""A check of the account while another tg trades (`tg run`'s supervisor, or a second
`tg run` on the same database): an entry in flight elsewhere, filled but not yet
protected, is that execution's business until it ends. The check leaves its asset out
(and says so), holds every asset it does judge under its lease while it reads and
judges, and judges the asset once the execution is done.

Found by running two `tg run --every 2s` on one database against a served sandbox
with ghost faults: each reported the other's entry as unprotected and unrecorded
(exit 3), while the account was whole."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from core.domain.config import ExecutionSettings
from core.exchange import PairInfo
from core.exchange.account import ExchangeTruth
from core.exchange.sandbox_control import SandboxControl
from core.execution.invariants import reconcile_and_check
from core.execution.leases import LeaseKeeper, asset_lease
from core.execution.manager import ExecutionResult, OrderExecutionManager
from core.execution.reconcile import Reconciler
from tests.integration.test_reconcile import long_proposal, open_long
from tests.tg_client import Rig, tg_client

pytestmark = pytest.mark.integration

BTC = "XXBT"


class StopGate(httpx.AsyncBaseTransport):
    """The sandbox's transport, holding back the first stop-loss order until opened: the
    entry before it has filled, and the execution is in flight."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/AddOrder") and b"ordertype=stop-loss" in request.content:
            self.reached.set()
            await self.opened.wait()
        return await self._inner.handle_async_request(request)


class Elsewhere:
    """Another tg at work on BTC: its lease held, its execution stopped at the stop-loss."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.gate = StopGate(rig.sandbox.transport)
        self.client = tg_client(rig.sandbox, transport=self.gate)
        self.leases = LeaseKeeper(rig.store, clock=rig.clock)
        self.task: asyncio.Task[ExecutionResult] | None = None

    async def start(self) -> None:
        """Take the lease, send the entry; back once the entry filled and the stop waits."""
        assert self.leases.try_acquire(asset_lease(self.client.account, BTC))
        proposal = long_proposal((await self.client.ticker("BTC/USDT")).last, id="P-elsewhere")
        manager = OrderExecutionManager(
            self.client, self.rig.store, clock=self.rig.clock, settings=ExecutionSettings(), run_id="R-elsewhere"
        )
        self.task = asyncio.ensure_future(manager.execute_trade(proposal))
        await self.gate.reached.wait()

    async def finish(self) -> ExecutionResult:
        assert self.task is not None
        self.gate.opened.set()
        result = await self.task
        self.leases.release_all()
        await self.client.aclose()
        return result


def supervisor(rig: Rig) -> Reconciler:
    return Reconciler(rig.client, rig.store, rig.clock, leases=LeaseKeeper(rig.store, clock=rig.clock))


async def pairs(rig: Rig) -> dict[str, PairInfo]:
    return {p.altname: p for p in (await rig.client.asset_pairs()).values()}


def truth_of(rig: Rig) -> Callable[[], Awaitable[ExchangeTruth]]:
    return SandboxControl(rig.sandbox.base_url, transport=rig.sandbox.transport).truth


async def test_an_entry_in_flight_elsewhere_is_left_to_it_then_judged(rig: Rig) -> None:
    elsewhere = Elsewhere(rig)
    await elsewhere.start()
    every_pair = await pairs(rig)
    before_stop = await truth_of(rig)()
    assert any(o.ordertype == "market" and o.status == "closed" for o in before_stop.orders.values())

    report, found = await reconcile_and_check(supervisor(rig), rig.store, truth_of(rig), every_pair)

    assert found.ok, found.violations  # the entry without its stop is in flight, not unprotected
    assert found.unjudged == ["BTC"] and report.in_flight == {BTC}
    assert report.changes == []  # nor repaired under the execution's feet
    assert not any(o.ordertype == "stop-loss" for o in (await truth_of(rig)()).orders.values())

    result = await elsewhere.finish()
    assert result.success, result.error_message
    report, found = await reconcile_and_check(supervisor(rig), rig.store, truth_of(rig), every_pair)
    assert found.ok and found.unjudged == [] and report.in_flight == set()


async def test_an_entry_that_starts_after_the_reconcile_read_is_left_to_it(rig: Rig) -> None:
    """The pass saw nothing of BTC; by the time the check reads the exchange another tg
    has an entry filled there: the check leases what it finds in play, or leaves it."""
    elsewhere = Elsewhere(rig)
    read = truth_of(rig)

    async def truth_after_the_entry() -> ExchangeTruth:
        if elsewhere.task is None:
            await elsewhere.start()
        return await read()

    report, found = await reconcile_and_check(supervisor(rig), rig.store, truth_after_the_entry, await pairs(rig))

    assert found.ok, found.violations
    assert found.unjudged == ["BTC"] and report.in_flight == {BTC}
    assert (await elsewhere.finish()).success


async def test_what_a_check_judges_is_under_its_lease_while_it_reads(rig: Rig) -> None:
    """No execution can start on an asset in the middle of the check that judges it."""
    await open_long(rig)
    other = LeaseKeeper(rig.store, clock=rig.clock)
    name = asset_lease(rig.client.account, BTC)
    read = truth_of(rig)
    attempts: list[bool] = []

    async def truth_while_another_tries() -> ExchangeTruth:
        attempts.append(other.try_acquire(name))
        return await read()

    _, found = await reconcile_and_check(supervisor(rig), rig.store, truth_while_another_tries, await pairs(rig))

    assert attempts == [False] and found.ok and found.unjudged == []
    assert other.try_acquire(name)  # and let go once the check is done
    other.release_all()


async def test_a_dead_holders_entry_is_judged_and_repaired(rig: Rig) -> None:
    """A lease whose holder is gone is no execution in flight: the check's reconcile takes
    the asset and protects the entry the holder left without a stop."""
    elsewhere = Elsewhere(rig)
    await elsewhere.start()
    assert elsewhere.task is not None
    elsewhere.task.cancel()  # the other tg dies at the stop: its lease goes with it
    with pytest.raises(asyncio.CancelledError):
        await elsewhere.task
    elsewhere.leases.release_all()

    report, found = await reconcile_and_check(supervisor(rig), rig.store, truth_of(rig), await pairs(rig))

    assert report.in_flight == set() and found.unjudged == []
    assert found.ok, found.violations
    assert any("stop" in change for change in report.changes), report.changes
    await elsewhere.client.aclose()
