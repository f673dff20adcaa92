"""A counting HTTP proxy between tg and a served sandbox that stops the world at one
private request (tg runs as a real process: tg_processes.py).

The proxy numbers tg's private requests (/0/private/*) from 1. Armed at request N it
either holds N unsent ("before": the exchange never sees it) or sends it, takes the
exchange's answer and holds that ("after": the exchange acted, tg never hears), then
springs the trap so the test can SIGKILL tg at exactly that point. Whatever tg's
process sends after N (it cannot, once dead, but a concurrent task might) is held
unsent too. Public requests pass through uncounted; `on_forward` is told of each
private one about to reach the exchange (the test moves the exchange's clock there).
A test that signals tg instead of killing it lets the world go on (`go_on`): the held
request reaches the exchange, or its held answer reaches tg, and nothing more is held.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qs

from tests.integration.relay import PRIVATE, Relay, label_of

When = Literal["before", "after"]
_UPSTREAM_TIMEOUT_S = 30.0


@dataclass
class Exchanged:
    """One private request as the proxy saw it: what it asked and what came back."""

    index: int
    method: str
    label: str
    """What the kill-point tables name the request by (relay.label_of)."""
    summary: str
    forwarded: bool = False
    answer: str | None = None
    """What the exchange answered (None: it was never asked)."""
    delivered: bool = False
    """Whether tg got the answer."""

    def line(self) -> str:
        if not self.forwarded:
            fate = "held unsent"
        else:
            fate = f"-> {self.answer}" if self.delivered else f"answered {self.answer}; held, tg never heard it"
        return f"#{self.index} {self.method}({self.summary}) {fate}"


class Trap:
    """Where the proxy stops the world. `held` is set once it holds; the trap can also
    be waited on with multiprocessing.connection.wait, beside a process's sentinel."""

    def __init__(self, at: int | None, when: When) -> None:
        self.at = at
        self.when = when
        self.held = threading.Event()
        self.released = threading.Event()
        self.going_on = False
        """Released by `go_on`: what it holds goes on rather than being dropped."""
        self._read, self._write = os.pipe()

    def fileno(self) -> int:
        return self._read

    def spring(self) -> None:
        if not self.held.is_set():
            self.held.set()
            os.write(self._write, b"!")

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class KillProxy(Relay):
    """The proxy, serving from a background thread: `url` is what tg is pointed at."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, upstream_timeout_s=_UPSTREAM_TIMEOUT_S, name="kill-proxy")
        self._lock = threading.Lock()
        self._trap = Trap(None, "before")
        self._old_traps: list[Trap] = []
        self.log: list[Exchanged] = []
        self.on_forward: Callable[[], None] | None = None
        """Called before each private request goes on to the exchange."""

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        super().__exit__(kind, error, tb)
        for trap in [*self._old_traps, self._trap]:
            trap.close()

    def arm(self, at: int | None, when: When = "before") -> Trap:
        """Start counting from 1 again and hold request `at` (None: hold nothing)."""
        with self._lock:
            self.log = []
            self._old_traps.append(self._trap)
            self._trap = Trap(at, when)
            return self._trap

    def release(self) -> None:
        """Let the held handlers go: they close their connections without answering."""
        self._trap.released.set()

    def go_on(self) -> None:
        """Let the held handlers go as if never held: a request held unsent is sent
        and answered, an answer held is delivered; whatever comes after passes."""
        with self._lock:
            self._trap.going_on = True
        self._trap.released.set()

    def go_on_and_arm(self, at: int, when: When = "before") -> Trap:
        """`go_on`, and at once count again from 1, holding request `at` of what comes
        next: for a second stop of the world in one command."""
        with self._lock:
            trap = self._trap
            trap.going_on = True
            self.log = []
            self._old_traps.append(trap)
            self._trap = Trap(at, when)
            trap.released.set()
            return self._trap

    def sequence(self) -> list[str]:
        return [entry.line() for entry in self.log]

    # --- the handler -------------------------------------------------------------

    def _let_go(self) -> None:
        for trap in [*self._old_traps, self._trap]:
            trap.released.set()

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        private = handler.path.startswith(PRIVATE)
        entry: Exchanged | None = None
        hold: When | None = None
        trap = self._trap
        if private:
            with self._lock:
                method = handler.path[len(PRIVATE) :]
                params = parse_qs(body.decode("utf-8", "replace"))
                entry = Exchanged(len(self.log) + 1, method, label_of(method, params), _summary(params))
                self.log.append(entry)
                trap = self._trap
                if trap.at is not None and entry.index >= trap.at:
                    hold = "before" if entry.index > trap.at else trap.when
        if hold == "before" and not self._hold(handler, trap):
            return
        if private and self.on_forward is not None:
            self.on_forward()
        status, headers, answer = self._forward(handler, body)
        if entry is not None:
            entry.forwarded, entry.answer = True, _brief(answer)
        if hold == "after" and not self._hold(handler, trap):
            return
        if entry is not None:
            entry.delivered = True
        self._answer(handler, status, headers, answer)

    def _hold(self, handler: BaseHTTPRequestHandler, trap: Trap) -> bool:
        """Hold until `trap` is released; True if the request is to go on (`go_on`)."""
        trap.spring()
        trap.released.wait()
        if trap.going_on:
            return True
        handler.close_connection = True  # dropped: no answer ever goes back
        return False


def _summary(params: Mapping[str, list[str]]) -> str:
    """What a private request asks, for the record: its parameters but the nonce."""
    shown = []
    for key in ("ordertype", "type", "volume", "price", "txid", "cl_ord_id"):
        if key in params:
            value = params[key][0]
            shown.append(f"{key}={value[:13] + '…' if key == 'cl_ord_id' else value}")
    return ", ".join(shown)


def _brief(answer: bytes) -> str:
    text = answer.decode("utf-8", "replace")
    return text if len(text) <= 160 else text[:157] + "..."
