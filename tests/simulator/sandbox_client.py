"""A Kraken-style client for the sandbox's tests. It signs requests itself, apart from
the simulator's own signing code, so that a mistake there cannot confirm itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx

from simulator.models import ApiKey

TXID = re.compile(r"^O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}$")
TRADE_ID = re.compile(r"^T[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}$")
"""The shapes of Kraken's order and trade ids."""


def resting_buy(pair: str = "XBTUSD", **extra: str) -> dict[str, str]:
    """AddOrder's fields for a limit buy below the seeded market (60000): it rests."""
    return {"pair": pair, "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "50000", **extra}


def kraken_signature(secret: str, urlpath: str, nonce: str, postdata: str | bytes) -> str:
    body = postdata.encode() if isinstance(postdata, str) else postdata
    message = urlpath.encode() + hashlib.sha256(nonce.encode() + body).digest()
    return base64.b64encode(hmac.new(base64.b64decode(secret), message, hashlib.sha512).digest()).decode()


class KrakenClient:
    """Speaks to the sandbox the way a Kraken client does: form bodies, increasing
    nonces, API-Key and API-Sign headers. Answers are parsed with Decimal numbers."""

    def __init__(self, http: httpx.AsyncClient, api_key: ApiKey) -> None:
        self.http = http
        self.key = api_key.key
        self.secret = api_key.secret
        self.nonce = 1_000

    async def public(self, method: str, **params: Any) -> dict[str, Any]:
        response = await self.http.get(f"/0/public/{method}", params=params)
        return _envelope(response)

    async def private(self, method: str, **params: Any) -> dict[str, Any]:
        self.nonce += 1
        body = urlencode({"nonce": self.nonce, **params})
        return await self.send(method, body, nonce=str(self.nonce))

    async def private_json(self, method: str, **params: Any) -> dict[str, Any]:
        """A private call with a JSON body, as clients send batches."""
        self.nonce += 1
        body = json.dumps({"nonce": self.nonce, **params})
        return await self.send(method, body, nonce=str(self.nonce), headers={"Content-Type": "application/json"})

    async def send(
        self, method: str, body: str | bytes, *, nonce: str, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        path = f"/0/private/{method}"
        sent = {
            "API-Key": self.key,
            "API-Sign": kraken_signature(self.secret, path, nonce, body),
            "Content-Type": "application/x-www-form-urlencoded",
            **(headers or {}),
        }
        return _envelope(await self.http.post(path, content=body, headers=sent))

    async def result(self, method: str, **params: Any) -> dict[str, Any]:
        """The result of a private call that must succeed."""
        answer = await self.private(method, **params)
        assert answer["error"] == [], answer
        result: dict[str, Any] = answer["result"]
        return result

    async def place(self, **params: str) -> str:
        """AddOrder that must succeed: the one txid, shaped as Kraken's are."""
        (txid,) = (await self.result("AddOrder", **params))["txid"]
        assert TXID.match(txid), txid
        return str(txid)


def _envelope(response: httpx.Response) -> dict[str, Any]:
    """Kraken answers HTTP 200 even for errors; numbers are read as Decimal."""
    assert response.status_code == 200
    document: dict[str, Any] = json.loads(response.content, parse_float=Decimal)
    return document
