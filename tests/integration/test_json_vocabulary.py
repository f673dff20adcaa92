"""One JSON vocabulary: the objects every command prints have exactly the fields
docs/json.md documents, under the same names (an order is the same object in `tg trade`,
`tg orders` and `tg show`; a position the same in trade, positions, run and replay)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app

pytestmark = pytest.mark.integration

DOC = Path(__file__).parents[2] / "docs" / "json.md"
CANDLES = Path(__file__).parents[2] / "examples" / "btc_usd_1h.csv"
runner = CliRunner()


def documented(section: str) -> set[str]:
    """The field names of the table under `## section` in docs/json.md."""
    text = DOC.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for m in re.finditer(r"^\| ([a-z_]+) \|", body, re.MULTILINE)} - {"field"}


def tg_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = str(tmp_path_factory.mktemp("vocabulary") / "tg.db")
    trade = tg_json("trade", "BTC/USDT", "--side", "buy", "--db", db)
    return {
        "trade": trade,
        "orders": tg_json("orders", "--db", db),
        "positions": tg_json("positions", "--db", db),
        "runs": tg_json("runs", "--db", db),
        "show": tg_json("show", trade["run_id"], "--db", db),
        "run": tg_json("run", "--symbols", "BTC/USDT", "--for", "3h", "--db", db),
        "replay": tg_json("replay", str(CANDLES), "--to", "2025-02-15", "--every", "24", "--db", db),
    }


def test_an_order_is_the_same_object_in_trade_orders_and_show(outputs: dict[str, Any]) -> None:
    fields = documented("order")
    assert fields >= {"txid", "client_order_id", "order_type", "volume", "status"}
    listed = [*outputs["trade"]["orders"], *outputs["orders"], *outputs["show"]["orders"]]
    assert len(listed) >= 9
    for order in listed:
        assert set(order) == fields
    assert {o["txid"] for o in outputs["trade"]["orders"]} <= {o["txid"] for o in outputs["orders"]}


def test_a_position_is_the_same_object_in_trade_positions_and_run(outputs: dict[str, Any]) -> None:
    fields = documented("position")
    listed = [outputs["trade"]["position"], *outputs["positions"], *outputs["run"]["open_positions"]]
    assert len(listed) >= 3
    for position in listed:
        assert set(position) == fields
    for position in outputs["replay"]["open_positions"]:
        assert set(position) == fields | {"unrealized_pnl"}


def test_runs_are_listed_as_documented(outputs: dict[str, Any]) -> None:
    fields = documented("run")
    assert {r["kind"] for r in outputs["runs"]} == {"trade"}
    for run in outputs["runs"]:
        assert set(run) == fields


def test_amounts_are_exact_strings_and_times_numbers(outputs: dict[str, Any]) -> None:
    order = outputs["trade"]["orders"][0]
    for amount in ("volume", "filled_volume", "fee"):
        assert isinstance(order[amount], str)
    assert isinstance(order["created_at"], float)
    position = outputs["trade"]["position"]
    assert isinstance(position["size"], str) and isinstance(position["opened_at"], float)
