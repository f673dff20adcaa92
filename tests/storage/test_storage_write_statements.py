"""What a write sends: one statement a write outside a transaction, no SAVEPOINT of its
own inside one where a failed statement is undone alone (SQLite), and either way a
failed write leaves nothing behind while the transaction around it goes on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from core.domain.errors import DatabaseWriteError
from core.storage.store import HoldingBaseline, Store
from tests.storage.storage_builders import make_order, make_position, protection_for


@contextmanager
def statements_of(store: Store) -> Iterator[list[str]]:
    """The first word of each statement the store's connection runs in the block."""
    sent: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement.split()[0].upper())

    sa.event.listen(store._conn, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        sa.event.remove(store._conn, "before_cursor_execute", note)


def test_a_write_outside_a_transaction_is_one_statement(store: Store) -> None:
    with statements_of(store) as sent:
        store.upsert_order(make_order("C-1"))
        store.add_alert(None, level="warning", message="m", created_at=1.0)

    assert sent == ["INSERT", "INSERT"]
    assert [o.client_order_id for o in store.orders()] == ["C-1"]


def test_a_write_inside_a_transaction_takes_a_savepoint_only_where_a_failure_spoils_it(
    store: Store, backend_name: str
) -> None:
    with store.transaction(), statements_of(store) as sent:
        store.upsert_order(make_order("C-1"))

    expected = {"sqlite": ["INSERT"], "postgresql": ["SAVEPOINT", "INSERT", "RELEASE"]}
    assert sent[: len(expected[backend_name])] == expected[backend_name]


def test_a_position_and_its_orders_are_one_transaction_without_savepoints_on_sqlite(
    store: Store, backend_name: str
) -> None:
    position = make_position()
    with statements_of(store) as sent:
        store.record_protected_position(position, protection_for(position))

    if backend_name == "sqlite":
        assert sent == ["BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT"]
    assert len(store.orders(position_id=position.id)) == 2

    position.size = position.size / 2
    with statements_of(store) as sent:
        store.record_protected_position(position, [])  # the position alone: one statement
    assert sent == ["INSERT"]
    assert store.get_position(position.id) == position


def test_a_failed_write_inside_a_transaction_is_undone_alone_and_the_transaction_goes_on(store: Store) -> None:
    with store.transaction():
        store.add_order(make_order("C-1"))
        with pytest.raises(DatabaseWriteError, match="order C-1 to orders"):
            store.add_order(make_order("C-1", symbol="XRP/USDT"))
        with pytest.raises(DatabaseWriteError, match="order C-3 to orders"):
            store.upsert_order(make_order("C-3", position_id="P-missing"))
        store.add_order(make_order("C-2"))

    assert [(o.client_order_id, o.symbol) for o in store.orders()] == [("C-1", "BTC/USDT"), ("C-2", "BTC/USDT")]


def test_a_baseline_measured_again_alike_is_unchanged_digit_for_digit() -> None:
    stored = HoldingBaseline("XXBT", Decimal("0.50"), 10.0, {"TX-1": Decimal("0.25")})

    assert HoldingBaseline("XXBT", Decimal("0.50"), 99.0, {"TX-1": Decimal("0.25")}).unchanged_in(stored)
    assert not HoldingBaseline("XXBT", Decimal("0.5"), 99.0, {"TX-1": Decimal("0.25")}).unchanged_in(stored)
    assert not HoldingBaseline("XXBT", Decimal("0.50"), 99.0, {"TX-1": Decimal("0.3")}).unchanged_in(stored)
    assert not HoldingBaseline("XXBT", Decimal("0.50"), 99.0, {}, Decimal("0.1"), 98.0).unchanged_in(stored)
