"""Leases: one tg process at a time owns the critical section of an account's asset.

From an entry's intent to its confirmed protection, the orders and positions of one
asset on one account are in flight: another process reconciling them then would see
an entry without its stop and "repair" it, and two trades would both pass the risk
engine's limits. A lease, a row in tg's database that every process sharing the
database sees, makes that section one process's. A lease lapses when its holder's
time is up, or at once when its holder is a process of this machine that no longer
runs, so a killed tg never holds one for good.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from core.domain.clock import Clock, SystemClock
from core.domain.errors import StorageError
from core.storage.store import LeaseRecord, Store

LEASE_TTL_S = 600.0
"""Longer than any critical section; a holder on another machine that died keeps its
lease this long at most."""
POLL_S = 0.25


def lapsed(record: LeaseRecord, host: str, now: float) -> bool:
    """Whether `record` holds nothing anymore: its time is up, or its holder, a process
    of this machine (`host`), no longer runs."""
    return record.expires_at <= now or not may_run(record.host, record.pid, host)


def may_run(host: str, pid: int, here: str) -> bool:
    """Whether process `pid` of machine `host` may still run, seen from machine `here`:
    a process of this machine is asked directly, another machine's cannot be."""
    if host != here:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet still answers kill(pid, 0)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (not Linux): take it as running
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def asset_lease(account: str, asset: str) -> str:
    """The lease of one asset on one account (KrakenClient.account)."""
    return f"{account}:{asset}"


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop running: one caller at a time
        return None


class LeaseKeeper:
    """The leases this process holds on one database, each one task's: two symbols'
    cycles of one `tg run` exclude each other as two processes do (a reconcile in one
    must not repair the other's entry in flight). Waiting is on the injected clock."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        ttl_s: float = LEASE_TTL_S,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock or SystemClock()
        self._ttl_s = ttl_s
        self._on_wait = on_wait
        self._token = secrets.token_hex(8)
        self._host = socket.gethostname()
        self._held: set[str] = set()
        self._owners: dict[str, asyncio.Task[Any] | None] = {}

    def _mine(self, name: str) -> bool:
        """Whether `name`, if this keeper holds it, is the asking task's (or of a task
        that has ended, or taken outside any task)."""
        owner = self._owners.get(name)
        return owner is None or owner is _current_task() or owner.done()

    def holds(self, name: str) -> bool:
        """Whether this keeper holds `name` now, for the asking task: as the database has
        it, since a lease whose time ran out may have been taken by another process."""
        if name not in self._held or not self._mine(name):
            return False
        record = self._store.lease(name)
        if record is None or record.token != self._token:
            self._held.discard(name)
            return False
        return True

    def holder(self, name: str) -> LeaseRecord | None:
        """The live process other than this one, or the other task of this one, that
        holds `name`, if any."""
        record = self._store.lease(name)
        if record is None:
            return None
        if record.token == self._token:
            return None if self._mine(name) else record
        if lapsed(record, self._host, self._clock.time()):
            return None
        return record

    def try_acquire(self, name: str) -> bool:
        """Take (or renew) `name` if no other live process holds it."""
        record = self._store.lease(name)
        replacing = None
        if record is not None:
            if record.token == self._token and not self._mine(name):
                return False  # another task of this process is at work on it
            if record.token != self._token and self.holder(name) is not None:
                self._held.discard(name)
                return False
            replacing = record.token
        claim = LeaseRecord(name, self._token, self._host, os.getpid(), self._clock.time() + self._ttl_s)
        try:
            taken = self._store.claim_lease(claim, replacing=replacing)
        except StorageError:
            return False
        if taken:
            self._held.add(name)
            self._owners[name] = _current_task()
        else:
            self._held.discard(name)
        return taken

    async def acquire(
        self, name: str, *, wait_s: float, what: str, unless: asyncio.Event | None = None
    ) -> LeaseRecord | None:
        """Take `name`, waiting up to `wait_s` for its holder (and no longer than until
        `unless` is set: a process that is stopping has nothing to wait for); None when
        taken, else the holder still in the way. `what` names the lease for the wait message."""
        deadline = self._clock.time() + wait_s
        told = False
        while not self.try_acquire(name):
            holder = self.holder(name)
            if self._clock.time() >= deadline or (unless is not None and unless.is_set()):
                return holder or self._store.lease(name)
            if not told and self._on_wait is not None and holder is not None:
                self._on_wait(
                    f"waiting up to {wait_s:g} s for tg process {holder.pid} on {holder.host}, which is "
                    f"working on {what}"
                )
                told = True
            await self._clock.sleep(POLL_S)
        return None

    def release(self, name: str) -> None:
        if name in self._held and self._mine(name):
            self._held.discard(name)
            self._owners.pop(name, None)
            try:
                self._store.release_lease(name, self._token)
            except StorageError:
                pass  # it lapses on its own: the process is gone soon, or its time runs out

    def release_all(self) -> None:
        for name in list(self._held):
            self._owners.pop(name, None)  # the keeper is done: every task's leases go
            self.release(name)

    def __enter__(self) -> LeaseKeeper:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release_all()
