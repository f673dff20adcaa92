"""A long command's run in tg's database from before its work starts until it ends.

`tg simulate`, `tg replay` and `tg run` can take minutes to hours. Their run is
recorded first (so an unwritable database stops them before any work), what they have
finished is recorded as they go, and an interruption records the run as interrupted
with everything finished so far: Ctrl-C never wastes the work, and a killed process
leaves a run that `tg runs` lists as died, with its progress: a run's lease (in the
leases table) names the process running it, which `tg runs` asks after (on this machine
at once; a run on another machine counts as running until its lease's day runs out
without a word of progress from it).

A run made of many parts (a simulate campaign's runs) records each part's result as a
row of its own with its totals: at the 10,000th part as cheap as at the first.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any, Final

from core.domain.errors import StorageError
from core.execution.leases import lapsed
from core.storage.store import RUN_FAILED, RUN_INTERRUPTED, RUN_STARTED, LeaseRecord, RunRecord, Store

INTERRUPTED: Final = "interrupted"
ERROR: Final = "error"
ENDINGS: Final = (INTERRUPTED, ERROR)
"""What an interruption or an error adds to the summary of what finished (`interruptible`)."""
RUN_DIED: Final = "died"
"""How `tg runs` lists a run recorded as running whose process is gone (killed, crashed)."""
RUN_LEASE_TTL_S = 86_400.0
"""How long a run counts as running without a word from its process, when that process
cannot be asked (it runs on another machine); its progress renews the lease."""


def _run_lease(run_id: str) -> str:
    return f"run:{run_id}"


def as_listed(store: Store, records: Sequence[RunRecord]) -> list[RunRecord]:
    """The runs as `tg runs` and `tg show` tell them: one recorded as running whose
    process is gone is listed as died. A run without a lease (recorded before runs had
    one, or whose lease could not be written) stays as recorded."""
    host, now = socket.gethostname(), time.time()

    def died(record: RunRecord) -> bool:
        if record.status != RUN_STARTED:
            return False
        lease = store.lease(_run_lease(record.run_id))
        return lease is not None and lapsed(lease, host, now)

    return [replace(r, status=RUN_DIED) if died(r) else r for r in records]


class RunJournal:
    """One run's record, kept current. `every_s` spaces out progress writes (on the
    wall clock: they cost real time) so that a fast loop does not spend itself writing."""

    def __init__(self, store: Store, run_id: str, *, every_s: float = 0.0) -> None:
        self.store = store
        self.run_id = run_id
        self._every_s = every_s
        self._last = float("-inf")
        self._unrecorded: dict[int, dict[str, Any]] = {}
        self._token = secrets.token_hex(8)
        self._claimed_at = float("-inf")

    @classmethod
    def start(
        cls,
        store: Store,
        run_id: str,
        *,
        kind: str,
        symbol: str | None,
        params: dict[str, Any],
        every_s: float = 0.0,
    ) -> RunJournal:
        store.start_run(run_id, kind=kind, symbol=symbol, started_at=time.time(), params=params)
        journal = cls(store, run_id, every_s=every_s)
        journal._claim()
        return journal

    def _claim(self) -> None:
        """Take, or renew once half its time is gone, the run's lease: this process runs it."""
        now = time.time()
        if now - self._claimed_at < RUN_LEASE_TTL_S / 2:
            return
        claim = LeaseRecord(
            _run_lease(self.run_id), self._token, socket.gethostname(), os.getpid(), now + RUN_LEASE_TTL_S
        )
        with suppress(StorageError):  # without its lease the run is listed as recorded: running
            if self.store.claim_lease(claim, replacing=self._token):
                self._claimed_at = now

    def progress(self, summary: Callable[[], dict[str, Any]]) -> None:
        """Record what is finished, unless the last record is younger than `every_s`."""
        now = time.monotonic()
        if now - self._last >= self._every_s:
            self._last = now
            self.store.record_progress(self.run_id, summary())
            self._claim()

    def record(self, part: int, result: dict[str, Any], totals: dict[str, Any]) -> None:
        """Record one more finished part's result and the run's totals with it, at once
        (never spaced out: a kill right after loses nothing). A part whose write did
        not complete is written with the run's end."""
        self._unrecorded[part] = result
        self.store.record_result(self.run_id, part, result, totals)
        del self._unrecorded[part]
        self._claim()

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        self.store.finish_run(
            self.run_id, status=status, finished_at=time.time(), summary=summary, results=self._unrecorded
        )
        with suppress(StorageError):  # a lease left behind names a run no longer listed as running
            self.store.release_lease(_run_lease(self.run_id), self._token)

    @contextmanager
    def interruptible(self, summary: Callable[[], dict[str, Any]]) -> Iterator[None]:
        """An interruption (Ctrl-C, a cancelled task) inside the block ends the run as
        interrupted, an error as failed, each with `summary()` of what finished; the
        interruption or error goes on."""
        try:
            yield
        except (KeyboardInterrupt, asyncio.CancelledError):
            self.finish(RUN_INTERRUPTED, {**summary(), INTERRUPTED: True})
            raise
        except Exception as exc:
            self.finish(RUN_FAILED, {**summary(), ERROR: str(exc)})
            raise
