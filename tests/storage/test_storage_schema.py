"""Opening the database: the schema on each backend, versions and upgrades, and what
only a SQLite file can get wrong."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.domain.errors import InputError, StorageError
from core.storage.backends import backend_for
from core.storage.schema import SCHEMA_VERSION, UPGRADES
from core.storage.store import Store
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
    "run_results",
}

SCHEMA_1 = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, symbol TEXT, status TEXT NOT NULL,
    started_at REAL NOT NULL, finished_at REAL, params TEXT NOT NULL, summary TEXT NOT NULL);
CREATE INDEX idx_runs_started_at ON runs (started_at);
CREATE TABLE positions (id TEXT PRIMARY KEY, run_id TEXT, symbol TEXT NOT NULL, side TEXT NOT NULL,
    size TEXT NOT NULL, entry_price TEXT NOT NULL, stop_loss TEXT, take_profit TEXT, status TEXT NOT NULL,
    leverage TEXT NOT NULL, opened_at REAL NOT NULL, closed_at REAL, exit_price TEXT, realized_pnl TEXT,
    fees TEXT NOT NULL);
CREATE INDEX idx_positions_status ON positions (status);
CREATE INDEX idx_positions_run_id ON positions (run_id);
CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, external_id TEXT, run_id TEXT,
    position_id TEXT REFERENCES positions(id), symbol TEXT NOT NULL, side TEXT NOT NULL,
    order_type TEXT NOT NULL, role TEXT NOT NULL, volume TEXT NOT NULL, price TEXT, status TEXT NOT NULL,
    filled_volume TEXT NOT NULL, avg_fill_price TEXT, fee TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL);
CREATE UNIQUE INDEX idx_orders_external_id ON orders (external_id);
CREATE INDEX idx_orders_run_id ON orders (run_id);
CREATE INDEX idx_orders_status ON orders (status);
CREATE INDEX idx_orders_position_id ON orders (position_id);
CREATE TABLE fills (trade_id TEXT PRIMARY KEY, order_external_id TEXT NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, price TEXT NOT NULL, volume TEXT NOT NULL, fee TEXT NOT NULL, time REAL NOT NULL,
    run_id TEXT);
CREATE INDEX idx_fills_order_external_id ON fills (order_external_id);
CREATE INDEX idx_fills_run_id ON fills (run_id);
PRAGMA user_version = 1;
"""
"""The tables as the first tg wrote them to a file."""


def schema_version(location: Path | str) -> int:
    backend = backend_for(location)
    engine = backend.engine(busy_timeout=1)
    with engine.connect() as conn:
        version = backend.schema_version(conn)
    engine.dispose()
    return version


def set_schema_version(location: Path | str, version: int) -> None:
    backend = backend_for(location)
    engine = backend.engine(busy_timeout=1)
    with engine.connect() as conn:
        backend.set_schema_version(conn, version)
    engine.dispose()


def inspected(location: Path | str) -> sa.Inspector:
    return sa.inspect(backend_for(location).engine(busy_timeout=1))


def test_open_creates_the_current_schema(location: Path | str) -> None:
    Store.open(location).close()

    assert schema_version(location) == SCHEMA_VERSION == len(UPGRADES) + 1
    inspector = inspected(location)
    assert set(inspector.get_table_names()) == ALL_TABLES
    assert {"idx_orders_run_id", "idx_orders_status", "idx_orders_external_id"} <= {
        index["name"] for index in inspector.get_indexes("orders")
    }
    assert "idx_positions_status" in {index["name"] for index in inspector.get_indexes("positions")}
    assert [fk["referred_table"] for fk in inspector.get_foreign_keys("orders")] == ["positions"]


def test_postgres_keeps_money_as_numeric_and_times_as_timestamptz(postgres_location: str) -> None:
    with Store.open(postgres_location) as store:
        store.upsert_order(make_order(price=Decimal("45000.000000000001"), created_at=1_700_000_000.25))
        engine = backend_for(postgres_location).engine(busy_timeout=1)
        with engine.connect() as conn:
            price, created, zone = conn.execute(
                sa.text("SELECT price, created_at, pg_typeof(created_at)::text FROM orders")
            ).one()
        engine.dispose()

    assert price == Decimal("45000.000000000001")
    assert zone == "timestamp with time zone"
    assert created.utcoffset() is not None and created.timestamp() == 1_700_000_000.25


def test_reopening_keeps_the_data_and_the_schema(location: Path | str) -> None:
    with Store.open(location) as store:
        store.upsert_order(make_order())
        install_id = store.install_id
    with Store.open(location) as store:
        assert store.get_order("C-1") == make_order()
        assert store.install_id == install_id
    assert schema_version(location) == SCHEMA_VERSION


def test_processes_opening_a_new_database_at_once_create_it_once(location: Path | str) -> None:
    def open_one(_: int) -> str:
        with Store.open(location) as store:
            return store.install_id

    with ThreadPoolExecutor(4) as pool:
        install_ids = set(pool.map(open_one, range(4)))

    assert len(install_ids) == 1
    assert schema_version(location) == SCHEMA_VERSION


def test_a_database_from_a_newer_tg_is_refused_untouched(location: Path | str) -> None:
    Store.open(location).close()
    set_schema_version(location, SCHEMA_VERSION + 1)
    shown = backend_for(location).location

    with pytest.raises(StorageError) as caught:
        Store.open(location)

    assert str(caught.value) == (
        f"database {shown} was written by a newer tg (schema {SCHEMA_VERSION + 1}); upgrade tg"
    )
    assert schema_version(location) == SCHEMA_VERSION + 1


@pytest.mark.parametrize("table", ["orders", "customers"])
def test_another_programs_sqlite_database_is_refused_untouched(db_path: Path, table: str) -> None:
    """tg wrote its twelve tables into it, then failed reading its `orders` as tg's."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, customer TEXT)")
        conn.execute(f"INSERT INTO {table} (customer) VALUES ('alice')")
    before = db_path.read_bytes()

    with pytest.raises(
        InputError, match=rf"database {db_path} is not tg's: it holds tables tg did not make \({table}\)"
    ):
        Store.open(db_path)

    assert db_path.read_bytes() == before


def test_a_postgresql_database_shared_with_other_programs_takes_tg_beside_them_but_not_over_them(
    postgres_location: str,
) -> None:
    def execute(*statements: str) -> None:
        engine = backend_for(postgres_location).engine(busy_timeout=1)
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
            conn.commit()
        engine.dispose()

    execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    with Store.open(postgres_location) as store:
        assert store.orders() == []
    execute(*(f"DROP TABLE {table} CASCADE" for table in ALL_TABLES), "CREATE TABLE orders (id INTEGER PRIMARY KEY)")

    with pytest.raises(InputError, match=r"is not tg's: it holds tables tg did not make \(orders\)"):
        Store.open(postgres_location)


def test_a_closed_store_reads_as_a_storage_error(location: Path | str) -> None:
    with Store.open(location) as store:
        assert store.orders() == []

    with pytest.raises(StorageError, match="could not read orders"):
        store.orders()


def test_an_unreachable_server_is_one_storage_error_without_the_password(postgres_location: str) -> None:
    port = postgres_location.rsplit(":", 1)[1].split("/")[0]
    unreachable = postgres_location.replace(f":{port}/", ":1/").replace("tg@", "tg:s3cret@")

    with pytest.raises(StorageError) as caught:
        Store.open(unreachable)

    message = str(caught.value)
    assert message.startswith("cannot open database postgresql://tg:***@127.0.0.1:1/")
    assert "s3cret" not in message and "\n" not in message
    assert message.endswith("check the server runs and the URL's user, host, port and database name")


def test_a_malformed_server_url_is_bad_input_without_the_password() -> None:
    with pytest.raises(InputError) as caught:
        Store.open("postgresql://tg:s3cret@127.0.0.1:1:2/x")

    assert str(caught.value) == (
        "postgresql://tg:***@127.0.0.1:1:2/x is not a valid PostgreSQL URL: give postgresql://user@host:port/dbname"
    )


# SQLite only: the file


def test_open_creates_directories_and_a_wal_file(db_path: Path) -> None:
    with Store.open(db_path) as store:
        assert store.location == str(db_path)

    assert db_path.is_file()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_version_1_database_is_migrated_and_keeps_its_rows(db_path: Path) -> None:
    db_path.parent.mkdir()
    with sqlite3.connect(db_path) as old:
        old.executescript(SCHEMA_1)
        old.execute(
            "INSERT INTO orders (client_order_id, symbol, side, order_type, role, volume, price, status,"
            " filled_volume, fee, created_at, updated_at) VALUES"
            " ('C-OLD', 'BTC/USDT', 'buy', 'limit', 'entry', '0.5', '40000.5', 'open', '0', '0', 1.0, 1.0)"
        )
    old.close()

    with Store.open(db_path) as store:
        store.add_alert("R-1", level="HIGH", message="stop not placed", created_at=2.0)
        assert store.alerts("R-1")[0]["message"] == "stop not placed"
        kept = store.get_order("C-OLD")
        assert len(store.install_id) == 12
    assert kept is not None and kept.price == Decimal("40000.5") and kept.stop_level is None
    assert schema_version(db_path) == SCHEMA_VERSION
    assert set(inspected(db_path).get_table_names()) == ALL_TABLES


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


def test_a_kept_database_is_journaled_to_disk_and_only_a_scratch_one_is_not(tmp_path: Path) -> None:
    """WAL is a property of the file (it stays set); a scratch store's journal in memory is not."""
    for name, scratch in (("kept.db", False), ("scratch.db", True)):
        with Store.open(tmp_path / name, scratch=scratch) as store:
            store.upsert_order(make_order())
    with sqlite3.connect(tmp_path / "kept.db") as kept, sqlite3.connect(tmp_path / "scratch.db") as thrown:
        assert kept.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert thrown.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    with Store.open(tmp_path / "scratch.db") as store:  # what it holds reads back like any other
        assert len(store.orders()) == 1
