"""The pytest plugin as someone testing their own bot uses it: ccxt, unmodified, pointed
at the `kraken_sandbox` fixture, the exchange driven through its control object."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest

from simulator.exceptions import ControlRefused
from simulator.testing import ServedSandbox, served_sandbox

pytestmark = pytest.mark.integration


@pytest.fixture
def kraken(kraken_sandbox: ServedSandbox) -> Iterator[ccxt.kraken]:
    exchange = ccxt.kraken(kraken_sandbox.ccxt_config(timeout=5_000))
    yield exchange
    exchange.session.close()


def test_a_resting_limit_fills_when_the_test_says_so(kraken_sandbox: ServedSandbox, kraken: ccxt.kraken) -> None:
    order = kraken.create_order("BTC/USD", "limit", "buy", 0.01, 30_000)
    assert kraken.fetch_order(order["id"])["status"] == "open"

    half = kraken_sandbox.control.fill(order["id"], volume="0.004")
    assert (half["status"], half["vol_exec"]) == ("open", "0.00400000")
    kraken_sandbox.control.fill(order["id"])

    filled = kraken.fetch_order(order["id"])
    assert (filled["status"], filled["filled"], filled["average"]) == ("closed", 0.01, 30_000)
    assert kraken.fetch_balance()["BTC"]["total"] == 0.01
    with pytest.raises(ControlRefused) as refused:
        kraken_sandbox.control.fill(order["id"])
    assert refused.value.errors == ["EOrder:Invalid order"]


def test_a_fault_refuses_the_stop_until_its_rule_is_removed(kraken_sandbox: ServedSandbox, kraken: ccxt.kraken) -> None:
    control = kraken_sandbox.control
    kraken.create_order("BTC/USD", "market", "buy", 0.01)
    [rule] = control.add_fault("stop-fail")

    with pytest.raises(ccxt.InvalidOrder):
        kraken.create_order("BTC/USD", "market", "sell", 0.01, None, {"stopLossPrice": 30_000})
    assert [(e["fault"], e["rule"], e["role"], e["outcome"]) for e in control.fault_log()] == [
        ("stop-fail", rule, "stop_loss", "EOrder:Invalid order")
    ]

    assert control.remove_fault(rule) == []
    stop = kraken.create_order("BTC/USD", "market", "sell", 0.01, None, {"stopLossPrice": 30_000})
    assert kraken.fetch_order(stop["id"])["status"] == "open"
    assert len(control.fault_log()) == 1


def test_balances_set_by_the_test_are_what_the_bot_reads(kraken_sandbox: ServedSandbox, kraken: ccxt.kraken) -> None:
    kraken_sandbox.control.set_balances({"USD": "250.5", "BTC": "0.25"})

    balance = kraken.fetch_balance()
    assert (balance["USD"]["total"], balance["BTC"]["total"], balance["USDT"]["total"]) == (250.5, 0.25, 100_000)
    with pytest.raises(ccxt.InsufficientFunds):
        kraken.create_order("BTC/USD", "market", "buy", 0.01)


def test_a_flash_crash_fires_the_stop_and_the_market_recovers(
    kraken_sandbox: ServedSandbox, kraken: ccxt.kraken
) -> None:
    control = kraken_sandbox.control
    kraken.create_order("BTC/USD", "market", "buy", 0.01)
    before = kraken.fetch_ticker("BTC/USD")["last"]
    stop = kraken.create_order("BTC/USD", "market", "sell", 0.01, None, {"stopLossPrice": round(before * 0.95)})

    control.shape_price("flash-crash", pair="BTC/USD", pct=-8, over=120, recover=600, after=60)
    assert kraken.fetch_ticker("BTC/USD")["last"] == before  # nothing before it starts
    control.advance(180)
    bottom = kraken.fetch_ticker("BTC/USD")["last"]
    control.advance(600)
    recovered = kraken.fetch_ticker("BTC/USD")["last"]

    assert bottom < before * 0.94
    assert abs(recovered / before - 1) < 0.02
    sold = kraken.fetch_order(stop["id"])
    assert sold["status"] == "closed" and sold["average"] < before * 0.95


def test_a_jump_moves_the_price_at_once_and_a_flat_market_holds_it(
    kraken_sandbox: ServedSandbox, kraken: ccxt.kraken
) -> None:
    control = kraken_sandbox.control
    before = Decimal(control.state()["prices"]["XXBTZUSD"])

    control.shape_price("jump", pair="XBT/USD", pct=10)
    jumped = Decimal(control.state()["prices"]["XXBTZUSD"])
    control.shape_price("flat", pair="XBT/USD", over=3_600)
    control.advance(1_800)

    assert jumped == (before * Decimal("1.1")).quantize(Decimal("0.1"))
    assert Decimal(control.state()["prices"]["XXBTZUSD"]) == jumped
    assert kraken.fetch_ticker("BTC/USD")["last"] == float(jumped)
    with pytest.raises(ControlRefused) as refused:
        control.shape_price("trend", pct=5)  # a trend needs to know how long it takes
    assert refused.value.errors == ["EGeneral:Invalid arguments:trend needs over > 0 (how long it lasts)"]


def test_the_clock_stands_still_until_released(kraken_sandbox: ServedSandbox) -> None:
    control = kraken_sandbox.control
    frozen = control.clock()
    assert frozen["frozen"] and control.clock()["time"] == frozen["time"]

    running = control.release()
    assert not running["frozen"]
    assert control.clock()["time"] > frozen["time"]
    stopped = control.freeze()["time"]
    assert control.clock()["time"] == stopped


def test_each_account_trades_with_its_own_keys(kraken_sandbox: ServedSandbox, kraken: ccxt.kraken) -> None:
    bob = kraken_sandbox.control.add_account("bob", {"USD": 500})
    as_bob = ccxt.kraken({**kraken_sandbox.ccxt_config(), "apiKey": bob.key, "secret": bob.secret})
    try:
        as_bob.create_order("BTC/USD", "limit", "buy", 0.001, 30_000)
        assert as_bob.fetch_balance()["USD"]["total"] == 500
        assert kraken.fetch_open_orders() == []
    finally:
        as_bob.session.close()
    assert set(kraken_sandbox.control.accounts()) == {"default", "bob"}
    assert "secret" not in str(kraken_sandbox.control.accounts())


@pytest.mark.kraken_sandbox(faults=["busy:endpoint=BalanceEx"], seed=7)
def test_the_marker_sets_the_sandbox_up(kraken_sandbox: ServedSandbox, kraken: ccxt.kraken) -> None:
    with pytest.raises(ccxt.ExchangeNotAvailable):
        kraken.fetch_balance()
    assert kraken.fetch_balance()["USD"]["total"] == 100_000
    assert kraken_sandbox.control.state()["seed"] == 7
    assert [e["outcome"] for e in kraken_sandbox.control.fault_log()] == ["EService:Busy"]


def test_the_session_sandbox_comes_back_reset(kraken_sandbox_reset: ServedSandbox) -> None:
    control = kraken_sandbox_reset.control
    control.add_fault("busy")
    control.set_balances({"USD": 1})
    control.reset()
    assert control.state()["accounts"]["default"]["balances"]["ZUSD"] == "100000.0000"


def test_the_context_manager_serves_without_pytest(tmp_path: Path) -> None:
    scenario = tmp_path / "crash.toml"
    scenario.write_text('[[event]]\nat = "1m"\nprice = { shape = "jump", pair = "XBT/USD", pct = -20 }\n')
    with served_sandbox(scenario=scenario, seed=3) as served:
        kraken = ccxt.kraken(served.ccxt_config())
        try:
            before = kraken.fetch_ticker("BTC/USD")["last"]
            served.control.advance(60)
            assert kraken.fetch_ticker("BTC/USD")["last"] < before * 0.85
        finally:
            kraken.session.close()
