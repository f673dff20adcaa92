"""Long loops of a command: what is alive before a step lives through it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def heap_frozen() -> Iterator[None]:
    """What is alive on entry (modules, settings, a sandbox's market, earlier results)
    outlives the block: frozen, the full collections the block's garbage triggers skip
    it instead of walking it each time (gc.freeze; unfrozen after, collectable again)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
