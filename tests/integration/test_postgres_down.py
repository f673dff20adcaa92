"""A PostgreSQL server that goes away in the middle of a trade loses nothing: the
exchange side goes on (the entry is protected), the records go to the pending-writes
spool on this machine's disk, and the next run writes them to the server."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.domain.config import load_settings
from core.execution.spool import spool_path
from core.storage.store import Store
from simulator.server import serving
from simulator.wire import order
from tests.integration.kill_proxy import KillProxy
from tests.postgres import Link, PostgresServer

pytestmark = pytest.mark.integration

runner = CliRunner()
KEY = "tgServerDownKey0123456789"
SECRET = base64.b64encode(bytes(range(64))).decode()


def test_a_server_gone_mid_trade_loses_nothing_and_the_next_run_writes_the_spool(
    postgres: PostgresServer, pg_tg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TG_KRAKEN_API_KEY", KEY)
    monkeypatch.setenv("TG_KRAKEN_API_SECRET", SECRET)
    database = pg_tg_database
    link = Link(postgres.port)
    db = link.url(database, postgres.port)
    with serving(keys=[(KEY, SECRET)], tier=None) as server, KillProxy(server.url) as proxy:
        proxy.on_forward = lambda: link.cut() if proxy.log[-1].label == "AddOrder.market" else None
        proxy.arm(None)
        trade = runner.invoke(
            app, ["trade", "BTC/USD", "--side", "buy", "--volume", "0.01", "--url", proxy.url, "--db", db, "--json"]
        )
        assert server.sandbox is not None
        listed = {txid: order(o, with_trades=False) for txid, o in server.sandbox.exchange.state.orders.items()}
        stops = [t for t, o in listed.items() if o["descr"]["ordertype"] == "stop-loss" and o["status"] == "open"]

        report = json.loads(trade.stdout)
        assert trade.exit_code == 4 and report["status"] == "FILLED" and not report["stored"], trade.output
        assert [Decimal(listed[t]["vol"]) for t in stops] == [Decimal("0.01")]  # protected all the same
        spool = spool_path(load_settings(db=db).db_path)
        assert spool.parent == tmp_path / "data" and spool.read_text().strip()

        link.restore()
        reconcile = runner.invoke(app, ["reconcile", "--url", proxy.url, "--db", db, "--json"])
        assert reconcile.exit_code == 0, reconcile.output
        assert any("spooled record" in change for change in json.loads(reconcile.stdout)["changes"])
    link.close()
    assert not spool.exists() or not spool.read_text().strip()
    with Store.open(database) as store:
        [position] = store.positions()
        assert position.size == Decimal("0.01") and position.status.value == "open"
        protection = [o for o in store.orders(position_id=position.id) if o.role.value == "stop_loss"]
        assert [o.external_id for o in protection] == stops
