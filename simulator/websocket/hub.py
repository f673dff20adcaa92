"""The hub of the sandbox's WebSocket v2 connections: it wakes them all when the
exchange changes. Apart from session.py so that an app that serves no WebSocket (the
embedded sandbox, most of the time) does not import the protocol's models."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from simulator.control import Sandbox
    from simulator.websocket.session import Session

PATH = "/v2"

Message_ = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message_]]
Send = Callable[[Message_], Awaitable[None]]


class Gateway(Protocol):
    """What a session needs of the app: the sandbox, and its REST pipeline for the
    calls the order methods stand for."""

    sandbox: Sandbox

    async def order_call(self, method: str, account: str, params: dict[str, object]) -> dict[str, Any]: ...


class Hub:
    """The open sessions; `poke` wakes them all to publish what changed."""

    def __init__(self) -> None:
        self._sessions: set[Session] = set()
        self._ids = itertools.count(1)

    def poke(self) -> None:
        for session in self._sessions:
            session.wake.set()

    async def serve(self, gateway: Gateway, scope: Message_, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        if scope.get("path") != PATH:
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        from simulator.websocket.session import Session  # the protocol's models, for the first connection only

        session = Session(gateway, self, send, next(self._ids))
        self._sessions.add(session)
        try:
            await session.run(receive)
        finally:
            self._sessions.discard(session)
