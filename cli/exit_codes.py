"""What tg's exit status means: one thing each, for scripts and CI jobs to act on."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """Done as asked. A HOLD and a trade the risk engine rejected are done too."""
    NOT_DONE = 1
    """It did not complete as intended: an entry refused, an outcome the exchange did not
    show (UNKNOWN), a stop-loss that failed and a position force-closed, a repair that
    could not be made, or an action refused as unsafe (tg sim reset with open positions)."""
    USAGE = 2
    """Bad usage or input: an unknown flag, a bad value, an unknown setting or fault."""
    UNSAFE = 3
    """A safety invariant broke (tg simulate, tg run, tg replay)."""
    ENVIRONMENT = 4
    """The environment failed: storage unwritable or refusing writes, the exchange
    unreachable, another tg process holding what this one needs for too long."""
    INTERRUPTED = 130
    """Ctrl-C (SIGINT)."""
    TERMINATED = 143
    """SIGTERM (tg run stops gracefully first)."""


EPILOG = (
    "Exit status: 0 done (a HOLD or a rejected trade too); 1 not done as intended (an entry refused, "
    "an outcome UNKNOWN, a stop-loss that failed and a forced close, an unsafe action refused); "
    "2 bad usage or input; 3 a safety invariant broke; 4 the environment failed (storage, the "
    "exchange unreachable, another tg busy); 130 interrupted; 143 terminated."
)
