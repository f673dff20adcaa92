"""How tg's HTTP clients send a request: to an injected transport directly, otherwise
through an httpx.AsyncClient.

An injected transport is in-process (the embedded sandbox's ASGI app, a test's mock):
httpx's client machinery around it (cookies, redirects, auth, event hooks, proxies
from the environment) serves real connections, and in a replay it cost three times
what the sandbox spent answering, and building each request through it as much again.
Both paths send the same request: the client's URL, default headers and timeouts.
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
        self._headers = list(self.client.headers.multi_items())
        self._extensions = {"timeout": self.client.timeout.as_dict()}
        self._urls: dict[str, httpx.URL] = {}

    def build_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """The request for `path` (below the base URL), as the client would build it."""
        if self._direct is None:
            return self.client.build_request(method, path, params=params, data=data, content=content, headers=headers)
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(str(self.client.base_url).rstrip("/") + path)
        return httpx.Request(
            method,
            url,
            params=params,
            data=data,
            content=content,
            headers=self._headers if headers is None else [*self._headers, *headers.items()],
            extensions=self._extensions,
        )

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
