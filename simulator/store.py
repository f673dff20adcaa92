"""The exchange's state saved in its own SQLite file, so that consecutive processes (one
tg command after another) trade on the same exchange: balances, orders, trades, nonces,
the id serial and the time matched up to.

The state but for its orders and trades is one JSON document in one row; each order
and each trade is a JSON row of its own (Decimals are stored as strings). A save
writes only what may have changed since the file was last written: the orders not
final there (a settled order never changes again) and the trades it lacks (a trade
never changes), so saving costs what the process did, not the account's history.
The price paths are not stored: they are a function of the seed and the origin,
which are.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import sqlite_utils
from pydantic import TypeAdapter, ValidationError

from simulator.exceptions import SandboxStateError
from simulator.models import ExchangeState, Order, Trade

SCHEMA_VERSION = 2
"""1: the whole state, orders and trades too, in the one document (still read)."""
_TABLE = "exchange_state"
_ORDERS_TABLE = "exchange_orders"
_TRADES_TABLE = "exchange_trades"
_STATE = TypeAdapter(ExchangeState)
_ORDER = TypeAdapter(Order)
_TRADE = TypeAdapter(Trade)
_ORDERS = TypeAdapter(list[Order])
_TRADES = TypeAdapter(list[Trade])


def save_state(path: Path, state: ExchangeState) -> None:
    """Write `state` to `path` in one transaction: a crash mid-write leaves the state
    saved before."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(path)
    try:
        with db.conn:
            _create_tables(db.conn)
            core = dataclasses.replace(state, orders={}, trades={})
            db.conn.execute(
                f"insert into {_TABLE} (id, schema_version, state) values (1, ?, ?)"
                " on conflict(id) do update set schema_version = excluded.schema_version, state = excluded.state",
                (SCHEMA_VERSION, _STATE.dump_json(core).decode()),
            )
            _save_orders(db.conn, state)
            _save_trades(db.conn, state)
    finally:
        db.close()


def _create_tables(conn: sqlite3.Connection) -> None:
    conn.execute(f"create table if not exists {_TABLE} (id integer primary key, schema_version integer, state text)")
    conn.execute(
        f"create table if not exists {_ORDERS_TABLE} (txid text primary key, final integer not null, body text not null)"
    )
    conn.execute(f"create table if not exists {_TRADES_TABLE} (id text primary key, body text not null)")


def _save_orders(conn: sqlite3.Connection, state: ExchangeState) -> None:
    stored = dict(conn.execute(f"select txid, final from {_ORDERS_TABLE}").fetchall())
    gone = [(txid,) for txid in stored if txid not in state.orders]  # a reset cleared them
    conn.executemany(f"delete from {_ORDERS_TABLE} where txid = ?", gone)
    # rows keep their rowid on update, so the table's order is the order they were placed in
    conn.executemany(
        f"insert into {_ORDERS_TABLE} (txid, final, body) values (?, ?, ?)"
        " on conflict(txid) do update set final = excluded.final, body = excluded.body",
        [
            (order.txid, int(not order.is_live), _ORDER.dump_json(order).decode())
            for order in state.orders.values()
            if not stored.get(order.txid)
        ],
    )


def _save_trades(conn: sqlite3.Connection, state: ExchangeState) -> None:
    stored = {trade_id for (trade_id,) in conn.execute(f"select id from {_TRADES_TABLE}")}
    conn.executemany(f"delete from {_TRADES_TABLE} where id = ?", [(i,) for i in stored if i not in state.trades])
    conn.executemany(
        f"insert into {_TRADES_TABLE} (id, body) values (?, ?)",
        [(t.id, _TRADE.dump_json(t).decode()) for t in state.trades.values() if t.id not in stored],
    )


def load_state(path: Path) -> ExchangeState | None:
    """The saved state, or None when nothing was saved at `path` yet."""
    if not path.exists():
        return None
    db = sqlite_utils.Database(path)
    try:
        if _TABLE not in db.table_names():
            return None
        rows = list(db.table(_TABLE).rows_where("id = 1"))
        if not rows:
            return None
        version = rows[0]["schema_version"]
        if version not in (1, SCHEMA_VERSION):
            raise SandboxStateError(
                f"{path} holds sandbox state of schema {version}, this version "
                f"reads {SCHEMA_VERSION}; reset the sandbox to start over"
            )
        orders = trades = "[]"
        if version == SCHEMA_VERSION:
            orders = _json_array(db.conn, f"select body from {_ORDERS_TABLE} order by rowid")
            trades = _json_array(db.conn, f"select body from {_TRADES_TABLE} order by rowid")
    except sqlite3.DatabaseError as exc:
        raise SandboxStateError(
            f"{path} is not a sandbox state database ({exc}); delete it or point the sandbox at another file"
        ) from exc
    finally:
        db.close()
    try:
        state = _STATE.validate_json(rows[0]["state"])
        if version == SCHEMA_VERSION:
            state.orders = {order.txid: order for order in _ORDERS.validate_json(orders)}
            state.trades = {trade.id: trade for trade in _TRADES.validate_json(trades)}
    except ValidationError as exc:
        raise SandboxStateError(
            f"the sandbox state in {path} is damaged ({exc.error_count()} errors); reset the sandbox to start over"
        ) from exc
    return state


def _json_array(conn: sqlite3.Connection, query: str) -> str:
    """The rows' JSON bodies as one JSON array, validated in one call."""
    return "[" + ",".join(body for (body,) in conn.execute(query)) + "]"
