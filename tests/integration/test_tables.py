"""Tables people read at 80 and 120 columns: every id, pair, amount and time whole on one
line (never folded or cut), amounts as exact plain decimals (no 0E-8, no None), pairs
named as users name them, no line wider than the terminal."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app

pytestmark = pytest.mark.integration


def tg(width: int, *args: str) -> str:
    result = CliRunner(env={"COLUMNS": str(width)}).invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def plain(amount: str | None) -> str:
    return "-" if amount is None else format(Decimal(amount).normalize(), "f")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Three positions of awkward sizes: one closed by its target, two open."""
    path = str(tmp_path_factory.mktemp("tables") / "tg.db")
    runner = CliRunner()
    for args in (
        ["trade", "BTC/USDT", "--side", "buy", "--volume", "0.41666666"],
        ["sim", "advance", "2d"],
        ["trade", "XRP/USDT", "--side", "buy", "--volume", "40894.66478813"],
        ["trade", "ETH/USD", "--side", "buy", "--volume", "0.12345678"],
    ):
        assert runner.invoke(app, [*args, "--db", path]).exit_code == 0
    return path


def as_json(db: str, *args: str) -> Any:
    return json.loads(tg(200, *args, "--db", db, "--json"))


def lines_of(text: str, width: int) -> list[str]:
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    return lines


def row_with(lines: list[str], token: str) -> str:
    [line] = [line for line in lines if token in line.split()]
    return line


@pytest.mark.parametrize("width", [80, 120])
def test_positions_show_ids_and_amounts_whole(db: str, width: int) -> None:
    positions = as_json(db, "positions")
    lines = lines_of(tg(width, "positions", "--db", db), width)
    assert {p["status"] for p in positions} == {"open", "closed"}
    for p in positions:
        row = row_with(lines, p["id"]).split()
        assert p["symbol"] in row and plain(p["size"]) in row and plain(p["entry_price"]) in row
        if p["status"] == "open":
            assert plain(p["stop_loss"]) in row and plain(p["take_profit"]) in row
        else:
            assert plain(p["exit_price"]) in row and f"{Decimal(p['realized_pnl']):.2f}" in row
    assert "None" not in " ".join(lines) and "E-" not in " ".join(lines)


@pytest.mark.parametrize("width", [80, 120])
def test_orders_show_txids_and_amounts_whole(db: str, width: int) -> None:
    orders = as_json(db, "orders")
    lines = lines_of(tg(width, "orders", "--db", db), width)
    assert len(orders) == 9
    for o in orders:
        row = row_with(lines, o["txid"]).split()
        assert o["symbol"] in row and plain(o["volume"]) in row
        assert plain(o["price"] or o["avg_fill_price"]) in row


def test_amounts_line_up_on_the_right(db: str) -> None:
    lines = tg(120, "orders", "--db", db).splitlines()
    header = next(line for line in lines if line.startswith("txid"))
    end = header.index("volume") + len("volume")
    volumes = [o["volume"] for o in as_json(db, "orders")]
    for volume in volumes:
        row = next(line for line in lines if f" {plain(volume)} " in f"{line} ")
        assert row.index(plain(volume)) + len(plain(volume)) == end


@pytest.mark.parametrize("width", [80, 120])
def test_runs_and_sim_status_fit(db: str, width: int) -> None:
    runs = as_json(db, "runs")
    lines = lines_of(tg(width, "runs", "--db", db), width)
    for run in runs:
        assert run["symbol"] in row_with(lines, run["run_id"]).split()  # one pair each here
    status = lines_of(tg(width, "sim", "status", "--db", db), width)
    text = "\n".join(status)
    assert "BTC/USD " in text and "XBT" not in text and "ZUSD" not in text
    assert "exchange time" in text
    prices = status[: next(i for i, line in enumerate(status) if line.strip() == "balances")]
    for pair, quote in as_json(db, "sim", "status")["prices"].items():
        assert row_with(prices, pair).split() == [pair, quote["last"], quote["bid"], quote["ask"]]


@pytest.mark.parametrize("width", [40, 60])
def test_too_narrow_a_terminal_gets_blocks_not_cut_values(db: str, width: int) -> None:
    text = tg(width, "positions", "--db", db)
    for p in as_json(db, "positions"):
        assert f"position: {p['id']}" in text and f"size: {plain(p['size'])}" in text


def test_a_position_closed_by_its_target_closes_at_the_fill_not_at_the_reconcile(db: str) -> None:
    [closed] = [p for p in as_json(db, "positions") if p["status"] == "closed"]
    reconciled_at = min(o["created_at"] for o in as_json(db, "orders") if o["symbol"] == "XRP/USDT")
    target = next(o for o in as_json(db, "orders") if o["position_id"] == closed["id"] and o["role"] == "take_profit")
    assert target["status"] == "closed"
    assert closed["opened_at"] < closed["closed_at"] < reconciled_at - 60
