"""The sandbox as a raw ASGI application, served in-process through
httpx.ASGITransport or by uvicorn.

Every Kraken call goes through one pipeline:

    route -> authentication (private) -> rate limits -> faults before the handler
          -> handler -> faults after it -> orders the faults hide -> Kraken's envelope

Control-plane calls (/_sandbox/, control.py) skip authentication, limits and faults,
but first pass the control guard (control_guard.py: loopback or a bearer token, no
request a web page could forge); so does the web view, GET /_sandbox/ui, a static page
(simulator/ui/index.html) that drives the control plane from a browser. Every answer is HTTP 200 with Kraken's envelope,
`{"error": [], "result": ...}` or `{"error": ["EGeneral:Invalid arguments:volume"]}`.
A failure that is not a Kraken error is logged and answered "EGeneral:Internal error":
never a 500, never a traceback. The only exceptions are the web view, the guard's refusals (HTTP
403, still in Kraken's envelope), a CONNECT (HTTP 405, likewise) and what a fault asks for: a Cloudflare-style HTML
error page, or an answer that never comes. In-process (`lost_response="raise"`) the
app raises httpx.ReadTimeout, which httpx.ASGITransport hands to the client as its
own timeout; over TCP (`"hang"`) it holds the connection silently until the client
gives up and disconnects.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import httpx
import orjson

from simulator import control, system_status, urls
from simulator.auth import authenticate
from simulator.control import Sandbox
from simulator.control_guard import IN_PROCESS_HOSTS, ControlDenied, ControlGuard, is_control_path
from simulator.exceptions import InternalError, InvalidArguments, KrakenError, UnknownMethod
from simulator.exchange import Exchange
from simulator.faults import Call, FaultSchedule, LostResponse
from simulator.params import Request, body_params, merge_params, query_params
from simulator.ratelimits import TRADING_METHODS, RateLimits, Tier, open_in_pair, trading_costs
from simulator.websocket.hub import Hub

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 1_000_000
HANG_LIMIT_S = 600.0
"""How long a lost answer holds a TCP connection if the client never gives up."""
LostResponseMode = Literal["raise", "hang"]

logger = logging.getLogger(__name__)

CONTROL_ROUTES = {**control.ROUTES, **system_status.ROUTES}
"""The control plane's table, with the trading mode's own routes."""


_REFUSAL_STATUS = {"CONNECT": 405}
"""Methods whose refusal cannot be an HTTP 200: a 2xx answer to CONNECT opens a tunnel
(RFC 9110), and uvicorn failed with a traceback sending the envelope through it."""

UI_PATHS = frozenset({"/_sandbox/ui", "/_sandbox/ui/"})
_PAGE_HEADERS = (
    # the page runs its own script and talks to its own origin only, and no other site may frame its buttons
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        b"connect-src 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)


@dataclass(frozen=True)
class Response:
    body: bytes
    status: int = 200
    content_type: bytes = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


class SandboxApp:
    """The ASGI app over one sandbox; `sandbox` is its control plane's Python API and
    `guard` decides who may use it over the wire (default: loopback, no token)."""

    def __init__(
        self, sandbox: Sandbox, *, lost_response: LostResponseMode = "raise", guard: ControlGuard | None = None
    ) -> None:
        self.sandbox = sandbox
        self.lost_response = lost_response
        self.guard = ControlGuard() if guard is None else guard
        self.streams = Hub()
        """The WebSocket v2 connections (simulator.websocket), served at /v2."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await self.streams.serve(self, scope, receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:
            return
        request = Request(
            method=scope["method"],
            path=scope["path"],
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            query=scope.get("query_string", b""),
            body=body,
        )
        client = scope.get("client")
        try:
            response = await self.respond(request, client[0] if client else None)
        except LostResponse:
            self.streams.poke()
            if self.lost_response == "raise":
                raise httpx.ReadTimeout("the sandbox dropped this answer (ghost fault)") from None
            await _hang(receive)
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type),
                    (b"content-length", str(len(response.body)).encode()),
                    *response.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
        self.streams.poke()  # whatever the call changed reaches the WebSocket streams

    async def respond(self, request: Request, client: str | None = None) -> Response:
        """The answer to `request` from the peer address `client` (None: no network
        peer, a request held in hand). Raises LostResponse when a fault drops it."""
        try:
            if request.method == "GET" and request.path in UI_PATHS:
                self.guard.check(request, client, page=True)
                return Response(_ui_page(), content_type=b"text/html; charset=utf-8", headers=_PAGE_HEADERS)
            result = await self._dispatch(request, client)
            return Response(_envelope({"error": [], "result": result}))
        except ControlDenied as exc:
            logger.warning("refused %s %s from %s: %s", request.method, request.path, client or "no peer", exc.wire)
            return Response(_envelope({"error": [exc.wire]}), exc.status)
        except KrakenError as exc:
            return Response(_envelope({"error": [exc.wire]}), _REFUSAL_STATUS.get(request.method, 200))
        except LostResponse as lost:
            if lost.variant == "html-5xx":
                return Response(_error_page(lost.status), lost.status, b"text/html; charset=UTF-8")
            raise
        except Exception:
            logger.exception("sandbox handler failed on %s %s", request.method, request.path)
            return Response(_envelope({"error": [InternalError().wire]}))

    async def _dispatch(self, request: Request, client: str | None) -> urls.Result:
        if len(request.body) > MAX_BODY_BYTES:
            raise InvalidArguments()
        if is_control_path(request.path):
            self.guard.check(request, client)
            handler = CONTROL_ROUTES.get((request.method, request.path))
            if handler is None:
                raise UnknownMethod()
            return handler(self.sandbox, merge_params(query_params(request), body_params(request)))
        peer = client or "local"
        sandbox = self.sandbox
        exchange = sandbox.exchange
        path = request.path
        method = path.rsplit("/", 1)[-1]
        now = exchange.clock.monotonic()
        if path in urls.PUBLIC and request.method in ("GET", "POST"):
            public_params = merge_params(query_params(request), body_params(request))
            if sandbox.limits is not None:
                sandbox.limits.charge_public(peer, now)
            public = urls.PUBLIC[path]
            call = Call(method, exchange, public_params)
            return await self._through_faults(call, lambda: public(call.exchange, call.params))
        if path in urls.PRIVATE and request.method == "POST":
            api_key, params = authenticate(exchange, request)
            account = api_key.account
            if sandbox.limits is not None:
                _charge(sandbox.limits, exchange, api_key.key, account, method, params, now)
            private = urls.PRIVATE[path]
            call = Call(method, exchange, dict(params), account)
            return await self._through_faults(call, lambda: private(call.exchange, account, call.params))
        raise UnknownMethod()

    async def order_call(self, method: str, account: str, params: dict[str, object]) -> dict[str, Any]:
        """A WebSocket order method, as the REST call `method` it stands for: the same
        handler and faults, and the same trading counters. As on Kraken it costs nothing
        on the API key's REST counter (a WebSocket call carries no key, only a token)."""
        sandbox = self.sandbox
        exchange = sandbox.exchange
        if sandbox.limits is not None:
            _charge_trading(sandbox.limits, exchange, account, method, params, exchange.clock.monotonic())
        private = urls.PRIVATE[f"/0/private/{method}"]
        call = Call(method, exchange, dict(params), account)
        result = await self._through_faults(call, lambda: private(call.exchange, account, call.params))
        if not isinstance(result, dict):  # every order method answers an object
            raise InternalError()
        return result

    async def _through_faults(self, call: Call, handler: Callable[[], urls.Result]) -> urls.Result:
        faults = self.sandbox.faults
        firings = await faults.before(call)
        try:
            with call.exchange.using(fills=call.fills):  # the models a fault chose for this call
                result = handler()
        except KrakenError as exc:
            faults.finish(firings, exc.wire)
            raise
        if isinstance(result, list):
            # a list answer (OpenPositions by market) names no order: faults act on the call alone
            faults.after(call, firings, {})
            return result
        return faults.filter_visible(call, faults.after(call, firings, result))


def create_app(
    exchange: Exchange,
    *,
    tier: Tier | None = Tier.STARTER,
    faults: FaultSchedule | None = None,
    lost_response: LostResponseMode = "raise",
    control_token: str | None = None,
    control_hosts: Collection[str] = IN_PROCESS_HOSTS,
) -> SandboxApp:
    """The app over `exchange`, enforcing the rate limits of `tier` (None: none) and
    the fault schedule `faults` (None: a fresh, empty one). Its control plane needs
    `control_token` as a bearer token, or without one serves loopback clients under a
    loopback Host or one of `control_hosts` (by default the in-process name; a served
    app gives none)."""
    sandbox = Sandbox(
        exchange, None if tier is None else RateLimits(tier), FaultSchedule() if faults is None else faults
    )
    return SandboxApp(
        sandbox, lost_response=lost_response, guard=ControlGuard(token=control_token, hosts=frozenset(control_hosts))
    )


def respond(exchange: Exchange, request: Request) -> bytes:
    """The body answering one request held in hand (no connection), without limits."""
    return asyncio.run(create_app(exchange, tier=None).respond(request)).body


def _charge(
    limits: RateLimits,
    exchange: Exchange,
    key: str,
    account: str,
    method: str,
    params: Mapping[str, object],
    now: float,
) -> None:
    """Count a private call against its key's REST counter, or, for a trading call,
    against its pairs' trading counters and the open-orders cap."""
    limits.charge_rest(key, method, now)
    _charge_trading(limits, exchange, account, method, params, now)


def _charge_trading(
    limits: RateLimits, exchange: Exchange, account: str, method: str, params: Mapping[str, object], now: float
) -> None:
    if method in TRADING_METHODS:
        limits.charge_trading(account, trading_costs(exchange, account, method, params), now)
    if method == "AddOrder":
        open_now = open_in_pair(exchange, account, params)
        if open_now is not None:
            limits.check_open_orders(open_now)


def _envelope(answer: dict[str, Any]) -> bytes:
    """The answer as compact JSON, as Kraken sends it: orjson, some fifty times faster
    than json on an answer, and json for what orjson refuses (an integer past 64 bits)."""
    try:
        return orjson.dumps(answer)
    except TypeError:
        return json.dumps(answer, separators=(",", ":")).encode()


@functools.cache
def _ui_page() -> bytes:
    """The web view of the sandbox (simulator/ui/index.html): static, no build step."""
    return resources.files("simulator").joinpath("ui/index.html").read_bytes()


def _error_page(status: int) -> bytes:
    """What a CDN in front of an exchange answers when the origin fails."""
    return (
        f"<!DOCTYPE html>\n<html><head><title>api.kraken.com | {status}: Bad gateway</title></head>"
        f"<body><h1>Error {status}</h1><p>Bad gateway</p><p>The web server reported a bad "
        f"gateway error.</p><p>cloudflare</p></body></html>\n"
    ).encode()


async def _hang(receive: Receive) -> None:
    """Hold the connection without answering until the client goes away."""
    try:
        async with asyncio.timeout(HANG_LIMIT_S):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client went away. Past the size limit the
    rest is drained unread; the over-long body is then refused."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if len(body) <= MAX_BODY_BYTES:
            body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
