"""How tg's HTTP clients send a request: to an injected transport directly, otherwise
through an httpx.AsyncClient.

An injected transport is in-process (the embedded sandbox's ASGI app, a test's mock):
httpx's client machinery around it (cookies, redirects, auth, event hooks, proxies
from the environment) serves real connections, and in a replay it cost three times
what the sandbox spent answering. Requests are still built by the client (base URL,
default headers, timeouts), so both paths send the same request.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx


class Sender:
    """An httpx.AsyncClient for building requests and, without `transport`, sending them."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None,
        timeout: float,
        headers: Mapping[str, str],
    ) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout, headers=headers)
        self._direct = transport

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The whole answer, read."""
        if self._direct is None:
            return await self.client.send(request)
        response = await self._direct.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        await self.client.aclose()
