"""Whatever arrives, the sandbox answers like Kraken: HTTP 200 and an envelope, never a
500 and never a traceback."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.clock import VirtualClock
from simulator.app import _envelope, create_app, respond
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import Exchange
from simulator.models import ApiKey
from simulator.pairs import PAIRS
from simulator.params import Request
from simulator.price_path import Bar, synthetic_paths
from simulator.urls import PRIVATE, PUBLIC
from tests.simulator.sandbox_client import KrakenClient, kraken_signature

PATHS = sorted(PUBLIC) + sorted(PRIVATE) + ["/_sandbox/advance", "/0/public/Nope", "/"]
PARAM_NAMES = [
    "pair",
    "type",
    "ordertype",
    "volume",
    "price",
    "price2",
    "txid",
    "userref",
    "cl_ord_id",
    "oflags",
    "validate",
    "interval",
    "since",
    "trades",
    "expiretm",
    "ofs",
    "start",
    "seconds",
    "asset",
    "info",
]
VALUES = st.one_of(
    st.sampled_from(
        [
            "XBTUSD",
            "BTC/USDT",
            "buy",
            "sell",
            "market",
            "limit",
            "stop-loss",
            "take-profit-limit",
            "1",
            "0",
            "-1",
            "0.01",
            "1e999",
            "NaN",
            "true",
            "",
            "+60",
            "9" * 40,
            "OAAAAA-BBBBB-CCCCCC",
            "post",
            "1440",
        ]
    ),
    st.text(max_size=12),
)


def _exchange() -> tuple[Exchange, ApiKey]:
    exchange = Exchange.create(VirtualClock(SANDBOX_EPOCH), seed=42)
    return exchange, exchange.create_api_key()


def _assert_envelope(payload: bytes) -> None:
    document = json.loads(payload)
    assert isinstance(document["error"], list)
    assert "Traceback" not in payload.decode()
    assert document["error"] != ["EGeneral:Internal error"], "a malformed request hit a bug"
    if not document["error"]:
        assert "result" in document


@settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    path=st.sampled_from(PATHS),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    params=st.dictionaries(st.sampled_from(PARAM_NAMES), VALUES, max_size=6),
    as_json=st.booleans(),
    signed=st.booleans(),
)
def test_any_parameters_get_an_envelope(
    path: str, method: str, params: dict[str, str], as_json: bool, signed: bool
) -> None:
    exchange, api_key = _exchange()
    sent = {"nonce": "5", **params}
    text = json.dumps(sent) if as_json else "&".join(f"{k}={v}" for k, v in sent.items())
    body = text.encode()
    headers = {"content-type": "application/json" if as_json else "application/x-www-form-urlencoded"}
    if signed:
        headers |= {"api-key": api_key.key, "api-sign": kraken_signature(api_key.secret, path, "5", body)}
    if path.startswith("/_sandbox/"):
        headers |= {"x-tg-sandbox": "1"}  # past the control guard, to the handler's parsing
    _assert_envelope(respond(exchange, Request(method, path, headers, b"", body)))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(body=st.binary(max_size=200), query=st.binary(max_size=60))
def test_any_bytes_get_an_envelope(body: bytes, query: bytes) -> None:
    exchange, api_key = _exchange()
    for path in ("/0/public/OHLC", "/0/private/AddOrder"):
        headers = {"api-key": api_key.key, "api-sign": kraken_signature(api_key.secret, path, "5", body)}
        _assert_envelope(respond(exchange, Request("POST", path, headers, query, body)))


async def test_malformed_json_bodies(kraken: KrakenClient) -> None:
    for body in ("{not json", "[1, 2]", '"text"', '{"nonce": 1.5}', '{"nonce": true}'):
        answer = await kraken.send("Balance", body, nonce="1", headers={"Content-Type": "application/json"})
        assert answer["error"] in (["EGeneral:Invalid arguments"], ["EAPI:Invalid nonce"])


async def test_repeated_parameter_is_refused(kraken: KrakenClient) -> None:
    body = "nonce=9&pair=XBTUSD&pair=ETHUSD&type=buy&ordertype=market&volume=0.01"
    answer = await kraken.send("AddOrder", body, nonce="9")
    assert answer == {"error": ["EGeneral:Invalid arguments:pair"]}


async def test_oversized_body_is_refused(kraken: KrakenClient) -> None:
    response = await kraken.http.post("/0/public/Ticker", content="pair=" + "XBTUSD," * 200_000)
    assert response.json() == {"error": ["EGeneral:Invalid arguments"]}


class _BrokenPath:
    """A price path that fails, standing in for any bug behind a handler."""

    start = 0.0

    def price_at(self, t: float) -> Decimal:
        raise RuntimeError("secret internals")

    def price_range(self, start: float, end: float) -> tuple[Decimal, Decimal]:
        raise RuntimeError("secret internals")

    def candles(self, interval_minutes: int, since: float, until: float) -> list[Bar]:
        raise RuntimeError("secret internals")


async def test_a_failing_handler_is_an_internal_error_not_a_500() -> None:
    clock = VirtualClock(SANDBOX_EPOCH)
    paths = synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH) | {"XXBTZUSD": _BrokenPath()}
    exchange = Exchange(Exchange.create(clock).state, clock, paths)
    transport = httpx.ASGITransport(app=create_app(exchange))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.kraken") as http:
        response = await http.get("/0/public/Ticker", params={"pair": "XBTUSD"})
        assert response.status_code == 200
        assert response.json() == {"error": ["EGeneral:Internal error"]}
        assert "secret internals" not in response.text
        healthy = await http.get("/0/public/Ticker", params={"pair": "ETHUSD"})
        assert list(healthy.json()["result"]) == ["XETHZUSD"]


def test_answers_are_compact_json_even_past_orjson() -> None:
    """Kraken's compact envelope; an integer orjson refuses (past 64 bits) still encodes."""
    assert (
        _envelope({"error": [], "result": {"unixtime": 1, "t": [0.5]}})
        == b'{"error":[],"result":{"unixtime":1,"t":[0.5]}}'
    )
    assert json.loads(_envelope({"error": [], "result": 2**70})) == {"error": [], "result": 2**70}
