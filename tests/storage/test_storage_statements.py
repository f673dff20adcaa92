"""The store's statements are built once and its engines kept per database: what
that must not change (rows, their order on ties, the baselines) and what it shares."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from core.domain.enums import OrderStatus
from core.storage.backends import SQLITE_COMPILED
from core.storage.store import HoldingBaseline, Store
from tests.storage.storage_builders import make_order


def test_rows_that_tie_come_in_the_order_they_were_written(store: Store) -> None:
    for n in (3, 1, 2):
        store.start_run(f"R-{n}", kind="trade", symbol=None, started_at=5.0, params={})
        store.add_order(make_order(client_order_id=f"O-{n}", created_at=5.0))

    assert [r.run_id for r in store.runs_of_kind("trade")] == ["R-3", "R-1", "R-2"]
    assert [r.run_id for r in store.list_runs()] == ["R-2", "R-1", "R-3"]
    assert [o.client_order_id for o in store.orders()] == ["O-3", "O-1", "O-2"]
    assert [o.client_order_id for o in store.orders_in_play()] == ["O-3", "O-1", "O-2"]


def test_one_statement_serves_every_value_of_its_filters(store: Store) -> None:
    store.add_order(make_order(client_order_id="O-a", run_id="R-1", external_id="TX-a"))
    store.add_order(make_order(client_order_id="O-b", run_id="R-2", external_id="TX-b"))

    assert [o.client_order_id for o in store.orders(run_id="R-1")] == ["O-a"]
    assert [o.client_order_id for o in store.orders(run_id="R-2")] == ["O-b"]
    assert {o.client_order_id for o in store.orders_named(["TX-b"], ["O-a"])} == {"O-a", "O-b"}
    assert [o.client_order_id for o in store.orders_named(["TX-b", "TX-a"], ["O-a"])] == ["O-a", "O-b"]
    assert [o.client_order_id for o in store.orders_named([], ["O-b"])] == ["O-b"]
    assert store.orders_named([], []) == []
    assert store.orders(status=[]) == []


def test_every_assets_holding_baseline_is_read_in_one(store: Store) -> None:
    btc = HoldingBaseline("XXBT", Decimal("0.5"), 10.0, {"TX-1": Decimal("0.25")}, Decimal("0.1"), 12.0)
    eth = HoldingBaseline("XETH", Decimal("2"), 11.0)
    store.set_holding_baseline(btc)
    store.set_holding_baseline(eth)

    assert store.holding_baselines() == {"XXBT": btc, "XETH": eth}
    store.clear_holding_baselines()
    assert store.holding_baselines() == {}


def test_stores_opened_on_one_database_share_its_engine(tmp_path: Path) -> None:
    with Store.open(tmp_path / "tg.db") as first:
        engine = first._conn.engine
    with Store.open(tmp_path / "tg.db") as second, Store.open(tmp_path / "other.db") as other:
        assert second._conn.engine is engine
        assert other._conn.engine is not engine


def test_a_new_sqlite_database_runs_what_another_compiled(tmp_path: Path) -> None:
    SQLITE_COMPILED.clear()
    with Store.open(tmp_path / "first.db") as first:
        first.add_order(make_order(client_order_id="O-1", run_id="R-1", position_id=None))
        first.orders(run_id="R-1", status=[OrderStatus.INTENT])
        compiled = len(SQLITE_COMPILED)
    assert compiled > 0
    with Store.open(tmp_path / "second.db") as second:
        second.add_order(make_order(client_order_id="O-2", run_id="R-2", position_id=None))
        assert [o.client_order_id for o in second.orders(run_id="R-2", status=[OrderStatus.INTENT])] == ["O-2"]
        assert len(SQLITE_COMPILED) == compiled  # both statements were compiled for first.db
