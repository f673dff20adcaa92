"""Requests a hostile or sloppy Kraken client sends, found by driving the sandbox over
its wire: each gets Kraken's envelope with a Kraken error, and a refused request
leaves the exchange as it was."""

from __future__ import annotations

import pytest

from tests.simulator.sandbox_client import KrakenClient

JSON = {"Content-Type": "application/json"}


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("path", ["/0/public/Time", "/0/private/Balance", "/_sandbox/advance"])
async def test_json_nested_past_the_parsers_depth_is_invalid_arguments(kraken: KrakenClient, path: str) -> None:
    body = b'{"nonce": 5, "x": ' + _nested(50_000) + b"}"
    if path.startswith("/0/private/"):
        answer = await kraken.send("Balance", body, nonce="5", headers=JSON)
    else:
        response = await kraken.http.post(path, content=body, headers={**JSON, "X-TG-Sandbox": "1"})
        answer = response.json()
    assert answer == {"error": ["EGeneral:Invalid arguments"]}
