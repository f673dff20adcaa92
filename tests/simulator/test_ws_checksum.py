"""The book checksum against the example Kraken publishes (docs: spot-ws-book-v1/v2):
ten asks from 0.05005 and ten bids from 0.05000, each of qty 0.00000500, give 974947235."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

from simulator.pairs import PAIRS
from simulator.websocket.channels import checksum
from simulator.websocket.protocol import encode
from tests.simulator.ws_peer import book_checksum

KRAKEN_EXAMPLE = 974947235
ASKS = ["0.05005", "0.05010", "0.05015", "0.05020", "0.05025", "0.05030", "0.05035", "0.05040", "0.05045", "0.05050"]
BIDS = ["0.05000", "0.04995", "0.04990", "0.04980", "0.04975", "0.04970", "0.04965", "0.04960", "0.04955", "0.04950"]
QTY = Decimal("0.00000500")


def test_the_sandbox_computes_krakens_example() -> None:
    pair = replace(PAIRS["XXBTZUSD"], pair_decimals=5, lot_decimals=8)
    asks = [(Decimal(p), QTY) for p in ASKS]
    bids = [(Decimal(p), QTY) for p in BIDS]
    assert checksum(pair, asks, bids) == KRAKEN_EXAMPLE


def test_the_wire_keeps_every_place_so_a_client_reading_it_agrees() -> None:
    levels = {
        "asks": [{"price": Decimal(p), "qty": QTY} for p in ASKS],
        "bids": [{"price": Decimal(p), "qty": QTY} for p in BIDS],
    }
    text = encode(levels)
    assert '"qty":0.00000500' in text and '"price":0.05000' in text
    read = json.loads(text, parse_float=Decimal)
    asks = {level["price"]: level["qty"] for level in read["asks"]}
    bids = {level["price"]: level["qty"] for level in read["bids"]}
    assert book_checksum(asks, bids) == KRAKEN_EXAMPLE


def test_small_and_zero_numbers_keep_their_places_not_an_exponent() -> None:
    """simplejson wrote each Decimal as str() does, past the sandbox's own writer: a qty of
    0.00000050 went out as 5.0E-7 and a removed book level as qty 0E-8, so a client
    computing the checksum from the wire's text, as Kraken's guide says, got another one."""
    text = encode({"qty": Decimal("0.00000050"), "gone": 0 * Decimal("0.00000001"), "big": Decimal("1E+2")})
    assert text == '{"qty":0.00000050,"gone":0.00000000,"big":100}'
