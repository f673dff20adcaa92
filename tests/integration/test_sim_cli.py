"""`tg sim advance`, `tg sim status` and `tg sim serve` through Typer's runner (and, for
serving until Ctrl-C, as a real process), on a sandbox beside a database in tmp_path."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import krakenex
import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.wiring import sandbox_path
from simulator.embedded import SANDBOX_EPOCH, EmbeddedExchange
from simulator.exchange import DEFAULT_ACCOUNT
from simulator.models import OrderSpec, OrderType, Side
from simulator.pairs import PAIRS
from simulator.price_path import synthetic_paths

pytestmark = pytest.mark.integration

runner = CliRunner()
SIX_HOURS = 6 * 3600
SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="


def tg(*args: str) -> Any:
    return runner.invoke(app, list(args))


def tg_json(*args: str) -> Any:
    result = tg(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


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
    assert set(status["open"]) == unreached


def test_advance_prints_a_table_of_what_filled(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    txid = place(db, side=Side.BUY, ordertype=OrderType.LIMIT, volume=Decimal("0.01"), price=Decimal(59_500))

    result = tg("sim", "advance", "2d", "--db", str(db))

    assert result.exit_code == 0, result.output
    assert "2026-01-01 00:00:00 -> 2026-01-03 00:00:00 UTC" in result.stdout
    assert "1 order(s) done, 0 still open" in result.stdout
    assert txid in result.stdout and "closed" in result.stdout


def test_status_json_shows_prices_balances_and_open_orders(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    fresh = tg_json("sim", "status", "--db", str(db))
    assert fresh["saved"] is False and not sandbox_path(db).exists()  # looking changes nothing
    txid = place(db, side=Side.BUY, ordertype=OrderType.LIMIT, volume=Decimal("0.5"), price=Decimal(50_000))

    status = tg_json("sim", "status", "--db", str(db))

    assert status["path"] == str(sandbox_path(db)) and status["saved"] is True
    assert (status["time"], status["seed"]) == (SANDBOX_EPOCH, 42)
    assert set(status["prices"]) == set(PAIRS)
    btc = status["prices"]["XBTUSDT"]
    assert btc["pair"] == "XBT/USDT"
    assert Decimal(btc["bid"]) < Decimal(btc["last"]) < Decimal(btc["ask"])
    assert status["balances"] == {"ZUSD": "100000.0000", "USDT": "100000.00000000"}
    assert list(status["open"]) == [txid]
    assert status["open"][txid]["descr"]["order"] == "buy 0.50000000 XBTUSDT @ limit 50000.0"


def test_status_prints_tables(tmp_path: Path) -> None:
    result = tg("sim", "status", "--db", str(tmp_path / "tg.db"))
    assert result.exit_code == 0, result.output
    for shown in ("prices", "balances", "XBT/USDT", "60000.0", "100000.0000", "no open orders"):
        assert shown in result.stdout


@pytest.mark.parametrize("duration", ["6x", "h6", "1.5h", "6 h", "", "0s", "367d"])
def test_advance_refuses_bad_durations(tmp_path: Path, duration: str) -> None:
    db = tmp_path / "tg.db"
    result = tg("sim", "advance", duration, "--db", str(db))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
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
    result = runner.invoke(app, ["sim", "serve", *args], env={"TG_SANDBOX_TOKEN": None})
    assert result.exit_code == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_serve_answers_a_kraken_client_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    key_file = tmp_path / "sandbox.keys"
    key_file.write_text(f"sandbox-key\n{SECRET}\n")
    key_file.chmod(0o600)
    command = [
        sys.executable,
        "-c",
        "from cli.main import main; main()",
        "sim",
        "serve",
        "--port",
        "0",
        "--key-file",
        str(key_file),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as server:
        try:
            banner = [server.stdout.readline() for _ in range(4)] if server.stdout else []
            assert banner[0].startswith("sandbox Kraken serving at http://127.0.0.1:"), banner
            url = banner[0].split()[4]
            assert banner[1].split()[:3] == ["API", "key:", "sandbox-..."]
            assert f"TG_KRAKEN_KEY_FILE={key_file} tg trade" in banner[2]
            assert banner[3].split()[:2] == ["streams:", url.replace("http://", "ws://") + "/v2"]
            api = krakenex.API("sandbox-key", SECRET)
            api.uri = url
            assert api.query_private("Balance") == {
                "error": [],
                "result": {"ZUSD": "100000.0000", "USDT": "100000.00000000"},
            }
            api.close()
        finally:
            server.send_signal(signal.SIGINT)
            out, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert out.strip().endswith("sandbox stopped")
    assert SECRET not in "".join(banner) + out + err
