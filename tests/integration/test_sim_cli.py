"""`tg sim advance`, `tg sim status` and `tg sim serve`'s refusals through Typer's
runner, on a sandbox beside a database in tmp_path (serving as a real process:
test_sim_serve_keys.py)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cli.wiring import sandbox_path
from simulator.embedded import SANDBOX_EPOCH, EmbeddedExchange
from simulator.exchange import DEFAULT_ACCOUNT
from simulator.models import OrderSpec, OrderType, Side
from simulator.pairs import PAIRS
from simulator.price_path import synthetic_paths
from tests.exchange.kraken_fakes import SECRET
from tests.integration.tg_cli import tg, tg_json

pytestmark = pytest.mark.integration

SIX_HOURS = 6 * 3600


def place(db: Path, **fields: Any) -> str:
    sandbox = EmbeddedExchange.open(sandbox_path(db))
    order = sandbox.exchange.add_order(DEFAULT_ACCOUNT, OrderSpec(pair="XBTUSDT", **fields))
    sandbox.save()
    assert order is not None
    return order.txid


def test_advance_fills_what_the_market_reaches_and_leaves_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    low, high = synthetic_paths(42, PAIRS.values(), SANDBOX_EPOCH)["XBTUSDT"].price_range(
        SANDBOX_EPOCH, SANDBOX_EPOCH + SIX_HOURS
    )
    assert low < Decimal(59_950) and high > Decimal(60_050)  # the seed-42 market moves in 6h
    place(db, side=Side.BUY, ordertype=OrderType.MARKET, volume=Decimal("0.1"))
    reached = {
        place(db, side=Side.BUY, ordertype=OrderType.LIMIT, volume=Decimal("0.01"), price=low + 1),
        place(db, side=Side.SELL, ordertype=OrderType.TAKE_PROFIT, volume=Decimal("0.01"), price=high - 1),
        place(db, side=Side.SELL, ordertype=OrderType.STOP_LOSS, volume=Decimal("0.01"), price=low + 1),
    }
    unreached = {
        place(db, side=Side.BUY, ordertype=OrderType.LIMIT, volume=Decimal("0.01"), price=low - 100),
        place(db, side=Side.SELL, ordertype=OrderType.STOP_LOSS, volume=Decimal("0.01"), price=low - 100),
    }

    report = tg_json("sim", "advance", "6h", "--db", str(db))

    assert (report["from"], report["to"], report["seconds"]) == (SANDBOX_EPOCH, SANDBOX_EPOCH + SIX_HOURS, SIX_HOURS)
    assert set(report["changed"]) == reached
    assert {o["status"] for o in report["changed"].values()} == {"closed"}
    assert all(Decimal(o["vol_exec"]) == Decimal("0.01") for o in report["changed"].values())
    assert report["still_open"] == len(unreached)
    status = tg_json("sim", "status", "--db", str(db))
    assert status["time"] == SANDBOX_EPOCH + SIX_HOURS
    assert {o["txid"] for o in status["open_orders"]} == unreached


def test_advance_prints_a_table_of_what_filled(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    txid = place(db, side=Side.BUY, ordertype=OrderType.LIMIT, volume=Decimal("0.01"), price=Decimal(59_500))

    code, out, err = tg("sim", "advance", "2d", "--db", str(db))

    assert code == 0, out + err
    assert "2026-01-01 00:00:00 -> 2026-01-03 00:00:00 UTC" in out
    assert "1 order(s) done, 0 still open" in out
    assert txid in out and "closed" in out


def test_status_json_shows_prices_balances_and_open_orders(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    fresh = tg_json("sim", "status", "--db", str(db))
    assert fresh["saved"] is False and not sandbox_path(db).exists()  # looking changes nothing
    txid = place(db, side=Side.BUY, ordertype=OrderType.LIMIT, volume=Decimal("0.5"), price=Decimal(50_000))

    status = tg_json("sim", "status", "--db", str(db))

    assert status["path"] == str(sandbox_path(db)) and status["saved"] is True
    assert (status["time"], status["seed"]) == (SANDBOX_EPOCH, 42)
    assert len(status["prices"]) == len(PAIRS) and "XBT/USDT" not in status["prices"]  # named as users do
    btc = status["prices"]["BTC/USDT"]
    assert Decimal(btc["bid"]) < Decimal(btc["last"]) < Decimal(btc["ask"])
    assert status["balances"] == {"USD": "100000.0000", "USDT": "100000.00000000"}
    assert status["open_orders"] == [
        {
            "txid": txid,
            "pair": "BTC/USDT",
            "side": "buy",
            "order_type": "limit",
            "volume": "0.50000000",
            "price": "50000.0",
        }
    ]


def test_status_prints_tables(tmp_path: Path) -> None:
    code, out, err = tg("sim", "status", "--db", str(tmp_path / "tg.db"))
    assert code == 0, out + err
    for shown in ("prices", "balances", "BTC/USDT", "60000.0", "100000", "no open orders"):
        assert shown in out


@pytest.mark.parametrize("duration", ["6x", "h6", "1.5h", "6 h", "", "0s", "367d"])
def test_advance_refuses_bad_durations(tmp_path: Path, duration: str) -> None:
    db = tmp_path / "tg.db"
    code, _, err = tg("sim", "advance", duration, "--db", str(db))
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not sandbox_path(db).exists()


def test_advance_accepts_compound_durations(tmp_path: Path) -> None:
    assert tg_json("sim", "advance", "1h30m", "--db", str(tmp_path / "tg.db"))["seconds"] == 5400


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host", "0.0.0.0"], "not a loopback address"),
        (["--host", "192.0.2.10", "--port", "0"], "--allow-remote"),
        (["--host", "192.0.2.10", "--allow-remote"], "needs a control token"),
        (["--allow-remote", "--control-token", "short"], "at least 16"),
        (["--api-key", "k", "--api-secret", SECRET, "--key-file", "keys"], "one way"),
        (["--api-key", "k"], "give them in pairs"),
        (["--api-key", "k", "--api-secret", "not base64!"], "not base64"),
        (["--fault", "no-such-fault"], "unknown fault"),
        (["--port", "70000"], "out of range"),
    ],
)
def test_serve_refuses_bad_input_before_listening(args: list[str], says: str) -> None:
    code, _, err = tg("sim", "serve", *args, env={"TG_SANDBOX_TOKEN": None})
    assert code == 2
    assert says in err and len(err.strip().splitlines()) == 1
