"""Ctrl-C and SIGTERM for a command that trades: at once while it only looks or waits,
never in the middle of an execution, whose entry may have filled and must be protected
before tg exits."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from cli.exit_codes import ExitCode

T = TypeVar("T")
EXIT_BY_SIGNAL = {"SIGINT": ExitCode.INTERRUPTED, "SIGTERM": ExitCode.TERMINATED}


class Interruption:
    """The signals one command received, and whether its work may be cut short now:
    `protecting()` says an execution or a repair is under way (the signal then waits
    for its end)."""

    def __init__(self, protecting: Callable[[], bool]) -> None:
        self._protecting = protecting
        self.received: str | None = None
        """The first signal's name (SIGINT, SIGTERM), once one came."""
        self.cut_short = False
        """Whether the work was cancelled (it was only looking or waiting)."""

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """`work` to its end, or cancelled by a signal that comes outside an execution."""
        return asyncio.run(self._guarded(work))

    async def _guarded(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum, task)
        try:
            return await work
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int, task: asyncio.Task[Any]) -> None:
        from cli.wiring import notice

        name = signal.Signals(signum).name
        again = self.received is not None
        self.received = self.received or name
        if self._protecting():
            notice(
                f"{name}: {'still ' if again else ''}finishing the work under way first "
                "(what tg bought is protected before it stops)"
            )
        elif not self.cut_short:
            self.cut_short = True
            task.cancel()

    def said(self) -> str:
        """The signal as the error line names it: `interrupted (SIGINT)`, `terminated (SIGTERM)`."""
        return f"{'interrupted' if self.received == 'SIGINT' else 'terminated'} ({self.received})"

    def exit_code(self) -> ExitCode:
        assert self.received is not None
        return EXIT_BY_SIGNAL[self.received]
