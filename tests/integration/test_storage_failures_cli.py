"""Storage that fails while a trade is under way: the exchange side is protected first,
and nothing is reported as stored that was not (issue 10, reproduction 3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.domain.errors import DatabaseWriteError
from core.storage.store import Store
from simulator.embedded import EmbeddedExchange
from simulator.exchange import DEFAULT_ACCOUNT

pytestmark = pytest.mark.integration

runner = CliRunner()


def refuse_after(order_writes: int) -> Callable[[str], None]:
    """A database that takes the first `order_writes` order writes, then refuses every write."""
    seen = {"orders": 0}

    def guard(table: str) -> None:
        if table == "orders":
            seen["orders"] += 1
        if seen["orders"] > order_writes:
            raise DatabaseWriteError(f"injected: the disk is full ({table})")

    return guard


def test_reproduction_3_storage_and_spool_fail_after_the_fill_and_the_position_is_protected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "tg.db"
    (tmp_path / "tg.pending.jsonl").mkdir()  # the spool cannot be written either
    opened = Store.open

    def failing_open(path: Path, **options: Any) -> Store:
        # intent, acknowledgement and fill of the entry are stored; nothing after
        return opened(path, write_guard=refuse_after(3), **options)

    monkeypatch.setattr("cli.wiring.Store.open", failing_open)

    result = runner.invoke(app, ["trade", "BTC/USDT", "--side", "buy", "--db", str(db), "--json"])

    assert result.exit_code == 4  # storage and spool failed: the environment (cli/exit_codes.py)
    summary = json.loads(result.stdout)
    assert summary["stored"] is False and summary["status"] == "FILLED"
    lines = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert "could not be stored" in result.stderr
    records = [json.loads(line) for line in lines]
    kept_roles = {o["role"] for record in records for o in record["orders"]}
    assert {"stop_loss", "take_profit"} <= kept_roles
    assert any(record["position"] for record in records)

    sandbox = EmbeddedExchange.open(tmp_path / "tg.sandbox.db")
    held = sandbox.exchange.balance(DEFAULT_ACCOUNT)["XXBT"]
    stops = [o for o in sandbox.exchange.open_orders(DEFAULT_ACCOUNT) if o.spec.ordertype.value == "stop-loss"]
    assert held > 0 and sum(o.remaining for o in stops) == held  # protected on the exchange all the same

    # once storage works again, the printed lines saved into the spool are written
    (tmp_path / "tg.pending.jsonl").rmdir()
    (tmp_path / "tg.pending.jsonl").write_text("".join(line + "\n" for line in lines))
    monkeypatch.setattr("cli.wiring.Store.open", opened)
    repaired = runner.invoke(app, ["reconcile", "--db", str(db), "--json"])
    assert repaired.exit_code == 0, repaired.output
    with Store.open(db) as store:
        [position] = store.positions()
        assert position.size == held
        assert {o.external_id for o in store.orders()} >= {o.txid for o in stops}
