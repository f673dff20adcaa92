"""The sandbox's state file is written incrementally (simulator.store): what is read
back is always the state that was saved, whatever was settled, placed, reset or
saved before, and files of the older schemas still open."""

from __future__ import annotations

import dataclasses
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import DEFAULT_ACCOUNT, Exchange
from simulator.models import ExchangeState, Order, OrderSpec, OrderType, Side, Trade
from simulator.pairs import PAIRS
from simulator.store import StateFile
from tests.simulator.state_files import read_back
from tests.simulator.state_files import save as save_state

_STATE = TypeAdapter(ExchangeState)


def place(exchange: Exchange, ordertype: OrderType, side: Side = Side.BUY, price: Decimal | None = None) -> str:
    spec = OrderSpec("XBTUSDT", side, ordertype, Decimal("0.01"), price=price)
    order = exchange.add_order(DEFAULT_ACCOUNT, spec)
    assert order is not None
    return order.txid


def same(path: Path, exchange: Exchange) -> None:
    loaded = read_back(path)
    assert _STATE.dump_python(loaded) == _STATE.dump_python(exchange.state)
    assert list(loaded.orders) == list(exchange.state.orders)  # in the order they were placed


def test_what_is_read_back_is_what_was_saved_save_after_save(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    clock = VirtualClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock, seed=3)
    exchange.create_api_key(DEFAULT_ACCOUNT)
    price = exchange.price(PAIRS["XBTUSDT"])
    resting = place(exchange, OrderType.LIMIT, price=(price * Decimal("0.999")).quantize(Decimal("0.1")))
    far = place(exchange, OrderType.LIMIT, price=(price / 2).quantize(Decimal("0.1")))
    place(exchange, OrderType.MARKET)
    assert exchange.state.orders[resting].is_live and exchange.state.orders[far].is_live
    save_state(path, exchange.state)
    same(path, exchange)

    exchange.cancel_order(DEFAULT_ACCOUNT, txid=far)  # was live when saved: written again
    clock.advance(3 * 86_400)  # the resting buy fills as the market moves
    exchange.sync()
    place(exchange, OrderType.MARKET, Side.SELL)
    save_state(path, exchange.state)
    same(path, exchange)
    assert exchange.state.orders[far].status.value == "canceled"
    assert not exchange.state.orders[resting].is_live  # settled after the first save, saved settled

    exchange.reset()  # orders and trades gone: gone from the file too
    place(exchange, OrderType.MARKET)
    save_state(path, exchange.state)
    same(path, exchange)
    assert len(exchange.state.orders) == 1 and len(exchange.state.trades) == 1


def test_a_file_of_the_one_document_schema_still_opens_and_is_saved_anew(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    exchange = Exchange.create(VirtualClock(SANDBOX_EPOCH), seed=3)
    exchange.create_api_key(DEFAULT_ACCOUNT)
    place(exchange, OrderType.MARKET)
    with sqlite3.connect(path) as db:
        db.execute("create table exchange_state (id integer primary key, schema_version integer, state text)")
        db.execute("insert into exchange_state values (1, 1, ?)", (_STATE.dump_json(exchange.state).decode(),))
    same(path, exchange)
    save_state(path, exchange.state)
    same(path, exchange)
    with sqlite3.connect(path) as db:
        assert db.execute("select schema_version from exchange_state").fetchone() == (3,)
        assert db.execute("select count(*) from orders").fetchone() == (1,)


def row_per_order_file(path: Path) -> Exchange:
    """An exchange with a filled and a resting order, saved at `path` in schema 2."""
    clock = VirtualClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock, seed=3)
    exchange.create_api_key(DEFAULT_ACCOUNT)
    price = exchange.price(PAIRS["XBTUSDT"])
    place(exchange, OrderType.MARKET)
    place(exchange, OrderType.LIMIT, price=(price / 2).quantize(Decimal("0.1")))
    core = dataclasses.replace(exchange.state, orders={}, trades={})  # schema 2 kept the ledger in the document
    with sqlite3.connect(path) as db:
        db.execute("create table exchange_state (id integer primary key, schema_version integer, state text)")
        db.execute("create table exchange_orders (txid text primary key, final integer not null, body text not null)")
        db.execute("create table exchange_trades (id text primary key, body text not null)")
        db.execute("insert into exchange_state values (1, 2, ?)", (_STATE.dump_json(core).decode(),))
        for order in exchange.state.orders.values():
            body = TypeAdapter(Order).dump_json(order).decode()
            db.execute("insert into exchange_orders values (?, ?, ?)", (order.txid, int(not order.is_live), body))
        for trade in exchange.state.trades.values():
            db.execute(
                "insert into exchange_trades values (?, ?)", (trade.id, TypeAdapter(Trade).dump_json(trade).decode())
            )
    return exchange


def test_a_file_of_the_row_per_order_schema_still_opens_and_is_saved_anew(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    exchange = row_per_order_file(path)
    same(path, exchange)
    with sqlite3.connect(path) as db:
        assert db.execute("select schema_version from exchange_state").fetchone() == (3,)
        assert db.execute("select count(*) from orders where final = 0").fetchone() == (1,)
        assert db.execute("select count(*) from ledger").fetchone()[0] == len(exchange.state.ledger) > 2
        tables = {name for (name,) in db.execute("select name from sqlite_master where type = 'table'")}
        assert not tables & {"exchange_orders", "exchange_trades"}


def test_an_upgrade_that_fails_while_writing_leaves_the_older_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sandbox.db"
    exchange = row_per_order_file(path)

    def disk_full(self: StateFile, db: sqlite3.Connection, state: ExchangeState) -> None:
        db.execute("create table orders (txid text primary key)")  # the new schema half made
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(StateFile, "_write", disk_full)
        with pytest.raises(sqlite3.OperationalError):
            read_back(path)
    with sqlite3.connect(path) as db:  # the drops and the half-made schema rolled back with it
        assert db.execute("select schema_version from exchange_state").fetchone() == (2,)
        assert db.execute("select count(*) from exchange_orders").fetchone() == (2,)
        assert db.execute("select count(*) from exchange_trades").fetchone()[0] >= 1
        tables = {name for (name,) in db.execute("select name from sqlite_master where type = 'table'")}
        assert "orders" not in tables
    same(path, exchange)  # and it upgrades once the disk has room
