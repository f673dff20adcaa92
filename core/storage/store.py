"""The SQLite store: runs, orders, fills, positions and what the agents said. All of tg's
SQL lives here.

Decimals are stored as TEXT (exact digits, read back as Decimal), enums as their values,
timestamps as REAL epoch seconds, payloads as JSON. Every write that fails raises
DatabaseWriteError, every read that fails StorageError: no sqlite3 error leaves this
module.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from pydantic import TypeAdapter
from sqlite_utils import Database
from sqlite_utils.db import NotFoundError, Table

from core.domain.errors import DatabaseWriteError, InputError, StorageError
from core.domain.models import (
    Fill,
    ModelDecision,
    Order,
    OrderStatus,
    Position,
    PositionStatus,
)
from core.domain.ownership import OrderNamespace, new_install_id
from core.domain.serialize import to_jsonable

WriteGuard = Callable[[str], None]
"""Called with a table's name before each write to it; raising refuses the write."""

RUN_STARTED = "running"
RUN_INTERRUPTED = "interrupted"
RUN_FAILED = "failed"


def _create_trading_tables(db: Database) -> None:
    """Schema 1: what tg did on the exchange."""
    db.table("runs").create(
        {
            "run_id": str,
            "kind": str,
            "symbol": str,
            "status": str,
            "started_at": float,
            "finished_at": float,
            "params": str,
            "summary": str,
        },
        pk="run_id",
        not_null=["kind", "status", "started_at", "params", "summary"],
    )
    db.table("runs").create_index(["started_at"])
    db.table("positions").create(
        {
            "id": str,
            "run_id": str,
            "symbol": str,
            "side": str,
            "size": str,
            "entry_price": str,
            "stop_loss": str,
            "take_profit": str,
            "status": str,
            "leverage": str,
            "opened_at": float,
            "closed_at": float,
            "exit_price": str,
            "realized_pnl": str,
            "fees": str,
        },
        pk="id",
        not_null=["symbol", "side", "size", "entry_price", "status", "leverage", "opened_at", "fees"],
    )
    db.table("positions").create_index(["status"])
    db.table("positions").create_index(["run_id"])
    db.table("orders").create(
        {
            "client_order_id": str,
            "external_id": str,
            "run_id": str,
            "position_id": str,
            "symbol": str,
            "side": str,
            "order_type": str,
            "role": str,
            "volume": str,
            "price": str,
            "status": str,
            "filled_volume": str,
            "avg_fill_price": str,
            "fee": str,
            "created_at": float,
            "updated_at": float,
        },
        pk="client_order_id",
        foreign_keys=[("position_id", "positions", "id")],
        not_null=[
            "symbol",
            "side",
            "order_type",
            "role",
            "volume",
            "status",
            "filled_volume",
            "fee",
            "created_at",
            "updated_at",
        ],
    )
    db.table("orders").create_index(["external_id"], unique=True)
    db.table("orders").create_index(["run_id"])
    db.table("orders").create_index(["status"])
    db.table("orders").create_index(["position_id"])
    db.table("fills").create(
        {
            "trade_id": str,
            "order_external_id": str,
            "symbol": str,
            "side": str,
            "price": str,
            "volume": str,
            "fee": str,
            "time": float,
            "run_id": str,
        },
        pk="trade_id",
        not_null=["order_external_id", "symbol", "side", "price", "volume", "fee", "time"],
    )
    db.table("fills").create_index(["order_external_id"])
    db.table("fills").create_index(["run_id"])


def _create_agent_record_tables(db: Database) -> None:
    """Schema 2: what the agents, the models and the coordinator said along the way."""
    db.table("agent_outputs").create(
        {"id": int, "run_id": str, "agent": str, "symbol": str, "payload": str, "created_at": float},
        pk="id",
        not_null=["run_id", "agent", "symbol", "payload", "created_at"],
    )
    db.table("agent_outputs").create_index(["run_id"])
    db.table("model_votes").create(
        {
            "id": int,
            "run_id": str,
            "symbol": str,
            "model": str,
            "action": str,
            "confidence": float,
            "entry": str,
            "stop_loss": str,
            "take_profit": str,
            "reasoning": str,
            "valid": int,
            "created_at": float,
        },
        pk="id",
        not_null=["run_id", "symbol", "model", "action", "confidence", "reasoning", "valid", "created_at"],
    )
    db.table("model_votes").create_index(["run_id"])
    db.table("alerts").create(
        {"id": int, "run_id": str, "level": str, "message": str, "created_at": float},
        pk="id",
        not_null=["level", "message", "created_at"],
    )
    db.table("alerts").create_index(["run_id"])
    db.table("coordinator_conflicts").create(
        {
            "id": int,
            "run_id": str,
            "symbol": str,
            "conflict_type": str,
            "resolution_action": str,
            "reasoning": str,
            "confidence": float,
            "payload": str,
            "timestamp": float,
        },
        pk="id",
        not_null=[
            "symbol",
            "conflict_type",
            "resolution_action",
            "reasoning",
            "confidence",
            "payload",
            "timestamp",
        ],
    )
    db.table("coordinator_conflicts").create_index(["symbol"])


def _create_ownership_tables(db: Database) -> None:
    """Schema 3: whose orders are whose. `meta` holds this database's install id (the
    namespace of the client order ids it mints), `namespaces` the ones it adopted,
    `holdings` what of each asset the account held outside tg when last measured, and
    `leases` which process owns the critical section of an account's asset. Orders gain
    the stop and target levels an entry was approved with."""
    db.table("meta").create({"key": str, "value": str}, pk="key", not_null=["value"])
    db.table("meta").insert({"key": "install_id", "value": new_install_id()})
    db.table("namespaces").create({"install_id": str, "adopted_at": float}, pk="install_id", not_null=["adopted_at"])
    db.table("holdings").create(
        {"asset": str, "foreign": str, "as_of": float, "foreign_filled": str, "surplus": str, "surplus_since": float},
        pk="asset",
        not_null=["foreign", "as_of", "foreign_filled"],
    )
    db.table("orders").add_column("stop_level", str)
    db.table("orders").add_column("target_level", str)
    db.table("leases").create(
        {"name": str, "token": str, "host": str, "pid": int, "expires_at": float},
        pk="name",
        not_null=["token", "host", "pid", "expires_at"],
    )


MIGRATIONS: Final[tuple[Callable[[Database], None], ...]] = (
    _create_trading_tables,
    _create_agent_record_tables,
    _create_ownership_tables,
)
"""Applied in order; migration i takes a database from schema i to i + 1. Append only."""

SCHEMA_VERSION: Final = len(MIGRATIONS)


@dataclass(frozen=True)
class HoldingBaseline:
    """What the account held of `asset` outside tg at `as_of` (tg's clock), and how much
    each foreign order the exchange then showed had filled: later foreign fills move the
    foreign holding on from it."""

    asset: str
    foreign: Decimal
    as_of: float
    foreign_filled: dict[str, Decimal] = field(default_factory=dict)
    surplus: Decimal = Decimal(0)
    """A surplus nothing explained, and since when (tg's clock): taken into the foreign
    holding once it has stood for a while."""
    surplus_since: float | None = None


@dataclass(frozen=True)
class LeaseRecord:
    """Who holds a lease: the process (`host`, `pid`) and its `token`, until `expires_at`
    (wall-clock epoch seconds)."""

    name: str
    token: str
    host: str
    pid: int
    expires_at: float


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    kind: str
    symbol: str | None
    status: str
    started_at: float
    finished_at: float | None
    params: dict[str, Any]
    summary: dict[str, Any]


class Store:
    """One connection to tg's database file.

    `transaction()` nests with SAVEPOINTs: an inner block that raises is undone on its
    own and the outer transaction goes on if the caller catches the error; only the
    outermost block commits. Every write method runs in such a block, so a failed write
    leaves nothing behind.
    """

    def __init__(self, db: Database, path: Path, write_guard: WriteGuard | None, busy_timeout: float = 30.0) -> None:
        self._db = db
        self.path = path
        self._write_guard = write_guard
        self._busy_timeout = busy_timeout

    @classmethod
    def open(
        cls, path: Path, *, write_guard: WriteGuard | None = None, busy_timeout: float = 30.0, create: bool = True
    ) -> Store:
        """Open (creating it if needed) the database at `path` and bring its schema up to date.

        `busy_timeout` is how many seconds a write waits for another process's write lock.
        With `create=False` (commands that only read) a missing database is answered by an
        empty one in memory, so looking leaves no file behind.
        """
        if not create and not path.exists():
            return cls._connect(path, ":memory:", write_guard, busy_timeout)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the directory of database {path}: {exc.strerror}") from exc
        return cls._connect(path, path, write_guard, busy_timeout)

    @classmethod
    def _connect(cls, path: Path, target: Path | str, write_guard: WriteGuard | None, busy_timeout: float) -> Store:
        try:
            conn = sqlite3.connect(target, timeout=busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}; check the path is a writable file") from exc
        try:
            store = cls(Database(conn, execute_plugins=False), path, write_guard, busy_timeout)
            store._db.enable_wal()
            store._db.execute("PRAGMA foreign_keys = ON")
            store._migrate()
        except StorageError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise StorageError(
                f"cannot open database {path}: {exc}; if it is not a tg database, move it aside"
            ) from exc
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator[None]:
        """Writes inside the block wait at most `seconds` for another process's lock:
        for code that must not be held up by storage (it spools what is refused)."""
        self._set_busy_timeout(min(seconds, self._busy_timeout))
        try:
            yield
        finally:
            self._set_busy_timeout(self._busy_timeout)

    def _set_busy_timeout(self, seconds: float) -> None:
        with suppress(sqlite3.Error):
            self._db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def _schema_version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        return version

    def _migrate(self) -> None:
        """Apply the migrations the file lacks; the write lock is taken only when some are due."""
        version = self._schema_version()
        if version < SCHEMA_VERSION:
            with self.transaction():
                version = self._schema_version()  # another tg may have migrated meanwhile
                if version < SCHEMA_VERSION:
                    for migration in MIGRATIONS[version:]:
                        migration(self._db)
                    self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if version > SCHEMA_VERSION:
            raise StorageError(f"database {self.path} was written by a newer tg (schema {version}); upgrade tg")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (which is re-raised).

        IMMEDIATE takes the write lock at the start, so a second writer waits out the busy
        timeout there instead of failing at its first write with a lock it cannot upgrade.
        """
        if self._db.conn.in_transaction:
            with self._db.atomic():
                yield
            return
        self._control("BEGIN IMMEDIATE", "start a write transaction", "another tg may be writing; try again")
        try:
            yield
        except BaseException:
            self._roll_back()
            raise
        self._control("COMMIT", "commit", "nothing of the transaction was stored")

    def _roll_back(self) -> None:
        if self._db.conn.in_transaction:
            with suppress(sqlite3.Error):  # the error in hand says more than a failed rollback
                self._db.conn.execute("ROLLBACK")

    def _control(self, statement: str, what: str, advice: str) -> None:
        try:
            self._db.conn.execute(statement)
        except sqlite3.Error as exc:
            self._roll_back()
            raise DatabaseWriteError(f"could not {what} on {self.path}: {exc}; {advice}") from exc

    @contextmanager
    def _writing(self, table: str, what: str) -> Iterator[Table]:
        """One guarded, atomic write to `table`; `what` names it in the error."""
        with self.transaction():
            if self._write_guard is not None:
                try:
                    self._write_guard(table)
                except Exception as exc:
                    raise DatabaseWriteError(f"could not write {what} to {table}: {exc}") from exc
            try:
                yield self._db.table(table)
            except sqlite3.Error as exc:
                raise DatabaseWriteError(f"could not write {what} to {table} in {self.path}: {exc}") from exc

    def _rows(
        self,
        table: str,
        where: Sequence[str] = (),
        args: Sequence[object] = (),
        *,
        order_by: str = "rowid",
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        try:
            return list(
                self._db.table(table).rows_where(
                    " and ".join(where) or None,
                    list(args),
                    order_by=order_by,
                    limit=limit,
                )
            )
        except sqlite3.Error as exc:
            raise StorageError(f"could not read {table} from {self.path}: {exc}") from exc

    # ownership

    @property
    def install_id(self) -> str:
        """This database's namespace of client order ids (see core.domain.ownership)."""
        rows = self._rows("meta", ["key = ?"], ["install_id"])
        if not rows:
            raise StorageError(f"{self.path} has no install id; it was not created by tg")
        value: str = rows[0]["value"]
        return value

    def namespace(self) -> OrderNamespace:
        adopted = [row["install_id"] for row in self._rows("namespaces")]
        return OrderNamespace.of(self.install_id, adopted)

    def adopt_namespace(self, install_id: str, *, at: float) -> bool:
        """Own the orders of another install id from now on; False if already owned."""
        if install_id == self.install_id:
            return False
        with self._writing("namespaces", f"namespace {install_id}") as table:
            if table.count_where("install_id = ?", [install_id]):
                return False
            table.insert({"install_id": install_id, "adopted_at": at})
        return True

    def holding_baseline(self, asset: str) -> HoldingBaseline | None:
        rows = self._rows("holdings", ["asset = ?"], [asset])
        if not rows:
            return None
        row = rows[0]
        filled = {txid: Decimal(v) for txid, v in json.loads(row["foreign_filled"]).items()}
        return HoldingBaseline(
            asset,
            Decimal(row["foreign"]),
            row["as_of"],
            filled,
            Decimal(row["surplus"] or 0),
            row["surplus_since"],
        )

    def set_holding_baseline(self, baseline: HoldingBaseline) -> None:
        with self._writing("holdings", f"the holding baseline of {baseline.asset}") as table:
            table.upsert(
                {
                    "asset": baseline.asset,
                    "foreign": str(baseline.foreign),
                    "as_of": baseline.as_of,
                    "foreign_filled": json.dumps({t: str(v) for t, v in baseline.foreign_filled.items()}),
                    "surplus": str(baseline.surplus),
                    "surplus_since": baseline.surplus_since,
                },
                pk="asset",
            )

    def clear_holding_baselines(self) -> None:
        """Forget what the account held outside tg: the next reconcile measures it anew."""
        with self._writing("holdings", "the holding baselines") as table:
            table.delete_where()

    # leases

    def lease(self, name: str) -> LeaseRecord | None:
        rows = self._rows("leases", ["name = ?"], [name])
        return LeaseRecord(**rows[0]) if rows else None

    def claim_lease(self, claim: LeaseRecord, *, replacing: str | None) -> bool:
        """Write `claim` if the lease is free or its holder's token is `replacing` (the
        claimant itself, or a holder found expired or dead), in one transaction: of two
        processes claiming at once, exactly one wins."""
        with self._writing("leases", f"the lease {claim.name}") as table:
            rows = list(table.rows_where("name = ?", [claim.name]))
            if rows and rows[0]["token"] != replacing:
                return False
            table.upsert(asdict(claim), pk="name")
        return True

    def release_lease(self, name: str, token: str) -> None:
        with self._writing("leases", f"the lease {name}") as table:
            table.delete_where("name = ? and token = ?", [name, token])

    # runs

    def start_run(
        self,
        run_id: str,
        *,
        kind: str,
        symbol: str | None,
        started_at: float,
        params: dict[str, Any],
    ) -> None:
        with self._writing("runs", f"run {run_id}") as table:
            table.insert(
                {
                    "run_id": run_id,
                    "kind": kind,
                    "symbol": symbol,
                    "status": RUN_STARTED,
                    "started_at": started_at,
                    "finished_at": None,
                    "params": _json(params),
                    "summary": _json({}),
                }
            )

    def finish_run(self, run_id: str, *, status: str, finished_at: float, summary: dict[str, Any]) -> None:
        with self._writing("runs", f"the end of run {run_id}") as table:
            try:
                table.update(run_id, {"status": str(status), "finished_at": finished_at, "summary": _json(summary)})
            except NotFoundError as exc:
                raise DatabaseWriteError(f"cannot finish run {run_id}: {self.path} has no such run") from exc

    def record_progress(self, run_id: str, summary: dict[str, Any]) -> None:
        """What a running run has finished so far, kept should it never reach its end."""
        with self._writing("runs", f"the progress of run {run_id}") as table:
            table.update(run_id, {"summary": _json(summary)})

    def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """Newest first."""
        rows = self._rows("runs", order_by="started_at desc, rowid desc", limit=limit)
        return [_run(row) for row in rows]

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or the one run whose id starts with it.

        Raises InputError when the prefix fits several runs: guessing one could show the
        wrong run.
        """
        if not run_id:
            return None
        rows = self._rows("runs", ["run_id = ?"], [run_id])
        if not rows:
            rows = self._rows("runs", ["substr(run_id, 1, ?) = ?"], [len(run_id), run_id], limit=2)
        if len(rows) > 1:
            raise InputError(f"{run_id!r} starts more than one run id; give more of it")
        return _run(rows[0]) if rows else None

    # orders

    def add_order(self, order: Order) -> None:
        """Store a new order; a client_order_id already stored is refused (DatabaseWriteError)."""
        with self._writing("orders", f"order {order.client_order_id}") as table:
            table.insert(order_record(order))

    def upsert_order(self, order: Order) -> None:
        """Store the order, replacing the row with its client_order_id if there is one."""
        with self._writing("orders", f"order {order.client_order_id}") as table:
            table.upsert(order_record(order), pk="client_order_id")

    def get_order(self, client_order_id: str) -> Order | None:
        rows = self._rows("orders", ["client_order_id = ?"], [client_order_id])
        return order_from_record(rows[0]) if rows else None

    def get_order_by_external_id(self, txid: str) -> Order | None:
        rows = self._rows("orders", ["external_id = ?"], [txid])
        return order_from_record(rows[0]) if rows else None

    def orders(
        self,
        *,
        run_id: str | None = None,
        status: Iterable[OrderStatus] | None = None,
        position_id: str | None = None,
    ) -> list[Order]:
        """Oldest first."""
        where, args = _equal_to(run_id=run_id, position_id=position_id)
        if status is not None:
            statuses = [s.value for s in status]
            where.append(f"status in ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        return [order_from_record(row) for row in self._rows("orders", where, args, order_by="created_at, rowid")]

    def orders_named(self, txids: Iterable[str] = (), client_order_ids: Iterable[str] = ()) -> list[Order]:
        """The stored orders with any of these txids or client order ids."""
        txids, client_order_ids = list(txids), list(client_order_ids)
        found: list[Order] = []
        for column, values in (("external_id", txids), ("client_order_id", client_order_ids)):
            for start in range(0, len(values), 500):
                chunk = values[start : start + 500]
                rows = self._rows("orders", [f"{column} in ({', '.join('?' * len(chunk))})"], chunk)
                found.extend(order_from_record(row) for row in rows)
        return found

    def orders_in_play(self) -> list[Order]:
        """The orders whose record may still change, oldest first: not final on the
        exchange, belonging to an open position, or filled without being linked to a
        position (an entry whose position was never opened, an exit of one). Settled orders of closed positions are final: reconciling never
        needs to ask the exchange about them again."""
        where = (
            "status in ('intent', 'pending', 'open', 'unknown')"
            " or position_id in (select id from positions where status = 'open')"
            " or (position_id is null and cast(filled_volume as real) > 0)"
        )
        return [order_from_record(row) for row in self._rows("orders", [f"({where})"], order_by="created_at, rowid")]

    # fills

    def add_fill(self, fill: Fill, *, run_id: str | None) -> bool:
        """Store the fill; False if its trade_id is already stored, so re-reading trades is harmless."""
        with self._writing("fills", f"fill {fill.trade_id}") as table:
            if table.count_where("trade_id = ?", [fill.trade_id]):
                return False
            table.insert({**_FILLS.dump_python(fill, mode="json"), "run_id": run_id})
        return True

    def fills(self, *, order_external_id: str | None = None, run_id: str | None = None) -> list[Fill]:
        """Oldest first."""
        where, args = _equal_to(order_external_id=order_external_id, run_id=run_id)
        return [_FILLS.validate_python(row) for row in self._rows("fills", where, args, order_by="time, rowid")]

    # positions

    def upsert_position(self, position: Position) -> None:
        with self._writing("positions", f"position {position.id}") as table:
            table.upsert(position_record(position), pk="id")

    def get_position(self, position_id: str) -> Position | None:
        rows = self._rows("positions", ["id = ?"], [position_id])
        return position_from_record(rows[0]) if rows else None

    def positions(
        self,
        *,
        status: PositionStatus | None = None,
        run_id: str | None = None,
        symbol: str | None = None,
    ) -> list[Position]:
        """Oldest first."""
        where, args = _equal_to(status=status.value if status else None, run_id=run_id, symbol=symbol)
        return [position_from_record(row) for row in self._rows("positions", where, args, order_by="opened_at, rowid")]

    def realized_pnls(self) -> list[tuple[float | None, Decimal]]:
        """(closed_at, realized P&L) of each closed position that has one, oldest first:
        what the risk engine reads of the history, at every trade, without building
        every position ever closed."""
        rows = self._db.execute(
            "select closed_at, realized_pnl from positions"
            " where status = 'closed' and realized_pnl is not null order by closed_at, rowid"
        ).fetchall()
        return [(closed_at, Decimal(pnl)) for closed_at, pnl in rows]

    def record_protected_position(self, position: Position, orders: Sequence[Order]) -> None:
        """Store the position and its orders (entry, stop-loss, take-profit) all or nothing.

        The order rows are linked to the position; an order that names another position
        is refused.
        """
        for order in orders:
            if order.position_id not in (None, position.id):
                raise DatabaseWriteError(
                    f"refusing to store position {position.id}: "
                    f"order {order.client_order_id} belongs to position {order.position_id}"
                )
        with self.transaction():
            self.upsert_position(position)
            for order in orders:
                self.upsert_order(replace(order, position_id=position.id))

    # agent records

    def add_agent_output(
        self,
        run_id: str,
        *,
        agent: str,
        symbol: str,
        payload: dict[str, Any],
        created_at: float,
    ) -> None:
        with self._writing("agent_outputs", f"the {agent} output of run {run_id}") as table:
            table.insert(
                {
                    "run_id": run_id,
                    "agent": agent,
                    "symbol": symbol,
                    "payload": _json(payload),
                    "created_at": created_at,
                }
            )

    def agent_outputs(self, run_id: str) -> list[dict[str, Any]]:
        """Oldest first; each dict has id, run_id, agent, symbol, payload (decoded) and created_at."""
        return [
            {**row, "payload": json.loads(row["payload"])}
            for row in self._rows("agent_outputs", ["run_id = ?"], [run_id], order_by="id")
        ]

    def add_votes(self, run_id: str, *, symbol: str, decisions: Sequence[ModelDecision], created_at: float) -> None:
        with self._writing("model_votes", f"the model votes of run {run_id}") as table:
            table.insert_all(
                {**_VOTES.dump_python(d, mode="json"), "run_id": run_id, "symbol": symbol, "created_at": created_at}
                for d in decisions
            )

    def votes(self, run_id: str) -> list[ModelDecision]:
        """In the order they were cast."""
        return [
            _VOTES.validate_python(row) for row in self._rows("model_votes", ["run_id = ?"], [run_id], order_by="id")
        ]

    def add_alert(self, run_id: str | None, *, level: str, message: str, created_at: float) -> None:
        with self._writing("alerts", f"a {level} alert") as table:
            table.insert({"run_id": run_id, "level": str(level), "message": message, "created_at": created_at})

    def alerts(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Oldest first; each dict has id, run_id, level, message and created_at."""
        return self._rows("alerts", *_equal_to(run_id=run_id), order_by="created_at, id")

    def add_conflict(
        self,
        run_id: str | None,
        *,
        symbol: str,
        conflict_type: str,
        resolution_action: str,
        reasoning: str,
        confidence: float,
        payload: dict[str, Any],
        timestamp: float,
    ) -> None:
        with self._writing("coordinator_conflicts", f"a {conflict_type} conflict on {symbol}") as table:
            table.insert(
                {
                    "run_id": run_id,
                    "symbol": symbol,
                    "conflict_type": conflict_type,
                    "resolution_action": resolution_action,
                    "reasoning": reasoning,
                    "confidence": confidence,
                    "payload": _json(payload),
                    "timestamp": timestamp,
                }
            )

    def conflicts(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Oldest first; each dict holds the row's columns, payload decoded."""
        return [
            {**row, "payload": json.loads(row["payload"])}
            for row in self._rows("coordinator_conflicts", *_equal_to(symbol=symbol), order_by="timestamp, id")
        ]


def _equal_to(**columns: object) -> tuple[list[str], list[object]]:
    """The where clauses of the filters given; None means no filter."""
    given = {column: value for column, value in columns.items() if value is not None}
    return [f"{column} = ?" for column in given], list(given.values())


def _json(value: dict[str, Any]) -> str:
    return json.dumps(to_jsonable(value))


def _run(row: dict[str, Any]) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        kind=row["kind"],
        symbol=row["symbol"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        params=json.loads(row["params"]),
        summary=json.loads(row["summary"]),
    )


_ORDERS = TypeAdapter(Order)
_POSITIONS = TypeAdapter(Position)
_FILLS = TypeAdapter(Fill)
_VOTES = TypeAdapter(ModelDecision)
"""Rows and domain objects convert through pydantic: money as exact Decimal text, enums
as their values, and a field added to a dataclass is stored without a mapper to edit."""


def order_record(order: Order) -> dict[str, Any]:
    """An order as its row: JSON-safe, so the pending-writes spool keeps the same form."""
    return _ORDERS.dump_python(order, mode="json")


def order_from_record(row: dict[str, Any]) -> Order:
    return _ORDERS.validate_python(row)


def position_record(position: Position) -> dict[str, Any]:
    return _POSITIONS.dump_python(position, mode="json")


def position_from_record(row: dict[str, Any]) -> Position:
    return _POSITIONS.validate_python(row)
