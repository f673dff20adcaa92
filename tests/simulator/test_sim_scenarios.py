"""Scenarios (simulator.scenario) and the price shapes they lay over the market
(simulator.price_shapes): read from TOML, scheduled on the exchange clock, and the same
exchange for the same seed and scenario, request for request."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.domain.clock import VirtualClock
from simulator.app import create_app
from simulator.embedded import SANDBOX_EPOCH, EmbeddedExchange
from simulator.exchange import Exchange
from simulator.models import PriceShape
from simulator.pairs import PAIRS
from simulator.price_path import synthetic_paths
from simulator.price_shapes import shaped
from simulator.scenario import ScenarioError, load_scenario, parse_scenario
from tests.simulator.sandbox_client import KrakenClient

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "scenarios").glob("*.toml"))
BTC = PAIRS["XXBTZUSD"]
T0 = SANDBOX_EPOCH


def plain() -> Any:
    return synthetic_paths(42, PAIRS.values(), T0)["XXBTZUSD"]


def test_a_flash_crash_falls_then_comes_back() -> None:
    base = plain()
    crash = shaped(base, BTC, [PriceShape("flash-crash", T0 + 60, "XXBTZUSD", Decimal(-8), 120.0, 300.0)])

    assert crash.price_at(T0 + 59) == base.price_at(T0 + 59)
    assert crash.price_at(T0 + 180) == (base.price_at(T0 + 180) * Decimal("0.92")).quantize(BTC.tick_size)
    halfway = base.price_at(T0 + 330) * Decimal("0.96")
    assert crash.price_at(T0 + 330) == halfway.quantize(BTC.tick_size)
    assert crash.price_at(T0 + 481) == base.price_at(T0 + 481)
    low, high = crash.price_range(T0, T0 + 600)
    assert low <= crash.price_at(T0 + 180) and high >= base.price_at(T0)


def test_a_flat_market_holds_then_moves_on_without_a_jump() -> None:
    base = plain()
    flat = shaped(base, BTC, [PriceShape("flat", T0 + 60, None, Decimal(0), 3_600.0)])
    held = base.price_at(T0 + 60)

    assert flat.price_range(T0 + 60, T0 + 3_660) == (held, held)
    assert flat.price_at(T0 + 3_660) == held
    after = base.price_at(T0 + 7_200) * held / base.price_at(T0 + 3_660)
    assert flat.price_at(T0 + 7_200) == after.quantize(BTC.tick_size)


def test_candles_follow_the_shape_and_stay_candles() -> None:
    trend = shaped(plain(), BTC, [PriceShape("trend", T0 + 600, None, Decimal(10), 3_600.0)])
    bars = trend.candles(5, T0, T0 + 7_200)

    assert bars[-1].close == trend.price_at(T0 + 7_200 - 1e-6)
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)
    assert bars[-1].close > bars[0].open * Decimal("1.05")


def test_shapes_survive_a_save_and_a_load(tmp_path: Path) -> None:
    sandbox = EmbeddedExchange.open(tmp_path / "s.db")
    sandbox.exchange.add_price_shape(PriceShape("flash-crash", T0 + 60, "XXBTZUSD", Decimal(-8), 120.0, 300.0))
    sandbox.advance(120)
    fallen = sandbox.exchange.price(BTC)
    sandbox.save()
    sandbox.close()

    with EmbeddedExchange.open(tmp_path / "s.db") as again:
        assert again.exchange.price(BTC) == fallen
        assert [s.kind for s in again.exchange.state.shapes] == ["flash-crash"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_reads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name and scenario.description and scenario.event
    assert scenario.rules(T0) or scenario.shapes(T0) or scenario.status_changes(T0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('[[event]]\nat = "1m"\n', "event.1: an event holds one price move, one fault or one status"),
        ('[[event]]\nat = "1m"\nstatus = "closed"\n', "event.1.status"),
        ('[[event]]\nat = "soon"\nfault = "busy"\n', "event.1.at: 'soon' is not a duration"),
        ('[[event]]\nat = "1m"\nfault = "meteor"\n', "event 1: fault meteor: Value error, unknown fault 'meteor'"),
        ('[[event]]\nat = 0\nprice = { shape = "trend", pct = 5 }\n', "trend needs over > 0"),
        ("[[evnt]]\n", "evnt: Extra inputs are not permitted"),
    ],
)
def test_a_bad_scenario_says_where_and_why(text: str, reason: str) -> None:
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(text, "s.toml")
    assert reason in str(refused.value)


async def run(seed: int, scenario: Path) -> dict[str, Any]:
    """A fixed run of requests through a scenario: a position, stops, 40 minutes."""
    exchange = Exchange.create(VirtualClock(T0), seed=seed, fixed_ids=True)
    api_key = exchange.create_api_key()
    app = create_app(exchange, tier=None)
    app.sandbox.load_scenario(load_scenario(scenario))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox.kraken") as http:
        kraken = KrakenClient(http, api_key)
        answers = [await kraken.private("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.1")]
        for minute in range(40):
            price = Decimal(app.sandbox.state(orders=False)["prices"]["XXBTZUSD"])
            if minute % 3 == 0:
                answers.append(
                    await kraken.private(
                        "AddOrder",
                        pair="XBTUSD",
                        type="sell",
                        ordertype="stop-loss",
                        volume="0.01",
                        price=str((price * Decimal("0.97")).quantize(Decimal(1))),
                    )
                )
            answers.append(await kraken.private("OpenOrders"))
            exchange.advance(60)
    state = app.sandbox.state()
    assert state["accounts"]["default"].pop("keys") == [api_key.key]  # drawn afresh: the one thing a seed leaves open
    return {"answers": answers, "state": state, "log": app.sandbox.faults.log_dicts()}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
async def test_the_same_seed_and_scenario_give_the_same_exchange(path: Path) -> None:
    first, second = await run(7, path), await run(7, path)

    assert first == second
    assert first["log"], "the scenario's faults met the run"


async def test_a_scheduled_maintenance_window_refuses_then_reopens_and_matches_only_outside_it() -> None:
    """A scenario's `status` event on the exchange clock: SystemStatus says it, order entry
    is refused in it, and a resting buy the market falls through inside it fills only
    once the window has passed."""
    exchange = Exchange.create(VirtualClock(T0), seed=42, fixed_ids=True)
    api_key = exchange.create_api_key()
    app = create_app(exchange, tier=None)
    scenario = parse_scenario(
        '[[event]]\nat = "5m"\nfor = "30m"\nstatus = "maintenance"\n'
        '[[event]]\nat = "10m"\nprice = { shape = "jump", pair = "XBT/USD", pct = -5 }\n'
    )
    app.sandbox.load_scenario(scenario)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox.kraken") as http:
        kraken = KrakenClient(http, api_key)
        price = Decimal(app.sandbox.state(orders=False)["prices"]["XXBTZUSD"])
        limit = str((price * Decimal("0.97")).quantize(Decimal("0.1")))
        txid = await kraken.place(pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price=limit)
        assert (await kraken.public("SystemStatus"))["result"]["status"] == "online"

        exchange.advance(15 * 60)  # in the window, after the fall
        assert (await kraken.public("SystemStatus"))["result"]["status"] == "maintenance"
        refused = await kraken.private("AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume="0.01")
        assert refused["error"] == ["EService:Unavailable"]
        assert (await kraken.result("QueryOrders", txid=txid))[txid]["status"] == "open"

        exchange.advance(25 * 60)
        assert (await kraken.public("SystemStatus"))["result"]["status"] == "online"
        filled = (await kraken.result("QueryOrders", txid=txid))[txid]
        assert filled["status"] == "closed"
        assert T0 + 35 * 60 <= float(filled["closetm"]) <= T0 + 36 * 60  # as the window closed, not inside it
