"""The sandbox as a raw ASGI application, served in-process through
httpx.ASGITransport or by uvicorn.

Every answer is HTTP 200 with Kraken's envelope, `{"error": [], "result": ...}` or
`{"error": ["EGeneral:Invalid arguments:volume"]}`. A failure that is not a Kraken
error is logged and answered "EGeneral:Internal error": never a 500, never a
traceback on the wire.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from simulator import urls
from simulator.auth import authenticate
from simulator.exceptions import InternalError, InvalidArguments, KrakenError, UnknownMethod
from simulator.exchange import Exchange
from simulator.params import Request, body_params, merge_params, query_params

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1_000_000

logger = logging.getLogger(__name__)


def create_app(exchange: Exchange) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
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
        payload = respond(exchange, request)
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode())],
        })
        await send({"type": "http.response.body", "body": payload})

    return app


def respond(exchange: Exchange, request: Request) -> bytes:
    """The response body for `request`: the handler's result or its error, enveloped."""
    try:
        envelope: dict[str, Any] = {"error": [], "result": _dispatch(exchange, request)}
        return json.dumps(envelope).encode()
    except KrakenError as exc:
        return json.dumps({"error": [exc.wire]}).encode()
    except Exception:
        logger.exception("sandbox handler failed on %s %s", request.method, request.path)
        return json.dumps({"error": [InternalError().wire]}).encode()


def _dispatch(exchange: Exchange, request: Request) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise InvalidArguments()
    path = request.path
    if path in urls.PUBLIC and request.method in ("GET", "POST"):
        return urls.PUBLIC[path](exchange, merge_params(query_params(request), body_params(request)))
    if path in urls.PRIVATE and request.method == "POST":
        api_key, params = authenticate(exchange, request)
        return urls.PRIVATE[path](exchange, api_key.account, params)
    sandbox = urls.SANDBOX.get((request.method, path))
    if sandbox is not None:
        return sandbox(exchange, merge_params(query_params(request), body_params(request)))
    raise UnknownMethod()


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
