"""Requests to an injected (in-process) transport skip httpx's client but must be the
requests the client would have built and sent: same method, URL, headers and body."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.exchange.transport import Sender

BASE = "http://sandbox.kraken"
HEADERS = {"User-Agent": "tg-test", "X-TG-Sandbox": "1"}


class Recording(httpx.AsyncBaseTransport):
    """Answers every request with Kraken's empty envelope and keeps what it was sent."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        await request.aread()
        return httpx.Response(200, json={"error": [], "result": {"path": request.url.path}})


def _wire(request: httpx.Request) -> tuple[str, str, list[tuple[str, str]], bytes, object]:
    return (
        request.method,
        str(request.url),
        sorted(request.headers.multi_items()),
        request.content,
        request.extensions.get("timeout"),
    )


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [
        ("GET", "/0/public/OHLC", {"params": {"pair": "XBTUSD", "interval": "60", "since": "1735689600"}}),
        ("GET", "/_sandbox/state?orders=false", {}),
        ("POST", "/_sandbox/advance", {"data": {"seconds": "3600", "orders": "false"}}),
        ("POST", "/_sandbox/reset", {}),
        ("POST", "/_sandbox/reset", {"data": {}}),
        ("POST", "/_sandbox/reset", {"content": b""}),
        ("GET", "/0/public/Ticker", {"params": {"pair": "XBT/USD", "note": "a b&c"}}),
        ("DELETE", "/_sandbox/faults", {}),
        ("POST", "/_sandbox/faults", {"data": {"spec": "latency:ms=5"}, "headers": {"Content-Type": "text/plain"}}),
        ("GET", "/0/public/Time", {"headers": {"User-Agent": "another"}}),
        (
            "POST",
            "/0/private/AddOrder",
            {"content": b"nonce=1&pair=XBTUSD", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        ),
    ],
)
async def test_a_request_to_an_injected_transport_is_the_one_the_client_would_send(
    method: str, path: str, options: dict[str, Any]
) -> None:
    transport = Recording()
    sender = Sender(BASE, transport=transport, timeout=10.0, headers=HEADERS)
    client = httpx.AsyncClient(base_url=BASE, transport=transport, timeout=10.0, headers=HEADERS)

    direct = await sender.send(sender.build_request(method, path, **options))
    through_client = await client.send(client.build_request(method, path, **options))

    first, second = transport.seen
    assert _wire(first) == _wire(second)
    assert direct.json() == through_client.json() and direct.status_code == 200
    assert direct.request is first  # the answer knows its request, as the client's do
    await sender.aclose()
    await client.aclose()


async def test_without_a_transport_the_client_builds_and_sends() -> None:
    sender = Sender(BASE, transport=None, timeout=10.0, headers=HEADERS)
    request = sender.build_request("GET", "/0/public/Time", params={"a": "1"})
    assert _wire(request) == _wire(sender.client.build_request("GET", "/0/public/Time", params={"a": "1"}))
    await sender.aclose()
