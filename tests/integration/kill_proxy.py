"""A counting HTTP proxy between tg and a served sandbox that stops the world at one
private request, and a pre-imported fork server that runs `tg` as real processes.

The proxy numbers tg's private requests (/0/private/*) from 1. Armed at request N it
either holds N unsent ("before": the exchange never sees it) or sends it, takes the
exchange's answer and holds that ("after": the exchange acted, tg never hears), then
springs the trap so the test can SIGKILL tg at exactly that point. Whatever tg's
process sends after N (it cannot, once dead, but a concurrent task might) is held
unsent too. Public requests pass through uncounted; `on_forward` is told of each
private one about to reach the exchange (the test moves the exchange's clock there).

Only the standard library is imported at module level: the fork server preloads this
module, and every `tg` child is forked from it with tg's CLI already imported.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.context import ForkServerContext
from pathlib import Path
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


# --- tg as real processes, forked from a pre-imported server ------------------------

PRELOAD = [
    "__main__",
    "tests.integration.kill_proxy",
    "cli.main",
    "cli.wiring",
    "cli.render",
    "core.flows.trade_cycle",
    "core.flows.manual",
    "core.execution.reconcile",
    "core.decision.llm.offline",
    "core.decision.llm.providers",
    "core.decision.agents.trading_decision",
    "core.decision.agents.regime_detection",
    "core.decision.agents.technical_analysis",
    "sqlite_utils",
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
    "pydantic_settings",
    "typer._adapters",
    "typer._click.decorators",
    # what httpx imports only once a client is made
    "httpx",
    "httpcore",
    "httpcore._backends.anyio",
    "anyio",
    "anyio._backends._asyncio",
    "anyio.streams.tls",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.to_thread",
    "h11",
    "certifi",
    "sniffio",
]
"""What `tg trade`, `tg reconcile` and `tg orders` import, so that no child imports anything."""
_context: ForkServerContext | None = None


def fork_context() -> ForkServerContext:
    """A forkserver context whose server has tg's CLI imported: a child starts in
    milliseconds instead of the second a fresh interpreter needs. `__main__` (pytest's
    script) is preloaded too, or every child would import it again."""
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        assert isinstance(context, ForkServerContext)
        context.set_forkserver_preload(PRELOAD)
        _context = context
    return _context


def run_tg_child(argv: Sequence[str], env: Mapping[str, str], cwd: str, out: str, err: str) -> None:
    """The child: `tg ARGV` as the console script runs it, its output in files. It
    ends by SystemExit, as the console script does, and multiprocessing exits with
    that code."""
    os.chdir(cwd)
    for name in [k for k in os.environ if k.startswith("TG_")]:
        del os.environ[name]
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["tg", *argv]
    from cli.main import main

    main()


@dataclass
class Finished:
    """A tg process that ended: how, and what it printed."""

    argv: list[str]
    exitcode: int | None
    stdout: str
    stderr: str


class TgProcess:
    """One `tg` command running as its own process (its pid can be SIGKILLed)."""

    _counter = 0

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], folder: Path) -> None:
        TgProcess._counter += 1
        stem = folder / f"tg-{TgProcess._counter}"
        self.argv = list(argv)
        self._out, self._err = f"{stem}.out", f"{stem}.err"
        self.process = fork_context().Process(
            target=run_tg_child, args=(self.argv, dict(env), str(folder), self._out, self._err), daemon=True
        )
        self.process.start()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def wait(self, timeout: float) -> Finished:
        """Wait for the end (the timeout is only a safety net) and collect the output."""
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
            raise TimeoutError(f"tg {' '.join(self.argv)} still ran after {timeout} s: {self._read(self._err)}")
        return Finished(self.argv, self.process.exitcode, self._read(self._out), self._read(self._err))

    @staticmethod
    def _read(path: str) -> str:
        try:
            return Path(path).read_text()
        except FileNotFoundError:
            return ""
