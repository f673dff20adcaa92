"""When a tg process's cyclic garbage collector runs.

Starting a command imports and builds about a million objects (modules, classes,
dataclasses, pydantic schemas, settings) that all live until the process ends. With the
collector on, each full collection walks them again as they pile up, and the last one
walks them all at exit: a third of a short command's CPU spent finding nothing. So the
entry point turns the collector off (`for_startup`), and a command turns it back on
where its work begins (`work_begins`), with what start-up built frozen: never walked
again (gc.freeze), yet freed as usual once nothing refers to it. A command that never
calls `work_begins` is a short read (`tg runs`, `tg show`, `tg config`) and ends with
the collector off.
"""

from __future__ import annotations

import gc


def for_startup() -> None:
    """Called first by the console entry point, before any command is imported."""
    gc.disable()


def work_begins() -> None:
    """Called by a command once its imports are done, before the work that runs for
    long or makes garbage: the collector on, start-up frozen out of its walks. Does
    nothing if the entry point did not turn the collector off (a test runner calling
    the app in-process keeps its own policy)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
