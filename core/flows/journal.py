"""A long command's run in tg's database from before its work starts until it ends.

`tg simulate`, `tg replay` and `tg run` can take minutes to hours. Their run is
recorded first (so an unwritable database stops them before any work), what they have
finished is recorded as they go, and an interruption records the run as interrupted
with everything finished so far: Ctrl-C never wastes the work, and a killed process
leaves a run that `tg runs` lists as still running, with its progress.

A run made of many parts (a simulate campaign's runs) records each part's result as a
row of its own with its totals: at the 10,000th part as cheap as at the first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from core.storage.store import RUN_FAILED, RUN_INTERRUPTED, Store

INTERRUPTED: Final = "interrupted"
ERROR: Final = "error"
ENDINGS: Final = (INTERRUPTED, ERROR)
"""What an interruption or an error adds to the summary of what finished (`interruptible`)."""


class RunJournal:
    """One run's record, kept current. `every_s` spaces out progress writes (on the
    wall clock: they cost real time) so that a fast loop does not spend itself writing."""

    def __init__(self, store: Store, run_id: str, *, every_s: float = 0.0) -> None:
        self.store = store
        self.run_id = run_id
        self._every_s = every_s
        self._last = float("-inf")
        self._unrecorded: dict[int, dict[str, Any]] = {}

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
        return cls(store, run_id, every_s=every_s)

    def progress(self, summary: Callable[[], dict[str, Any]]) -> None:
        """Record what is finished, unless the last record is younger than `every_s`."""
        now = time.monotonic()
        if now - self._last >= self._every_s:
            self._last = now
            self.store.record_progress(self.run_id, summary())

    def record(self, part: int, result: dict[str, Any], totals: dict[str, Any]) -> None:
        """Record one more finished part's result and the run's totals with it, at once
        (never spaced out: a kill right after loses nothing). A part whose write did
        not complete is written with the run's end."""
        self._unrecorded[part] = result
        self.store.record_result(self.run_id, part, result, totals)
        del self._unrecorded[part]

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        self.store.finish_run(
            self.run_id, status=status, finished_at=time.time(), summary=summary, results=self._unrecorded
        )

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
