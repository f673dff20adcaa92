"""Opening the database: file, journal mode, schema versions and migrations."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from sqlite_utils import Database

from core.domain.errors import StorageError
from core.storage.store import MIGRATIONS, SCHEMA_VERSION, Store
from tests.storage.storage_builders import make_order

ALL_TABLES = {
    "runs",
    "orders",
    "fills",
    "positions",
    "agent_outputs",
    "model_votes",
    "alerts",
    "coordinator_conflicts",
    "meta",
    "namespaces",
    "holdings",
    "leases",
}


def inspect(path: Path) -> Database:
    return Database(sqlite3.connect(path), execute_plugins=False)


def schema_version(path: Path) -> int:
    with inspect(path) as db:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version


def test_open_creates_directories_wal_and_the_current_schema(db_path: Path) -> None:
    with Store.open(db_path) as store:
        assert store.path == db_path

    assert db_path.is_file()
    assert schema_version(db_path) == SCHEMA_VERSION == len(MIGRATIONS)
    with inspect(db_path) as db:
        assert db.journal_mode == "wal"
        assert set(db.table_names()) == ALL_TABLES
        assert {"idx_orders_run_id", "idx_orders_status", "idx_positions_status"} <= {
            index.name for table in ("orders", "positions") for index in db.table(table).indexes
        }
        assert [fk.other_table for fk in db.table("orders").foreign_keys] == ["positions"]


def test_reopening_keeps_the_data_and_the_schema(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.upsert_order(make_order())
    with Store.open(db_path) as store:
        assert store.get_order("C-1") == make_order()
    assert schema_version(db_path) == SCHEMA_VERSION


def test_a_version_1_database_is_migrated_and_keeps_its_rows(db_path: Path) -> None:
    db_path.parent.mkdir()
    old = inspect(db_path)
    MIGRATIONS[0](old)
    old.execute("PRAGMA user_version = 1")
    old.table("orders").insert(
        {
            "client_order_id": "C-OLD",
            "symbol": "BTC/USDT",
            "side": "buy",
            "order_type": "limit",
            "role": "entry",
            "volume": "0.5",
            "price": "40000.5",
            "status": "open",
            "filled_volume": "0",
            "fee": "0",
            "created_at": 1.0,
            "updated_at": 1.0,
        }
    )
    assert "alerts" not in old.table_names()
    old.close()

    with Store.open(db_path) as store:
        store.add_alert("R-1", level="HIGH", message="stop not placed", created_at=2.0)
        assert store.alerts("R-1")[0]["message"] == "stop not placed"
        kept = store.get_order("C-OLD")
    assert kept is not None and kept.price == Decimal("40000.5")
    assert schema_version(db_path) == SCHEMA_VERSION
    with inspect(db_path) as db:
        assert set(db.table_names()) == ALL_TABLES


def test_a_database_from_a_newer_tg_is_refused_untouched(db_path: Path) -> None:
    Store.open(db_path).close()
    with inspect(db_path) as newer:
        newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(StorageError) as caught:
        Store.open(db_path)

    assert str(caught.value) == (
        f"database {db_path} was written by a newer tg (schema {SCHEMA_VERSION + 1}); upgrade tg"
    )
    assert schema_version(db_path) == SCHEMA_VERSION + 1


def test_a_file_that_is_not_a_database_gives_a_one_line_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "tg.db"
    path.write_bytes(b"these are not the bytes of a SQLite database\n" * 50)

    with pytest.raises(StorageError) as caught:
        Store.open(path)

    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "not a database" in message
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def test_a_directory_in_place_of_the_file_gives_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "tg.db").mkdir()

    with pytest.raises(StorageError, match="cannot open database"):
        Store.open(tmp_path / "tg.db")


def test_a_closed_store_reads_as_a_storage_error(db_path: Path) -> None:
    with Store.open(db_path) as store:
        assert store.orders() == []

    with pytest.raises(StorageError, match="could not read orders"):
        store.orders()
