"""Requests a hostile or sloppy Kraken client sends, found by driving the sandbox over
its wire: each gets Kraken's envelope with a Kraken error, and a refused request
leaves the exchange as it was."""

from __future__ import annotations

import socket
from decimal import Decimal
from pathlib import Path

import pytest

from simulator.exchange import Exchange
from simulator.faults import FaultSpecError, load_plan
from simulator.pairs import PAIRS
from simulator.scenario import ScenarioError, load_scenario
from simulator.server import SandboxServer
from tests.simulator.sandbox_client import KrakenClient
from tests.simulator.ws_peer import WAIT_S

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


HUGE = "9" * 39
LIMIT_BUY = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "50000"}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"volume": "1e999999999"}, "volume"),
        ({"ordertype": "market", "volume": "1e30"}, "volume"),
        ({"type": "sell", "ordertype": "market", "volume": "1e30", "validate": "true"}, "volume"),
        ({"displayvol": "1e40"}, "displayvol"),
        ({"price": "9" * 40}, "price"),
        ({"price": f"+{HUGE}"}, "price"),
        ({"price": f"-{HUGE}"}, "price"),
        ({"ordertype": "trailing-stop", "price": f"+{HUGE}"}, "price"),
        ({"ordertype": "stop-loss-limit", "price": "70000", "price2": f"+{HUGE}"}, "price2"),
        ({"close[ordertype]": "limit", "close[price]": HUGE}, "close[price]"),
        ({"close[ordertype]": "limit", "close[price]": f"-{HUGE}"}, "close[price]"),
    ],
)
async def test_numbers_past_the_sandboxs_arithmetic_are_refused_and_place_nothing(
    kraken: KrakenClient, fields: dict[str, str], error: str
) -> None:
    """They answered EGeneral:Internal error (Decimal could not round them onto the
    wire); a trailing offset or a close price that large also placed its order, and
    every OpenOrders of the account failed from then on."""
    answer = await kraken.private("AddOrder", **{**LIMIT_BUY, **fields})
    assert answer == {"error": [f"EGeneral:Invalid arguments:{error}"]}
    assert await kraken.result("OpenOrders") == {"open": {}}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"order_qty": "1e999999999"}, "order_qty"),
        ({"limit_price": f"+{HUGE}"}, "limit_price"),
        ({"limit_price": HUGE}, "limit_price"),
    ],
)
async def test_an_amend_past_the_sandboxs_arithmetic_is_refused(
    kraken: KrakenClient, fields: dict[str, str], error: str
) -> None:
    txid = await kraken.place(**LIMIT_BUY)
    answer = await kraken.private("AmendOrder", txid=txid, **fields)
    assert answer == {"error": [f"EGeneral:Invalid arguments:{error}"]}
    order = (await kraken.result("QueryOrders", txid=txid))[txid]
    assert (order["vol"], order["descr"]["price"], order["amended"]) == ("0.01000000", "50000.0", False)


async def test_control_amounts_past_the_sandboxs_arithmetic_are_refused(kraken: KrakenClient) -> None:
    """Balances that large were set, then answered EGeneral:Internal error, and so did
    every later GET /_sandbox/state; a fill at such a price failed the same way."""
    http, control = kraken.http, {"X-TG-Sandbox": "1"}
    before = (await http.get("/_sandbox/state")).json()["result"]["accounts"]["default"]["balances"]
    for balances in ("XBT:1e30", "XBT:1e999999999"):
        answer = (await http.post("/_sandbox/balances", data={"balances": balances}, headers=control)).json()
        assert answer == {"error": ["EGeneral:Invalid arguments:balances"]}
    txid = await kraken.place(**LIMIT_BUY)
    answer = (await http.post("/_sandbox/fill", data={"txid": txid, "price": "1e30"}, headers=control)).json()
    assert answer == {"error": ["EGeneral:Invalid arguments:price"]}
    state = (await http.get("/_sandbox/state")).json()["result"]["accounts"]["default"]
    assert state["balances"] == before
    assert state["open"][txid]["vol_exec"] == "0.00000000"


@pytest.mark.parametrize("balances", ["USD:-5", "USD:1e40"])
async def test_a_new_accounts_balances_are_held_to_the_balances_rules(kraken: KrakenClient, balances: str) -> None:
    """POST /_sandbox/accounts skipped the checks POST /_sandbox/balances makes: it
    opened an account with a negative balance, or one that broke GET /_sandbox/state."""
    http, control = kraken.http, {"X-TG-Sandbox": "1"}
    answer = (
        await http.post("/_sandbox/accounts", data={"account": "bob", "balances": balances}, headers=control)
    ).json()
    assert answer == {"error": ["EGeneral:Invalid arguments:balances"]}
    assert list((await http.get("/_sandbox/accounts")).json()["result"]["accounts"]) == ["default"]


async def test_balances_name_their_account_as_a_new_account_must(kraken: KrakenClient) -> None:
    http, control = kraken.http, {"X-TG-Sandbox": "1"}
    answer = (
        await http.post("/_sandbox/balances", json={"account": "a b/\u0000", "balances": {"USD": "1"}}, headers=control)
    ).json()
    assert answer == {"error": ["EGeneral:Invalid arguments:account"]}
    assert list((await http.get("/_sandbox/accounts")).json()["result"]["accounts"]) == ["default"]


MANY_PLACES = "0" * 32 + "1"
"""Past the 28 digits Decimal's context rounds to: 50000.000...0001 passed for 50000."""


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"price": f"50000.{MANY_PLACES}"},
            "EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals.",
        ),
        ({"volume": f"0.01{MANY_PLACES}"}, "EGeneral:Invalid arguments:volume"),
    ],
)
async def test_more_places_than_the_pair_takes_are_refused_however_many(
    kraken: KrakenClient, fields: dict[str, str], error: str
) -> None:
    answer = await kraken.private("AddOrder", **{**LIMIT_BUY, **fields})
    assert answer == {"error": [error]}
    assert await kraken.result("OpenOrders") == {"open": {}}


@pytest.mark.parametrize(
    ("fields", "error"),
    [({"limit_price": f"49000.{MANY_PLACES}"}, "limit_price"), ({"order_qty": f"0.02{MANY_PLACES}"}, "order_qty")],
)
async def test_an_amend_with_more_places_than_the_pair_takes_is_refused(
    kraken: KrakenClient, fields: dict[str, str], error: str
) -> None:
    txid = await kraken.place(**LIMIT_BUY)
    answer = await kraken.private("AmendOrder", txid=txid, **fields)
    assert answer == {"error": [f"EGeneral:Invalid arguments:{error}"]}
    assert (await kraken.result("QueryOrders", txid=txid))[txid]["amended"] is False


@pytest.mark.parametrize(
    ("order", "amend", "error"),
    [
        (LIMIT_BUY, {"limit_price": "0"}, "limit_price"),
        ({**LIMIT_BUY, "ordertype": "stop-loss", "price": "70000"}, {"trigger_price": "0.0"}, "trigger_price"),
    ],
)
async def test_an_amend_to_a_zero_price_is_refused(
    kraken: KrakenClient, order: dict[str, str], amend: dict[str, str], error: str
) -> None:
    """The order took 0 as its new price: a buy that could never fill, or a stop at 0."""
    txid = await kraken.place(**order)
    answer = await kraken.private("AmendOrder", txid=txid, **amend)
    assert answer == {"error": [f"EGeneral:Invalid arguments:{error}"]}
    assert (await kraken.result("QueryOrders", txid=txid))[txid]["amended"] is False


async def test_a_conditional_close_at_a_zero_price_is_refused(kraken: KrakenClient) -> None:
    answer = await kraken.private("AddOrder", **LIMIT_BUY, **{"close[ordertype]": "limit", "close[price]": "0"})
    assert answer == {"error": ["EGeneral:Invalid arguments:close[price]"]}
    assert await kraken.result("OpenOrders") == {"open": {}}


async def test_a_fall_of_all_but_nothing_leaves_the_market_at_one_tick(kraken: KrakenClient) -> None:
    """A jump of -99.99999% priced ETH/USD at 0.00: a viqc market buy and TradeBalance
    in ETH then divided by zero and answered EGeneral:Internal error."""
    http, control = kraken.http, {"X-TG-Sandbox": "1"}
    await http.post("/_sandbox/price", json={"shape": "jump", "pct": "-99.99999"}, headers=control)
    await http.post("/_sandbox/advance", json={"seconds": 60, "state": False}, headers=control)
    await kraken.place(pair="ETHUSD", type="buy", ordertype="market", volume="10", oflags="viqc")
    assert (await kraken.private("TradeBalance", asset="ETH"))["error"] == []
    prices = (await http.get("/_sandbox/state", params={"orders": "false"})).json()["result"]["prices"]
    assert prices["XETHZUSD"] == "0.01"


def test_a_gap_of_all_but_nothing_leaves_the_market_at_one_tick(exchange: Exchange) -> None:
    pair = PAIRS["XETHZUSD"]
    exchange.add_price_gap(exchange.now(), Decimal("-99.99999"))
    assert exchange.price(pair) == pair.tick_size


async def test_a_parameter_without_a_name_is_refused_without_naming_one(kraken: KrakenClient) -> None:
    """It answered "EGeneral:Invalid arguments:", a Kraken error with an empty detail."""
    assert await kraken.send("Balance", "nonce=7&=x", nonce="7") == {"error": ["EGeneral:Invalid arguments"]}


LONG_NUMBER = "9" * 5000
"""Past the 4,300 digits int() reads from text."""


@pytest.mark.parametrize(
    ("method", "fields", "answer"),
    [
        ("CancelOrder", {"txid": LONG_NUMBER}, {"error": ["EOrder:Unknown order"]}),
        ("CancelOrder", {"txid": f"-{LONG_NUMBER}"}, {"error": ["EOrder:Unknown order"]}),
        ("AmendOrder", {"txid": LONG_NUMBER, "order_qty": "0.02"}, {"error": ["EOrder:Unknown order"]}),
        ("EditOrder", {"txid": LONG_NUMBER, "pair": "XBTUSD", "volume": "0.02"}, {"error": ["EOrder:Unknown order"]}),
        ("CancelOrderBatch", {"orders": [LONG_NUMBER]}, {"error": [], "result": {"count": 0}}),
    ],
)
async def test_a_txid_of_more_digits_than_int_reads_names_no_order(
    kraken: KrakenClient, method: str, fields: dict[str, object], answer: dict[str, object]
) -> None:
    """Read as a userref, it answered EGeneral:Internal error (int() refuses it)."""
    txid = await kraken.place(**LIMIT_BUY, userref="9")
    assert await kraken.private_json(method, **fields) == answer
    assert list((await kraken.result("OpenOrders"))["open"]) == [txid]


async def test_a_txid_in_other_digits_is_not_a_userref(kraken: KrakenClient) -> None:
    """ "٥" (Arabic-Indic five) was read as userref 5 and canceled its orders."""
    txid = await kraken.place(**LIMIT_BUY, userref="5")
    assert await kraken.private("CancelOrder", txid="\u0665") == {"error": ["EOrder:Unknown order"]}
    assert list((await kraken.result("OpenOrders"))["open"]) == [txid]


@pytest.mark.parametrize(
    ("toml", "reason"),
    [
        ("[[events]]\nat = " + LONG_NUMBER + '\nstatus = "maintenance"\n', "Exceeds the limit (4300 digits)"),
        ("a = " + "[" * 3000 + "]" * 3000, "nested too deep"),
    ],
)
async def test_a_scenario_toml_cannot_read_whole_is_refused_as_not_toml(
    kraken: KrakenClient, toml: str, reason: str
) -> None:
    """tomllib raised ValueError and RecursionError past its TOMLDecodeError: the
    control plane answered EGeneral:Internal error, and tg sim serve --scenario
    called it a bug in tg."""
    response = await kraken.http.post("/_sandbox/scenario", json={"toml": toml}, headers={"X-TG-Sandbox": "1"})
    [error] = response.json()["error"]
    assert error.startswith("EGeneral:Invalid arguments:toml:scenario is not TOML: ") and reason in error


def test_a_scenario_file_not_utf8_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_scenario(path)


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_fault_file_nested_too_deep_is_a_fault_spec_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text("a = " + "[" * 3000 + "]" * 3000 if suffix == ".toml" else "[" * 100_000 + "]" * 100_000)
    with pytest.raises(FaultSpecError, match="nested too deep"):
        load_plan(path)


def test_connect_is_refused_with_a_405_over_tcp(ws_server: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    """A 200 to CONNECT opens a tunnel: uvicorn then failed sending the envelope
    through it, and logged "Exception in ASGI application" with its traceback."""
    host, port = ws_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as connection:
        connection.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        answer = b""
        while b"}" not in answer:  # the head, then the envelope's last byte
            answer += connection.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    assert body == b'{"error":["EGeneral:Unknown method"]}'
    assert "Exception in ASGI application" not in caplog.text
