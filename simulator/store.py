"""The exchange's state saved in its own SQLite file, so that consecutive processes (one
tg command after another) trade on the same exchange: balances, orders, trades, ledger
entries, nonces, the id serial and the time matched up to.

The state but for its orders, trades and ledger entries is one JSON document in one
row; each order, trade and ledger entry is a JSON row of its own (Decimals are stored
as strings), with the columns its queries select by. Opening the file reads the
document and the live orders only: a settled order, a trade or a ledger entry never
changes again, so the file answers for them when a request asks (it is the exchange's
simulator.history.History), and opening costs what the live orders and balances cost,
not what the account's history does. A save writes only what may have changed since:
the document, the orders in memory (those live when the file was opened or placed
since, unless the file has them settled already), and the trades and entries in
memory (all new). The price paths are not stored: they are a function of the seed and
the origin, which are.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from simulator.exceptions import SandboxStateError
from simulator.history import ClosedQuery, LedgerQuery, TradeQuery, closed_time
from simulator.models import ExchangeState, LedgerEntry, Order, Trade

SCHEMA_VERSION = 3
"""1: the whole state in the one document; 2: orders and trades in rows of their own,
without the columns queries select by, the ledger in the document (both still read,
and rewritten as 3 when opened)."""
_TABLE = "exchange_state"
_OLD_ORDERS, _OLD_TRADES = "exchange_orders", "exchange_trades"
_ORDERS, _TRADES, _LEDGER = "orders", "trades", "ledger"
_SCHEMA = (
    f"create table if not exists {_TABLE} (id integer primary key, schema_version integer, state text)",
    f"""create table if not exists {_ORDERS} (txid text primary key, account text not null,
        final integer not null, opentm real not null, closetm real, listed real not null,
        userref integer, cl_ord_id text, body text not null)""",
    f"create index if not exists {_ORDERS}_closed on {_ORDERS} (account, final, listed)",
    f"create index if not exists {_ORDERS}_live on {_ORDERS} (final) where final = 0",
    f"""create table if not exists {_TRADES} (id text primary key, account text not null,
        time real not null, serial integer not null, body text not null)""",
    f"create index if not exists {_TRADES}_by_account on {_TRADES} (account, time, serial)",
    f"create index if not exists {_TRADES}_by_time on {_TRADES} (time)",
    f"""create table if not exists {_LEDGER} (id text primary key, account text not null,
        time real not null, asset text not null, type text not null, body text not null)""",
    f"create index if not exists {_LEDGER}_by_account on {_LEDGER} (account)",
)
T = TypeVar("T")


class _Shape(Generic[T]):
    """The TypeAdapter of one stored shape, built when first used rather than at import:
    each costs milliseconds of schema building, and a command meets a few of them only
    (a fresh sandbox reads no list back; most commands never read a single row)."""

    def __init__(self, shape: type[T]) -> None:
        self._shape = shape

    @cached_property
    def adapter(self) -> TypeAdapter[T]:
        return TypeAdapter(self._shape)


_STATE = _Shape(ExchangeState)
_ORDER = _Shape(Order)
_TRADE = _Shape(Trade)
_ENTRY = _Shape(LedgerEntry)
_ORDERS_LIST = _Shape(list[Order])
_TRADES_LIST = _Shape(list[Trade])
_ENTRIES_LIST = _Shape(list[LedgerEntry])


class StateFile:
    """The state file at `path`, through one connection (opened when first needed):
    the sandbox's only while its process holds the sandbox's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False)
        return self._conn

    def load(self) -> ExchangeState | None:
        """The saved state with its live orders (the file answers for the rest), or
        None when nothing was saved at the path yet."""
        if not self.path.exists():
            return None
        try:
            db = self._db()
            row = db.execute(f"select schema_version, state from {_TABLE} where id = 1").fetchone()
        except sqlite3.OperationalError as exc:
            if f"no such table: {_TABLE}" in str(exc):
                return None
            raise self._not_state(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise self._not_state(exc) from exc
        if row is None:
            return None
        version, document = row
        if version not in (1, 2, SCHEMA_VERSION):
            raise SandboxStateError(
                f"{self.path} holds sandbox state of schema {version}, this version "
                f"reads {SCHEMA_VERSION}; reset the sandbox to start over"
            )
        if version < SCHEMA_VERSION:
            self._upgrade(version, document)
            return self.load()
        state = self._parsed(_STATE, document)
        live = self._array(f"select body from {_ORDERS} where final = 0 order by rowid", ())
        state.orders = {order.txid: order for order in self._parsed(_ORDERS_LIST, live)}
        return state

    def _upgrade(self, version: int, document: str) -> None:
        """Read a file of an older schema whole and write it anew, in one transaction."""
        state = self._parsed(_STATE, document)
        if version == 2:
            orders = self._array(f"select body from {_OLD_ORDERS} order by rowid", ())
            trades = self._array(f"select body from {_OLD_TRADES} order by rowid", ())
            state.orders = {order.txid: order for order in self._parsed(_ORDERS_LIST, orders)}
            state.trades = {trade.id: trade for trade in self._parsed(_TRADES_LIST, trades)}
        with self._transaction() as db:
            db.execute(f"drop table if exists {_OLD_ORDERS}")
            db.execute(f"drop table if exists {_OLD_TRADES}")
            self._write(db, state)

    def save(self, state: ExchangeState) -> None:
        """Write `state` (as the exchange holds it in memory) in one transaction: a crash
        mid-write leaves the state saved before. A state reset since the file was saved
        (another history_id) leaves none of the file's past behind."""
        try:
            with self._transaction() as db:
                self._write(db, state)
        except sqlite3.DatabaseError as exc:
            raise self._not_state(exc) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection in one transaction, committed at the end, rolled back on an
        error. Begun here: sqlite3 begins one by itself before an insert or update only,
        so each `create` or `drop` before would commit alone (an upgrade interrupted
        after its drops would lose the rows it had not written yet), and a fresh file
        would be synced to disk once for each of its tables and indexes."""
        db = self._db()
        db.execute("begin")
        with db:
            yield db

    def _write(self, db: sqlite3.Connection, state: ExchangeState) -> None:
        for statement in _SCHEMA:
            db.execute(statement)
        saved = db.execute(f"select state from {_TABLE} where id = 1").fetchone()
        if saved is not None and json.loads(saved[0]).get("history_id") != state.history_id:
            for table in (_ORDERS, _TRADES, _LEDGER):
                db.execute(f"delete from {table}")
        core = dataclasses.replace(state, orders={}, trades={}, ledger={})
        db.execute(
            f"insert into {_TABLE} (id, schema_version, state) values (1, ?, ?)"
            " on conflict(id) do update set schema_version = excluded.schema_version, state = excluded.state",
            (SCHEMA_VERSION, _STATE.adapter.dump_json(core).decode()),
        )
        # a row keeps its rowid on update, so the table's order is the order they were placed in
        db.executemany(
            f"insert into {_ORDERS} (txid, account, final, opentm, closetm, listed, userref, cl_ord_id, body)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict(txid) do update set final = excluded.final,"
            " closetm = excluded.closetm, listed = excluded.listed, body = excluded.body"
            f" where {_ORDERS}.final = 0",
            [
                (
                    o.txid,
                    o.account,
                    int(not o.is_live),
                    o.opentm,
                    o.closetm,
                    closed_time(o),
                    o.spec.userref,
                    o.spec.cl_ord_id,
                    _ORDER.adapter.dump_json(o).decode(),
                )
                for o in state.orders.values()
            ],
        )
        db.executemany(
            f"insert into {_TRADES} (id, account, time, serial, body) values (?, ?, ?, ?, ?) on conflict do nothing",
            [(t.id, t.account, t.time, t.serial, _TRADE.adapter.dump_json(t).decode()) for t in state.trades.values()],
        )
        db.executemany(
            f"insert into {_LEDGER} (id, account, time, asset, type, body) values (?, ?, ?, ?, ?, ?)"
            " on conflict do nothing",
            [
                (e.id, e.account, e.time, e.asset, e.type.value, _ENTRY.adapter.dump_json(e).decode())
                for e in state.ledger.values()
            ],
        )

    # --- the history (simulator.history.History) -------------------------------------

    def order(self, txid: str) -> Order | None:
        return self._one(_ORDER, f"select body from {_ORDERS} where txid = ?", txid)

    def trade(self, trade_id: str) -> Trade | None:
        return self._one(_TRADE, f"select body from {_TRADES} where id = ?", trade_id)

    def ledger_entry(self, ledger_id: str) -> LedgerEntry | None:
        return self._one(_ENTRY, f"select body from {_LEDGER} where id = ?", ledger_id)

    def orders_of(self, account: str) -> list[Order]:
        return self._parsed(
            _ORDERS_LIST, self._array(f"select body from {_ORDERS} where account = ? order by rowid", (account,))
        )

    def closed_orders(self, account: str, query: ClosedQuery, limit: int) -> tuple[list[Order], int]:
        where = ["account = ?", "final = 1"]
        args: list[Any] = [account]
        if query.userref is not None:
            where.append("userref = ?")
            args.append(query.userref)
        if query.cl_ord_id is not None:
            where.append("cl_ord_id = ?")
            args.append(query.cl_ord_id)
        if query.start is not None or query.end is not None:
            columns = {"open": ("opentm",), "close": ("closetm",), "both": ("opentm", "closetm")}[query.closetime]
            windows = []
            for column in columns:
                window, bounds = _window(column, query.start, query.end)
                windows.append(window)
                args += bounds
            where.append("(" + " or ".join(windows) + ")")
        return self._page(_ORDERS_LIST, _ORDERS, where, args, "listed desc, rowid", limit)

    def trades(self, account: str, query: TradeQuery, limit: int) -> tuple[list[Trade], int]:
        where = ["account = ?"]
        args: list[Any] = [account]
        if query.start is not None or query.end is not None:
            window, bounds = _window("time", query.start, query.end)
            where.append(window)
            args += bounds
        return self._page(_TRADES_LIST, _TRADES, where, args, "time desc, serial desc, rowid", limit)

    def ledger(self, account: str, query: LedgerQuery, limit: int) -> tuple[list[LedgerEntry], int]:
        where = ["account = ?"]
        args: list[Any] = [account]
        if query.assets is not None:
            assets = list(query.assets)
            where.append(f"asset in ({', '.join('?' * len(assets))})")
            args += assets
        if query.type is not None:
            where.append("type = ?")
            args.append(query.type.value)
        if query.start is not None or query.end is not None:
            window, bounds = _window("time", query.start, query.end)
            where.append(window)
            args += bounds
        return self._page(_ENTRIES_LIST, _LEDGER, where, args, "rowid desc", limit)

    def trades_after(self, since: float) -> list[Trade]:
        return self._parsed(
            _TRADES_LIST, self._array(f"select body from {_TRADES} where time > ? order by rowid", (since,))
        )

    def _page(
        self, shape: _Shape[list[T]], table: str, where: list[str], args: list[Any], order: str, limit: int
    ) -> tuple[list[T], int]:
        condition = " and ".join(where)
        [(count,)] = self._rows(f"select count(*) from {table} where {condition}", args)
        if not count or limit <= 0:
            return [], count
        bodies = self._array(f"select body from {table} where {condition} order by {order} limit ?", [*args, limit])
        return self._parsed(shape, bodies), count

    def _one(self, shape: _Shape[T], query: str, key: str) -> T | None:
        rows = self._rows(query, (key,))
        return self._parsed(shape, rows[0][0]) if rows else None

    def _array(self, query: str, args: Sequence[Any]) -> str:
        """The rows' JSON bodies as one JSON array, validated in one call."""
        return "[" + ",".join(body for (body,) in self._rows(query, args)) + "]"

    def _rows(self, query: str, args: Sequence[Any]) -> list[Any]:
        try:
            return self._db().execute(query, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._not_state(exc) from exc

    def _parsed(self, shape: _Shape[T], text: str) -> T:
        try:
            return shape.adapter.validate_json(text)
        except ValidationError as exc:
            raise SandboxStateError(
                f"the sandbox state in {self.path} is damaged ({exc.error_count()} errors); "
                "reset the sandbox to start over"
            ) from exc

    def _not_state(self, exc: sqlite3.DatabaseError) -> SandboxStateError:
        return SandboxStateError(
            f"{self.path} is not a sandbox state database ({exc}); delete it or point the sandbox at another file"
        )


def _window(column: str, start: float | None, end: float | None) -> tuple[str, list[float]]:
    """simulator.history's windows in SQL: `start` exclusive, `end` inclusive."""
    parts, bounds = [f"{column} is not null"], []
    if start is not None:
        parts.append(f"{column} > ?")
        bounds.append(start)
    if end is not None:
        parts.append(f"{column} <= ?")
        bounds.append(end)
    return "(" + " and ".join(parts) + ")", bounds
