"""An HTTP relay between tg and a served sandbox, so that a test can hold chosen
private requests: the kill test's counting proxy (kill_proxy.py) and the concurrency
test's gate each decide, in `_handle`, what becomes of a request, and send it on and
answer with `_forward` and `_answer`."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

PRIVATE = "/0/private/"
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


def label_of(method: str, params: Mapping[str, list[str]]) -> str:
    """What the tests name a private request by: its method, with an AddOrder's order
    type (AddOrder.market) or `.by-client-id` for a lookup by client order id."""
    if method == "AddOrder":
        return f"AddOrder.{params.get('ordertype', ['?'])[0]}"
    return f"{method}.by-client-id" if "cl_ord_id" in params else method


class Relay:
    """The relay, serving from a background thread: `url` is what tg is pointed at."""

    def __init__(self, upstream: str, *, upstream_timeout_s: float, name: str) -> None:
        target = urlsplit(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self._upstream_timeout_s = upstream_timeout_s
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=name, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._let_go()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _let_go(self) -> None:
        """Free every handler held, or the server's shutdown would wait for it."""

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """One request, in its handler's thread: hold it, send it on, answer it."""
        raise NotImplementedError

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # or every answer waits out a delayed ACK
            wbufsize = -1  # headers and body leave in one write

            def do_GET(self) -> None:
                relay._handle(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                relay._handle(self, self.rfile.read(length))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """The request sent on to the sandbox: its status, headers and body."""
        connection = http.client.HTTPConnection(*self._upstream, timeout=self._upstream_timeout_s)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(handler.command, handler.path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], answer: bytes) -> None:
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)
