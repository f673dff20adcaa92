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
from urllib.parse import urlencode

import httpx

RawHeaders = list[tuple[bytes, bytes]]


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
        self._base = str(self.client.base_url).rstrip("/")
        self._extensions = {"timeout": self.client.timeout.as_dict()}
        self._urls: dict[str, httpx.URL] = {}
        self._layouts: dict[tuple[str, tuple[tuple[str, str], ...], bool, bool], tuple[RawHeaders, int | None]] = {}

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
        """The request for `path` (below the base URL), as the client would build it.

        For an injected transport the URL is kept per path and the headers per shape
        of request (see _layout), only the body and its length made anew: encoding
        and preparing each request through httpx.Request cost twice what it does now."""
        if self._direct is None:
            return self.client.build_request(method, path, params=params, data=data, content=content, headers=headers)
        method = method.upper()
        if content is not None:
            body, form = content, False
        elif data:
            body, form = urlencode(data).encode(), True
        else:
            body, form = b"", False
        raw, length_at = self._layout(method, headers, form, empty=not body)
        if length_at is not None:
            raw = raw.copy()
            raw[length_at] = (b"Content-Length", str(len(body)).encode())
        request = httpx.Request(
            method,
            self._url(path, params),
            headers=httpx.Headers(raw),
            stream=httpx.ByteStream(body),
            extensions=self._extensions,
        )
        request.read()
        return request

    def _url(self, path: str, params: Mapping[str, str] | None) -> httpx.URL:
        if params:
            return httpx.URL(f"{self._base}{path}?{urlencode(params)}")
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self._base + path)
        return url

    def _layout(
        self, method: str, extra: Mapping[str, str] | None, form: bool, *, empty: bool
    ) -> tuple[RawHeaders, int | None]:
        """The headers httpx gives a request of this shape (method, extra headers, a
        form or raw body, empty or not), built once by httpx.Request itself with a
        placeholder body, and where in them the body's Content-Length goes (None: no
        length to fill in, the body is empty or the caller set one)."""
        key = (method, () if extra is None else tuple(extra.items()), form, empty)
        layout = self._layouts.get(key)
        if layout is None:
            merged = httpx.Headers(self.client.headers)
            merged.update(extra or {})
            placeholder = {"data": {"_": ""}} if form else {"content": b"_"}
            built = httpx.Request(method, self._base, headers=merged, **({} if empty else placeholder))
            raw = built.headers.raw
            lower = [name.lower() for name, _ in raw]
            own_length = "content-length" in {name.lower() for name in (extra or {})}
            length_at = None if empty or own_length else lower.index(b"content-length")
            layout = self._layouts[key] = (raw, length_at)
        return layout

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
