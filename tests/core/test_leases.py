"""LeaseKeeper on a real Store: the lease is what keeps two tg processes out of one
asset's critical section, so each of its rules (one holder, re-entry, release,
expiry, a dead holder, the bounded wait, the race) is pinned here on SQLite and on PostgreSQL,
with a VirtualClock wherever time matters, so nothing sleeps.

35 tests, ~1.5 s, all passing at e258e46. Before it one failed,
test_a_holder_whose_lease_was_taken_no_longer_holds_it: a keeper whose lease ran out
(LEASE_TTL_S; nothing renews it during a cycle) and was taken by another keeper still
answered holds() True, even after its own try_acquire() was refused, and the
Reconciler skips taking a lease its keeper holds(), so it would have repaired an asset
the new holder was working on. holds() now asks the database.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.domain.clock import VirtualClock
from core.execution.leases import LeaseKeeper, asset_lease
from core.storage.store import LeaseRecord, Store

NAME = asset_lease("acct12345678", "XXBT")
START = 1_767_225_600.0


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Each rule holds on a SQLite file and on a PostgreSQL server, where processes on
    several machines share the lease."""
    if request.param == "sqlite":
        return tmp_path / "tg.db"
    url: str = request.getfixturevalue("pg_tg_database")
    return url


@pytest.fixture
def store(location: Path | str) -> Iterator[Store]:
    with Store.open(location) as opened:
        yield opened


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


def dead_pid() -> int:
    """The pid of a process of this machine that has ended and been reaped."""
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(finished.stdout)


def test_one_holder_at_a_time(store: Store, clock: VirtualClock) -> None:
    first, second = LeaseKeeper(store, clock=clock), LeaseKeeper(store, clock=clock)

    assert first.try_acquire(NAME)
    assert not second.try_acquire(NAME)
    assert first.holds(NAME) and not second.holds(NAME)
    holder = second.holder(NAME)
    assert holder is not None and holder == store.lease(NAME)
    assert first.holder(NAME) is None  # its own lease is in nobody else's hands


def test_leases_of_other_assets_are_independent(store: Store, clock: VirtualClock) -> None:
    first, second = LeaseKeeper(store, clock=clock), LeaseKeeper(store, clock=clock)

    assert first.try_acquire(NAME)
    assert second.try_acquire(asset_lease("acct12345678", "XETH"))
    assert second.try_acquire(asset_lease("otheraccount", "XXBT"))


def test_re_entrant_for_its_holder_and_renewed(store: Store, clock: VirtualClock) -> None:
    keeper = LeaseKeeper(store, clock=clock, ttl_s=100)

    assert keeper.try_acquire(NAME)
    clock.advance(60)
    assert keeper.try_acquire(NAME)  # again, by the same holder: renewed, not refused
    record = store.lease(NAME)
    assert record is not None and record.expires_at == START + 160


def test_a_released_lease_can_be_taken(store: Store, clock: VirtualClock) -> None:
    first, second = LeaseKeeper(store, clock=clock), LeaseKeeper(store, clock=clock)
    assert first.try_acquire(NAME)

    first.release(NAME)

    assert store.lease(NAME) is None and not first.holds(NAME)
    assert second.try_acquire(NAME)


def test_release_all_on_exit(store: Store, clock: VirtualClock) -> None:
    other = asset_lease("acct12345678", "XETH")
    with LeaseKeeper(store, clock=clock) as keeper:
        assert keeper.try_acquire(NAME) and keeper.try_acquire(other)
    assert store.lease(NAME) is None and store.lease(other) is None


def test_releasing_leaves_another_holders_lease_alone(store: Store, clock: VirtualClock) -> None:
    first, second = LeaseKeeper(store, clock=clock, ttl_s=10), LeaseKeeper(store, clock=clock)
    assert first.try_acquire(NAME)
    clock.advance(11)
    assert second.try_acquire(NAME)

    first.release(NAME)  # late: its lease had lapsed and is someone else's now

    assert second.holder(NAME) is None and first.holder(NAME) is not None


def test_an_expired_lease_can_be_taken(store: Store, clock: VirtualClock) -> None:
    first, second = LeaseKeeper(store, clock=clock, ttl_s=10), LeaseKeeper(store, clock=clock)
    assert first.try_acquire(NAME)

    clock.advance(9.5)
    assert not second.try_acquire(NAME)  # still within its time
    clock.advance(0.5)
    assert second.holder(NAME) is None
    assert second.try_acquire(NAME)
    record = store.lease(NAME)
    assert record is not None and record.token != first._token


def test_a_holder_whose_lease_was_taken_no_longer_holds_it(store: Store, clock: VirtualClock) -> None:
    """One holder at a time from the keepers' own view too: the Reconciler skips taking
    a lease its keeper `holds()`, so a keeper that still believes in a lease another
    process took would repair an asset that process is working on."""
    first, second = LeaseKeeper(store, clock=clock, ttl_s=10), LeaseKeeper(store, clock=clock)
    assert first.try_acquire(NAME)
    clock.advance(11)
    assert second.try_acquire(NAME)

    assert not first.try_acquire(NAME)  # it learns it lost the lease ...
    assert not first.holds(NAME)  # ... and must not go on claiming it


def test_a_dead_holder_on_this_host_is_taken_at_once(store: Store, clock: VirtualClock) -> None:
    pid = dead_pid()
    far = START + 1_000_000
    assert store.claim_lease(LeaseRecord(NAME, "deadbeef", socket.gethostname(), pid, far), replacing=None)
    keeper = LeaseKeeper(store, clock=clock)

    assert keeper.holder(NAME) is None
    assert keeper.try_acquire(NAME)
    record = store.lease(NAME)
    assert record is not None and record.pid != pid and record.token != "deadbeef"


def test_a_holder_on_another_host_is_trusted_until_its_time_runs_out(store: Store, clock: VirtualClock) -> None:
    """Its pid means nothing here: only its expiry frees the lease."""
    record = LeaseRecord(NAME, "elsewhere", f"not-{socket.gethostname()}", dead_pid(), START + 30)
    assert store.claim_lease(record, replacing=None)
    keeper = LeaseKeeper(store, clock=clock)

    assert keeper.holder(NAME) == record
    assert not keeper.try_acquire(NAME)
    clock.advance(30)
    assert keeper.try_acquire(NAME)


async def test_acquire_waits_then_gives_up_naming_the_holder(store: Store, clock: VirtualClock) -> None:
    holder = LeaseKeeper(store, clock=clock)
    assert holder.try_acquire(NAME)
    told: list[str] = []
    waiter = LeaseKeeper(store, clock=clock, on_wait=told.append)

    found = await waiter.acquire(NAME, wait_s=5, what="BTC/USD on this account")

    assert found == store.lease(NAME) and found is not None and found.token == holder._token
    assert clock.monotonic() >= 5  # it waited its time out, on its clock
    assert not waiter.holds(NAME)
    [message] = told
    assert "5 s" in message and str(found.pid) in message and "BTC/USD on this account" in message


async def test_acquire_takes_the_lease_once_its_holder_lets_go(store: Store, clock: VirtualClock) -> None:
    holder = LeaseKeeper(store, clock=clock)
    assert holder.try_acquire(NAME)
    told: list[str] = []

    def released_on_notice(message: str) -> None:
        told.append(message)
        holder.release(NAME)

    waiter = LeaseKeeper(store, clock=clock, on_wait=released_on_notice)
    assert await waiter.acquire(NAME, wait_s=60, what="BTC") is None
    assert waiter.holds(NAME) and len(told) == 1
    assert clock.monotonic() < 60


async def test_acquire_stops_waiting_once_told_to(store: Store, clock: VirtualClock) -> None:
    """A `tg run` that is stopping does not sit out the wait for a lease it would use for nothing."""
    holder = LeaseKeeper(store, clock=clock)
    assert holder.try_acquire(NAME)
    stopping = asyncio.Event()

    def stop_on_notice(message: str) -> None:
        stopping.set()

    waiter = LeaseKeeper(store, clock=clock, on_wait=stop_on_notice)
    found = await waiter.acquire(NAME, wait_s=60, what="BTC", unless=stopping)

    assert found is not None and found.token == holder._token and not waiter.holds(NAME)
    assert clock.monotonic() < 1  # one poll, not the minute


async def test_acquire_of_a_free_lease_neither_waits_nor_tells(store: Store, clock: VirtualClock) -> None:
    told: list[str] = []
    keeper = LeaseKeeper(store, clock=clock, on_wait=told.append)

    assert await keeper.acquire(NAME, wait_s=60, what="BTC") is None
    assert keeper.holds(NAME) and told == [] and clock.monotonic() == 0


def test_of_two_claims_that_both_saw_the_lease_free_only_the_first_is_written(location: Path | str) -> None:
    """The interleaving a race can produce, forced: both connections read "free" before
    either writes; the claim's own transaction must re-check and refuse the second."""
    path = location
    with Store.open(path) as one, Store.open(path) as two:
        host = socket.gethostname()
        assert one.lease(NAME) is None and two.lease(NAME) is None
        assert one.claim_lease(LeaseRecord(NAME, "aaaa", host, 1, START), replacing=None)
        assert not two.claim_lease(LeaseRecord(NAME, "bbbb", host, 2, START), replacing=None)
        assert two.lease(NAME) == LeaseRecord(NAME, "aaaa", host, 1, START)


def race_for_the_lease(path: Path | str, *, contenders: int) -> list[bool]:
    """`contenders` keepers, each on its own connection in its own thread, released
    together to try for NAME: whether each took it."""
    start = threading.Barrier(contenders)
    won: list[bool] = []
    lock = threading.Lock()

    def contend() -> None:
        with Store.open(path) as own:
            keeper = LeaseKeeper(own)
            start.wait(timeout=30)
            taken = keeper.try_acquire(NAME)
            with lock:
                won.append(taken)

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return won


@pytest.mark.parametrize("round_", range(20))
def test_two_keepers_on_two_connections_race_and_exactly_one_wins(location: Path | str, round_: int) -> None:
    """Each keeper on its own connection in its own thread, released together: the
    claim's transaction, not luck, decides."""
    path = location
    Store.open(path).close()
    assert sorted(race_for_the_lease(path, contenders=2)) == [False, True]


def test_keepers_racing_for_a_dead_holders_lease_take_it_once(location: Path | str) -> None:
    """All four find the holder dead and replace it; every replacement after the first
    must fail, as the lease is no longer the dead one's."""
    path = location
    with Store.open(path) as setup:
        setup.claim_lease(LeaseRecord(NAME, "deadbeef", socket.gethostname(), dead_pid(), START * 2), replacing=None)
    assert sorted(race_for_the_lease(path, contenders=4)) == [False] * 3 + [True]


async def test_two_tasks_of_one_keeper_exclude_each_other(store: Store, clock: VirtualClock) -> None:
    """One `tg run` trades several symbols at once through one keeper: the reconcile of
    one symbol's cycle must see another symbol's lease as in flight, as another process's
    (the soak found one entry made into two positions when it did not)."""
    keeper = LeaseKeeper(store, clock=clock)
    taken = asyncio.Event()
    done = asyncio.Event()

    async def trading() -> None:
        assert keeper.try_acquire(NAME)
        assert keeper.holds(NAME)
        taken.set()
        await done.wait()
        keeper.release(NAME)

    owner = asyncio.create_task(trading())
    await taken.wait()
    assert not keeper.holds(NAME)  # this task does not hold it
    assert not keeper.try_acquire(NAME)
    holder = keeper.holder(NAME)
    assert holder is not None and holder == store.lease(NAME)
    keeper.release(NAME)  # not this task's to release
    assert store.lease(NAME) is not None
    done.set()
    await owner
    assert keeper.try_acquire(NAME) and keeper.holds(NAME)
