"""A counting HTTP proxy between tg and a served sandbox that stops the world at one
private request (tg runs as a real process: tg_processes.py).

The proxy numbers tg's private requests (/0/private/*) from 1. Armed at request N it
either holds N unsent ("before": the exchange never sees it) or sends it, takes the
exchange's answer and holds that ("after": the exchange acted, tg never hears), then
springs the trap so the test can SIGKILL tg at exactly that point. Whatever tg's
process sends after N (it cannot, once dead, but a concurrent task might) is held
unsent too. Public requests pass through uncounted; `on_forward` is told of each
private one about to reach the exchange (the test moves the exchange's clock there).
"""

from __future__ import annotations

import http.client
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

When = Literal["before", "after"]
PRIVATE = "/0/private/"
_UPSTREAM_TIMEOUT_S = 30.0
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


@dataclass
class Exchanged:
    """One private request as the proxy saw it: what it asked and what came back."""

    index: int
    method: str
    label: str
    """The method, with an AddOrder's order type or `.by-client-id` for a lookup by
    client order id: what the kill-point tables name a request by."""
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


class KillProxy:
    """The proxy, serving from a background thread: `url` is what tg is pointed at."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._trap = Trap(None, "before")
        self.log: list[Exchanged] = []
        self.on_forward: Callable[[], None] | None = None
        """Called before each private request goes on to the exchange."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="kill-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._trap.close()

    def arm(self, at: int | None, when: When = "before") -> Trap:
        """Start counting from 1 again and hold request `at` (None: hold nothing)."""
        with self._lock:
            self.log = []
            self._release.clear()
            self._trap.close()
            self._trap = Trap(at, when)
            return self._trap

    def release(self) -> None:
        """Let the held handlers go: they close their connections without answering."""
        self._release.set()

    def sequence(self) -> list[str]:
        return [entry.line() for entry in self.log]

    # --- the handler -------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # or every answer waits out a delayed ACK
            wbufsize = -1  # headers and body leave in one write

            def do_GET(self) -> None:
                proxy._handle(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                proxy._handle(self, self.rfile.read(length))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        private = handler.path.startswith(PRIVATE)
        entry: Exchanged | None = None
        hold: When | None = None
        if private:
            with self._lock:
                method = handler.path[len(PRIVATE) :]
                params = parse_qs(body.decode("utf-8", "replace"))
                entry = Exchanged(len(self.log) + 1, method, _label(method, params), _summary(params))
                self.log.append(entry)
                trap = self._trap
                if trap.at is not None and entry.index >= trap.at:
                    hold = "before" if entry.index > trap.at else trap.when
        if hold == "before":
            self._hold(handler)
            return
        if private and self.on_forward is not None:
            self.on_forward()
        status, headers, answer = self._forward(handler, body)
        if entry is not None:
            entry.forwarded, entry.answer = True, _brief(answer)
        if hold == "after":
            self._hold(handler)
            return
        if entry is not None:
            entry.delivered = True
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    def _hold(self, handler: BaseHTTPRequestHandler) -> None:
        self._trap.spring()
        self._release.wait()
        handler.close_connection = True  # dropped: no answer ever goes back

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=_UPSTREAM_TIMEOUT_S)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(handler.command, handler.path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


def _label(method: str, params: Mapping[str, list[str]]) -> str:
    if method == "AddOrder":
        return f"AddOrder.{params.get('ordertype', ['?'])[0]}"
    return f"{method}.by-client-id" if "cl_ord_id" in params else method


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
