"""Private-call authentication: Kraken's signature, key and nonce rules."""

from __future__ import annotations

import json

from simulator.auth import sign
from simulator.exchange import Exchange
from tests.simulator.sandbox_client import KrakenClient, kraken_signature

KRAKEN_SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
KRAKEN_POSTDATA = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
KRAKEN_SIGNATURE = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="


def test_signature_matches_krakens_published_vector() -> None:
    signature = sign(KRAKEN_SECRET, "/0/private/AddOrder", "1616492376594", KRAKEN_POSTDATA.encode())
    assert signature == KRAKEN_SIGNATURE


def test_test_client_signs_like_kraken_too() -> None:
    signature = kraken_signature(KRAKEN_SECRET, "/0/private/AddOrder", "1616492376594", KRAKEN_POSTDATA)
    assert signature == KRAKEN_SIGNATURE


async def test_signed_call_is_answered(kraken: KrakenClient) -> None:
    answer = await kraken.private("Balance")
    assert answer["error"] == []
    assert answer["result"]["ZUSD"] == "100000.0000"


async def test_missing_key_header_is_an_invalid_key(kraken: KrakenClient) -> None:
    response = await kraken.http.post("/0/private/Balance", content="nonce=5")
    assert response.json() == {"error": ["EAPI:Invalid key"]}


async def test_unknown_key_is_an_invalid_key(kraken: KrakenClient) -> None:
    answer = await kraken.send("Balance", "nonce=5", nonce="5", headers={"API-Key": "not-a-key"})
    assert answer == {"error": ["EAPI:Invalid key"]}


async def test_wrong_signature_is_refused(kraken: KrakenClient) -> None:
    elsewhere = kraken_signature(kraken.secret, "/0/private/Other", "5", "nonce=5")
    answer = await kraken.send("Balance", "nonce=5", nonce="5", headers={"API-Sign": elsewhere})
    assert answer == {"error": ["EAPI:Invalid signature"]}


async def test_signature_not_base64_is_refused(kraken: KrakenClient) -> None:
    answer = await kraken.send("Balance", "nonce=5", nonce="5", headers={"API-Sign": "%%% not base64 %%%"})
    assert answer == {"error": ["EAPI:Invalid signature"]}


async def test_body_changed_after_signing_is_refused(kraken: KrakenClient) -> None:
    signed = kraken_signature(kraken.secret, "/0/private/Balance", "5", "nonce=5")
    answer = await kraken.send("Balance", "nonce=5&otp=1", nonce="5", headers={"API-Sign": signed})
    assert answer == {"error": ["EAPI:Invalid signature"]}


async def test_reused_or_lower_nonce_is_refused(kraken: KrakenClient) -> None:
    assert (await kraken.send("Balance", "nonce=10", nonce="10"))["error"] == []
    assert await kraken.send("Balance", "nonce=10", nonce="10") == {"error": ["EAPI:Invalid nonce"]}
    assert await kraken.send("Balance", "nonce=9", nonce="9") == {"error": ["EAPI:Invalid nonce"]}
    assert (await kraken.send("Balance", "nonce=11", nonce="11"))["error"] == []


async def test_missing_or_malformed_nonce_is_refused(kraken: KrakenClient) -> None:
    assert await kraken.send("Balance", "", nonce="") == {"error": ["EAPI:Invalid nonce"]}
    assert await kraken.send("Balance", "nonce=12a", nonce="12a") == {"error": ["EAPI:Invalid nonce"]}
    assert await kraken.send("Balance", "nonce=-3", nonce="-3") == {"error": ["EAPI:Invalid nonce"]}


async def test_nonces_are_tracked_per_key(kraken: KrakenClient, exchange: Exchange) -> None:
    second = exchange.create_api_key()
    assert (await kraken.send("Balance", "nonce=50", nonce="50"))["error"] == []
    headers = {"API-Key": second.key, "API-Sign": kraken_signature(second.secret, "/0/private/Balance", "7", "nonce=7")}
    assert (await kraken.send("Balance", "nonce=7", nonce="7", headers=headers))["error"] == []


async def test_json_body_is_signed_over_its_raw_bytes(kraken: KrakenClient) -> None:
    body = json.dumps(
        {"nonce": 77, "pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.01", "validate": True}
    )
    answer = await kraken.send("AddOrder", body, nonce="77", headers={"Content-Type": "application/json"})
    assert answer == {"error": [], "result": {"descr": {"order": "buy 0.01000000 XBTUSD @ market"}}}


async def test_private_method_over_get_is_unknown(kraken: KrakenClient) -> None:
    response = await kraken.http.get("/0/private/Balance")
    assert response.json() == {"error": ["EGeneral:Unknown method"]}


async def test_a_nonce_window_accepts_late_nonces_once(kraken: KrakenClient, exchange: Exchange) -> None:
    exchange.api_key(kraken.key).nonce_window = 5
    assert (await kraken.send("Balance", "nonce=100", nonce="100"))["error"] == []
    assert (await kraken.send("Balance", "nonce=97", nonce="97"))["error"] == []  # late, inside the window
    assert await kraken.send("Balance", "nonce=97", nonce="97") == {"error": ["EAPI:Invalid nonce"]}  # once only
    assert await kraken.send("Balance", "nonce=100", nonce="100") == {"error": ["EAPI:Invalid nonce"]}
    assert await kraken.send("Balance", "nonce=95", nonce="95") == {"error": ["EAPI:Invalid nonce"]}  # outside
    assert (await kraken.send("Balance", "nonce=101", nonce="101"))["error"] == []
