"""Atomicity: the seed's database-transaction scenarios, the write guard, and readers
beside a writer, on SQLite and on PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.domain.enums import OrderRole, OrderType
from core.domain.errors import DatabaseWriteError
from core.storage.store import Store
from tests.storage.storage_builders import make_order, make_position, protection_for

DUPLICATE_KEY = {
    "sqlite": "UNIQUE constraint failed: orders.{column}",
    "postgresql": r"duplicate key value violates unique constraint .* Key \({column}\)",
}
FOREIGN_KEY = {"sqlite": "FOREIGN KEY constraint failed", "postgresql": "violates foreign key constraint"}


def test_a_failed_insert_rolls_back_the_whole_transaction(store: Store, backend_name: str) -> None:
    """Seed: test_order_placement_rollback_on_db_error."""
    duplicate = DUPLICATE_KEY[backend_name].format(column="client_order_id")
    with pytest.raises(DatabaseWriteError, match=duplicate), store.transaction():
        store.add_order(make_order("order-1"))
        store.add_order(make_order("order-1", symbol="XRP/USDT"))

    assert store.get_order("order-1") is None
    assert store.orders() == []


def test_any_exception_rolls_back_and_is_re_raised(store: Store) -> None:
    with pytest.raises(KeyError), store.transaction():
        store.upsert_position(make_position())
        store.upsert_order(make_order(position_id="P-1"))
        raise KeyError("boom")

    assert store.positions() == []
    assert store.orders() == []


def test_a_nested_block_that_fails_is_undone_alone(store: Store) -> None:
    """Nested transactions are SAVEPOINTs: the outer goes on if it catches the error."""
    with store.transaction():
        store.add_order(make_order("C-1"))
        with pytest.raises(DatabaseWriteError), store.transaction():
            store.add_order(make_order("C-2"))
            store.add_order(make_order("C-1"))
        store.add_order(make_order("C-3"))

    assert [o.client_order_id for o in store.orders()] == ["C-1", "C-3"]


def test_a_position_and_its_protection_are_stored_together(store: Store) -> None:
    """Seed: test_position_update_with_order_insertion."""
    position = make_position()
    protection = protection_for(position)

    store.record_protected_position(position, protection)

    assert store.get_position(position.id) == position
    linked = store.orders(position_id=position.id)
    assert len(linked) == 2
    assert {(o.role, o.order_type, o.price) for o in linked} == {
        (OrderRole.STOP_LOSS, OrderType.STOP_LOSS, position.stop_loss),
        (OrderRole.TAKE_PROFIT, OrderType.TAKE_PROFIT, position.take_profit),
    }


def test_recording_a_position_links_unlinked_orders_and_updates_the_entry(store: Store) -> None:
    entry = make_order("C-ENTRY")
    store.add_order(entry)
    position = make_position()
    entry.filled_volume = position.size

    store.record_protected_position(position, [entry, *protection_for(position)])

    stored = store.get_order("C-ENTRY")
    assert stored is not None and (stored.position_id, stored.filled_volume) == (position.id, position.size)
    assert entry.position_id is None  # the caller's order is not changed
    assert len(store.orders(position_id=position.id)) == 3


def test_an_order_naming_another_position_is_refused(store: Store) -> None:
    position = make_position()
    stray = make_order("C-X", position_id="P-other")

    with pytest.raises(DatabaseWriteError, match="C-X belongs to position P-other"):
        store.record_protected_position(position, [stray])

    assert store.positions() == []


def test_a_failure_midway_through_recording_a_position_leaves_no_rows(
    tg_location: Path | str, backend_name: str
) -> None:
    writes: list[str] = []

    def refuse_second_order(table: str) -> None:
        writes.append(table)
        if writes.count("orders") == 2:
            raise OSError("disk full")

    position = make_position()
    with Store.open(tg_location, write_guard=refuse_second_order) as store:
        with pytest.raises(DatabaseWriteError, match="order C-TP to orders: disk full") as caught:
            store.record_protected_position(position, protection_for(position))

        assert writes == ["positions", "orders", "orders"]
        assert isinstance(caught.value.__cause__, OSError)
        assert store.positions() == []
        assert store.orders() == []


def test_the_write_guard_turns_any_write_into_a_database_write_error(
    tg_location: Path | str, backend_name: str
) -> None:
    refused: list[str] = []

    def refuse(table: str) -> None:
        refused.append(table)
        raise RuntimeError("db-fail fault")

    with Store.open(tg_location, write_guard=refuse) as store:
        with pytest.raises(DatabaseWriteError, match="to orders: db-fail fault"):
            store.upsert_order(make_order())
        with pytest.raises(DatabaseWriteError, match="to runs: db-fail fault"):
            store.start_run("R-1", kind="trade", symbol=None, started_at=1.0, params={})

        assert refused == ["orders", "runs"]
        assert store.orders() == []
        assert store.list_runs() == []


def test_constraint_failures_are_database_write_errors(store: Store, backend_name: str) -> None:
    store.upsert_order(make_order("C-1", external_id="OAAAAA-BBBBB-CCCCCC"))

    with pytest.raises(DatabaseWriteError, match=DUPLICATE_KEY[backend_name].format(column="external_id")):
        store.upsert_order(make_order("C-2", external_id="OAAAAA-BBBBB-CCCCCC"))
    with pytest.raises(DatabaseWriteError, match=FOREIGN_KEY[backend_name]):
        store.upsert_order(make_order("C-3", position_id="P-missing"))
    with pytest.raises(DatabaseWriteError, match="run R-1 to runs"):
        store.start_run("R-1", kind="trade", symbol=None, started_at=1.0, params={})
        store.start_run("R-1", kind="trade", symbol=None, started_at=1.0, params={})

    assert [o.client_order_id for o in store.orders()] == ["C-1"]


def test_readers_see_committed_rows_only_while_a_writer_holds_its_transaction(
    tg_location: Path | str, backend_name: str
) -> None:
    with Store.open(tg_location) as writer, Store.open(tg_location) as reader:
        writer.upsert_order(make_order("C-1"))
        with writer.transaction():
            writer.upsert_order(make_order("C-2"))
            with Store.open(tg_location) as late_reader:
                assert [o.client_order_id for o in late_reader.orders()] == ["C-1"]
            assert [o.client_order_id for o in reader.orders()] == ["C-1"]
            assert reader.get_order("C-2") is None

        assert [o.client_order_id for o in reader.orders()] == ["C-1", "C-2"]


def test_a_second_writer_that_cannot_get_the_lock_gets_a_database_write_error(
    tg_location: Path | str, backend_name: str
) -> None:
    """SQLite locks the file at the first write; PostgreSQL the row the other writes."""
    refused = {
        "sqlite": "could not write order C-1 to orders.*locked; another tg may be writing; try again",
        "postgresql": "could not write order C-1 to orders.*lock timeout.*; another tg may be writing; try again",
    }
    with Store.open(tg_location) as writer, Store.open(tg_location, busy_timeout=0) as impatient:
        with writer.transaction():
            writer.upsert_order(make_order("C-1"))
            with pytest.raises(DatabaseWriteError, match=refused[backend_name]):
                impatient.upsert_order(make_order("C-1", price=Decimal("1")))

        impatient.upsert_order(make_order("C-2"))
        assert [o.client_order_id for o in writer.orders()] == ["C-1", "C-2"]
        assert [o.price for o in writer.orders()] == [Decimal("45000"), Decimal("45000")]
