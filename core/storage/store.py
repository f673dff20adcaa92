"""tg's store: runs, orders, fills, positions and what the agents said, in SQLite (a
file, the default) or PostgreSQL (a server many processes and machines share). All of
tg's queries live here, once, in SQLAlchemy Core; core.storage.backends holds the little
the two databases differ in, core.storage.schema the tables.

Every write that fails raises DatabaseWriteError, every read that fails StorageError:
no driver error leaves this module.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from core.domain.enums import OrderStatus, PositionStatus
from core.domain.errors import DatabaseWriteError, InputError, StorageError
from core.domain.models import Fill, ModelDecision, Order, Position
from core.domain.ownership import OrderNamespace
from core.domain.serialize import to_jsonable
from core.storage import schema
from core.storage.backends import Backend, another_programs, backend_for
from core.storage.schema import (
    AGENT_OUTPUTS,
    ALERTS,
    CONFLICTS,
    FILLS,
    HOLDINGS,
    INSERTION_ORDERED,
    LEASES,
    META,
    MODEL_VOTES,
    NAMESPACES,
    ORDERS,
    POSITIONS,
    RUN_RESULTS,
    RUNS,
    SCHEMA_VERSION,
    InsertionOrder,
)

_MAX_LIMIT = 2**63 - 1
"""The largest LIMIT SQL takes (a 64-bit integer): a larger one asks for every row anyway."""

WriteGuard = Callable[[str], None]
"""Called with a table's name before each write to it; raising refuses the write."""

RUN_STARTED = "running"
RUN_INTERRUPTED = "interrupted"
RUN_FAILED = "failed"


@dataclass(frozen=True)
class HoldingBaseline:
    """What the account held of `asset` outside tg as measured at `as_of` (tg's clock; a
    measure that finds it unchanged is not written again), and how much each foreign
    order the exchange then showed had filled: later foreign fills move the foreign
    holding on from it."""

    asset: str
    foreign: Decimal
    as_of: float
    foreign_filled: dict[str, Decimal] = field(default_factory=dict)
    surplus: Decimal = Decimal(0)
    """A surplus nothing explained, and since when (tg's clock): taken into the foreign
    holding once it has stood for a while."""
    surplus_since: float | None = None

    def unchanged_in(self, stored: HoldingBaseline) -> bool:
        """Whether storing this baseline over `stored` would change nothing but when it
        was measured (amounts compared digit for digit, as stored): a reconcile that
        measures the same holding again need not write it."""
        return _holding_record(self) | {"as_of": None} == _holding_record(stored) | {"as_of": None}


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


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's own words on one line, without SQLAlchemy's statement dump."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return " ".join(str(cause).split())


def _write_advice(exc: SQLAlchemyError) -> str:
    """What to do about a refused write, where the driver's words say (a lock, a full disk)."""
    reason = _reason(exc).lower()
    if "locked" in reason or "lock timeout" in reason:
        return "; another tg may be writing; try again"
    if "full" in reason or "no space" in reason:
        return "; free some space on its disk"
    return ""


def _cause(exc: SQLAlchemyError) -> BaseException:
    return exc.orig if isinstance(exc, DBAPIError) and isinstance(exc.orig, BaseException) else exc


class Store:
    """One connection to tg's database.

    `transaction()` nests with SAVEPOINTs: an inner block that raises is undone on its
    own and the outer transaction goes on if the caller catches the error; only the
    outermost block commits. Every write method is atomic, so a failed write leaves
    nothing behind: one of several statements runs in such a block, one of a single
    statement is atomic by itself (see `_write`). Outside a transaction each statement
    commits on its own, so a reader never holds a snapshot that hides what other
    processes wrote since.
    """

    def __init__(self, backend: Backend, conn: Connection, write_guard: WriteGuard | None, busy_timeout: float) -> None:
        self._backend = backend
        self._conn = conn
        self._write_guard = write_guard
        self._busy_timeout = busy_timeout
        self._depth = 0
        self._install_id: str | None = None
        self.location = backend.location
        """Where the database is, fit to show: a path, or a URL without its password."""

    @classmethod
    def open(
        cls,
        location: Path | str,
        *,
        write_guard: WriteGuard | None = None,
        busy_timeout: float = 30.0,
        create: bool = True,
        scratch: bool = False,
    ) -> Store:
        """Open (creating it if needed) the database at `location` (a SQLite path or a
        postgresql:// URL) and bring its schema up to date.

        `busy_timeout` is how many seconds a write waits for another process's lock.
        With `create=False` (commands that only read) a missing SQLite file is answered
        by an empty database in memory, so looking leaves no file behind. With
        `scratch` a SQLite file is a throwaway one (a simulated run's): its writes are
        not synced to disk, so a crash of the machine may lose or damage it; never for
        a database anyone keeps.
        """
        backend = backend_for(location, create=create, scratch=scratch)
        engine = backend.engine(busy_timeout)
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise StorageError(
                f"cannot open database {backend.location}: {_reason(exc)}; {backend.open_advice}"
            ) from _cause(exc)
        store = cls(backend, conn, write_guard, busy_timeout)
        try:
            backend.wait_at_most(conn, busy_timeout)
            store._migrate()
        except (StorageError, InputError):
            store.close()
            raise
        except SQLAlchemyError as exc:
            store.close()
            raise StorageError(
                f"cannot open database {backend.location}: {_reason(exc)}; if it is not a tg database, move it aside"
            ) from _cause(exc)
        return store

    def close(self) -> None:
        """Close the connection; the engine, which pools none, is kept for the next Store
        on this database (core.storage.backends)."""
        with suppress(SQLAlchemyError):
            self._conn.close()

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
        self._wait_at_most(min(seconds, self._busy_timeout))
        try:
            yield
        finally:
            self._wait_at_most(self._busy_timeout)

    def _wait_at_most(self, seconds: float) -> None:
        with suppress(SQLAlchemyError):
            self._backend.wait_at_most(self._conn, seconds)

    def _migrate(self) -> None:
        """Create a new database, or apply the upgrades an older one lacks; the write lock
        is taken only when something is due."""
        version = self._backend.schema_version(self._conn)
        if version < SCHEMA_VERSION:
            with self.transaction():
                self._backend.lock_schema(self._conn)
                version = self._backend.schema_version(self._conn)  # another tg may have migrated meanwhile
                if version < SCHEMA_VERSION:
                    if version == 0:
                        self._refuse_another_programs()
                        schema.create(self._conn)
                    else:
                        for upgrade in schema.UPGRADES[version - 1 :]:
                            upgrade(self._conn)
                    self._backend.set_schema_version(self._conn, SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise StorageError(f"database {self.location} was written by a newer tg (schema {version}); upgrade tg")

    def _refuse_another_programs(self) -> None:
        """A table of tg's name in a database without tg's schema is another program's (a
        SQLite file with any table is refused before it is opened: SQLiteBackend.engine);
        a PostgreSQL database's other tables may share it with tg."""
        present = sa.inspect(self._conn).get_table_names()
        clashing = [t for t in present if t in schema.METADATA.tables or not self._backend.holds_other_programs_tables]
        if clashing:
            raise another_programs(self.location, clashing)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (BEGIN IMMEDIATE on SQLite), rolled back on any exception
        (which is re-raised); inside another one, a SAVEPOINT."""
        if self._depth:
            savepoint = f"tg_savepoint_{self._depth}"
            self._control(f"SAVEPOINT {savepoint}", "start a nested transaction", "nothing of it was stored")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                with suppress(SQLAlchemyError):  # the error in hand says more than a failed rollback
                    self._conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {savepoint}")
                    self._conn.exec_driver_sql(f"RELEASE SAVEPOINT {savepoint}")
                raise
            self._depth -= 1
            self._control(f"RELEASE SAVEPOINT {savepoint}", "end a nested transaction", "nothing of it was stored")
            return
        self._control(self._backend.begin, "start a write transaction", "another tg may be writing; try again")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._roll_back()
            raise
        self._control("COMMIT", "commit", "nothing of the transaction was stored")
        self._depth = 0

    def _roll_back(self) -> None:
        self._depth = 0
        with suppress(SQLAlchemyError):  # the error in hand says more than a failed rollback
            self._conn.exec_driver_sql("ROLLBACK")
        self._recover()

    def _recover(self) -> None:
        """After a lost connection SQLAlchemy wants its transaction ended before it
        reconnects: the next statement then opens a new connection."""
        if self._conn.invalidated:
            with suppress(SQLAlchemyError):
                self._conn.rollback()

    def _control(self, statement: str, what: str, advice: str) -> None:
        try:
            self._conn.exec_driver_sql(statement)
        except SQLAlchemyError as exc:
            self._roll_back()
            raise DatabaseWriteError(f"could not {what} on {self.location}: {_reason(exc)}; {advice}") from _cause(exc)

    @contextmanager
    def _writing(self, table: sa.Table, what: str) -> Iterator[Connection]:
        """One guarded, atomic write of several statements to `table`; `what` names it
        in the error."""
        with self.transaction():
            self._guard(table, what)
            try:
                yield self._conn
            except SQLAlchemyError as exc:
                raise DatabaseWriteError(
                    f"could not write {what} to {table.name} in {self.location}: {_reason(exc)}{_write_advice(exc)}"
                ) from _cause(exc)

    def _guard(self, table: sa.Table, what: str) -> None:
        if self._write_guard is not None:
            try:
                self._write_guard(table.name)
            except Exception as exc:
                raise DatabaseWriteError(f"could not write {what} to {table.name}: {exc}") from exc

    def _write(self, table: sa.Table, what: str, statement: sa.Executable, params: dict[str, Any]) -> bool:
        """One guarded write in one statement; True if it returned a row (RETURNING).

        A statement is atomic by itself: outside a transaction it commits on its own, and
        the BEGIN and COMMIT of one around it would only cost two more statements. Inside
        one it needs a SAVEPOINT of its own only on a backend where a failed statement
        spoils the whole transaction (PostgreSQL); SQLite undoes the failed statement
        alone, and the transaction goes on.
        """
        if self._depth and not self._backend.failed_statement_undone_alone:
            with self._writing(table, what) as conn:
                return _returned_a_row(conn.execute(statement, params))
        self._guard(table, what)
        try:
            return _returned_a_row(self._conn.execute(statement, params))
        except SQLAlchemyError as exc:
            if self._depth == 0:
                self._recover()
            raise DatabaseWriteError(
                f"could not write {what} to {table.name} in {self.location}: {_reason(exc)}{_write_advice(exc)}"
            ) from _cause(exc)

    def _upsert(self, table: sa.Table, what: str, row: dict[str, Any]) -> None:
        """Insert `row`, or replace the columns it gives of the row with its primary key."""
        self._write(table, what, _upsert(self._backend.insert, table, tuple(row)), row)

    def _insert_new(self, table: sa.Table, what: str, row: dict[str, Any]) -> bool:
        """Insert `row` unless its primary key is stored already (then False)."""
        return self._write(table, what, _insert_new(self._backend.insert, table), row)

    def _read(
        self, table: sa.Table, statement: sa.Executable, params: dict[str, Any] | None = None
    ) -> sa.CursorResult[*tuple[Any, ...]]:
        """Run a read of `table`; a failure is a StorageError."""
        try:
            return self._conn.execute(statement, params)
        except SQLAlchemyError as exc:
            if self._depth == 0:
                self._recover()
            raise StorageError(f"could not read {table.name} from {self.location}: {_reason(exc)}") from _cause(exc)

    def _rows(
        self,
        table: sa.Table,
        where: dict[str, Any] | None = None,
        *,
        order_by: tuple[str, ...] = (),
        among: tuple[str, Sequence[Any]] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The rows whose `where` columns equal their values and whose `among` column is
        one of its values, ordered by `order_by` then by when they were first written."""
        where = where or {}
        statement = _select(
            table,
            tuple(where),
            order_by=order_by,
            among=among[0] if among else None,
            newest_first=newest_first,
            limited=limit is not None,
        )
        params = {
            **where,
            **({"among": list(among[1])} if among else {}),
            **({"limit": min(limit, _MAX_LIMIT)} if limit is not None else {}),
        }
        return [dict(row) for row in self._read(table, statement, params).mappings()]

    # ownership

    @property
    def install_id(self) -> str:
        """This database's namespace of client order ids (see core.domain.ownership)."""
        if self._install_id is None:  # minted once, when the database was made: read once
            rows = self._rows(META, {"key": "install_id"})
            if not rows:
                raise StorageError(f"{self.location} has no install id; it was not created by tg")
            self._install_id = rows[0]["value"]
        return self._install_id

    def namespace(self) -> OrderNamespace:
        adopted = [row["install_id"] for row in self._rows(NAMESPACES, order_by=("adopted_at",))]
        return OrderNamespace.of(self.install_id, adopted)

    def adopt_namespace(self, install_id: str, *, at: float) -> bool:
        """Own the orders of another install id from now on; False if already owned."""
        if install_id == self.install_id:
            return False
        return self._insert_new(NAMESPACES, f"namespace {install_id}", {"install_id": install_id, "adopted_at": at})

    def holding_baselines(self) -> dict[str, HoldingBaseline]:
        """Every asset's baseline, by asset: one read for a whole reconcile pass."""
        return {row["asset"]: _baseline(row) for row in self._rows(HOLDINGS)}

    def set_holding_baseline(self, baseline: HoldingBaseline) -> None:
        self._upsert(HOLDINGS, f"the holding baseline of {baseline.asset}", _holding_record(baseline))

    def clear_holding_baselines(self) -> None:
        """Forget what the account held outside tg: the next reconcile measures it anew."""
        self._write(HOLDINGS, "the holding baselines", _CLEAR_HOLDINGS, {})

    # leases

    def lease(self, name: str) -> LeaseRecord | None:
        rows = self._rows(LEASES, {"name": name})
        return LeaseRecord(**rows[0]) if rows else None

    def claim_lease(self, claim: LeaseRecord, *, replacing: str | None) -> bool:
        """Write `claim` if the lease is free or its holder's token is `replacing` (the
        claimant itself, or a holder found expired or dead), in one statement that the
        database decides on the row as committed: of two processes claiming at once,
        on one machine or two, exactly one wins."""
        statement = _claim(self._backend.insert, replacing is not None)
        params = asdict(claim) if replacing is None else {**asdict(claim), "replacing": replacing}
        return self._write(LEASES, f"the lease {claim.name}", statement, params)

    def release_lease(self, name: str, token: str) -> None:
        self._write(LEASES, f"the lease {name}", _RELEASE, {"lease": name, "holder": token})

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
        self._write(
            RUNS,
            f"run {run_id}",
            _INSERT_RUN,
            {
                "run_id": run_id,
                "kind": kind,
                "symbol": symbol,
                "status": RUN_STARTED,
                "started_at": started_at,
                "finished_at": None,
                "params": _json(params),
                "summary": _json({}),
            },
        )

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        finished_at: float,
        summary: dict[str, Any],
        results: Mapping[int, dict[str, Any]] | None = None,
    ) -> None:
        """End the run; `results` are parts it finished that record_result may not have
        kept (its write was cut short), stored with the end unless they are there already."""
        with self._writing(RUNS, f"the end of run {run_id}") as conn:
            updated = conn.execute(
                _FINISH_RUN,
                {"run": run_id, "status": str(status), "finished_at": finished_at, "summary": _json(summary)},
            )
            if updated.first() is None:
                raise DatabaseWriteError(f"cannot finish run {run_id}: {self.location} has no such run")
            for part, result in (results or {}).items():
                conn.execute(
                    _insert_new(self._backend.insert, RUN_RESULTS),
                    {"run_id": run_id, "part": part, "result": _json(result)},
                )

    def record_progress(self, run_id: str, summary: dict[str, Any]) -> None:
        """What a running run has finished so far, kept should it never reach its end."""
        self._write(RUNS, f"the progress of run {run_id}", _UPDATE_RUN, {"run": run_id, "summary": _json(summary)})

    def record_result(self, run_id: str, part: int, result: dict[str, Any], summary: dict[str, Any]) -> None:
        """One finished part of a running run (a simulate run's run `part`) as a row of
        its own, and the run's summary (its totals so far), together: the cost is the
        same at the 10,000th part as at the first, where a summary listing every result
        grows with them."""
        with self._writing(RUN_RESULTS, f"result {part} of run {run_id}") as conn:
            conn.execute(_INSERT_RESULT, {"run_id": run_id, "part": part, "result": _json(result)})
            conn.execute(_UPDATE_RUN, {"run": run_id, "summary": _json(summary)})

    def run_results(self, run_id: str) -> list[dict[str, Any]]:
        """The results record_result kept of the run, by part."""
        rows = self._rows(RUN_RESULTS, {"run_id": run_id}, order_by=("part",))
        return [json.loads(row["result"]) for row in rows]

    def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """Newest first. Each with its summary as written: a run's results are run_results'."""
        return [_run(row) for row in self._rows(RUNS, order_by=("started_at",), newest_first=True, limit=limit)]

    def runs_of_kind(self, kind: str) -> list[RunRecord]:
        """Every run of `kind` (simulate, replay, run, trade), oldest first."""
        return [_run(row) for row in self._rows(RUNS, {"kind": kind}, order_by=("started_at",))]

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or the one run whose id starts with it.

        Raises InputError when the prefix fits several runs: guessing one could show the
        wrong run.
        """
        if not run_id:
            return None
        rows = self._rows(RUNS, {"run_id": run_id})
        if not rows:
            found = self._read(RUNS, _RUNS_STARTING, {"prefix": run_id, "length": len(run_id)})
            rows = [dict(row) for row in found.mappings()]
        if len(rows) > 1:
            raise InputError(f"{run_id!r} starts more than one run id; give more of it")
        return _run(rows[0]) if rows else None

    # orders

    def add_order(self, order: Order) -> None:
        """Store a new order; a client_order_id already stored is refused (DatabaseWriteError)."""
        self._write(ORDERS, f"order {order.client_order_id}", _INSERT_ORDER, order_record(order))

    def upsert_order(self, order: Order) -> None:
        """Store the order, replacing the row with its client_order_id if there is one."""
        self._upsert(ORDERS, f"order {order.client_order_id}", order_record(order))

    def get_order(self, client_order_id: str) -> Order | None:
        rows = self._rows(ORDERS, {"client_order_id": client_order_id})
        return order_from_record(rows[0]) if rows else None

    def get_order_by_external_id(self, txid: str) -> Order | None:
        rows = self._rows(ORDERS, {"external_id": txid})
        return order_from_record(rows[0]) if rows else None

    def traded_symbols(self) -> set[str]:
        """Every pair tg has placed an order on, settled or not."""
        return {symbol for (symbol,) in self._read(ORDERS, _TRADED_SYMBOLS)}

    def orders(
        self,
        *,
        run_id: str | None = None,
        status: Iterable[OrderStatus] | None = None,
        position_id: str | None = None,
    ) -> list[Order]:
        """Oldest first."""
        among = ("status", [s.value for s in status]) if status is not None else None
        rows = self._rows(ORDERS, _given(run_id=run_id, position_id=position_id), order_by=("created_at",), among=among)
        return [order_from_record(row) for row in rows]

    def orders_named(self, txids: Iterable[str] = (), client_order_ids: Iterable[str] = ()) -> list[Order]:
        """The stored orders with any of these txids or client order ids, each once, in
        the order they were first written: one statement for up to 500 of each."""
        txids, client_order_ids = list(txids), list(client_order_ids)
        found: dict[str, Order] = {}
        for start in range(0, max(len(txids), len(client_order_ids)), 500):
            params = {"txids": txids[start : start + 500], "client_order_ids": client_order_ids[start : start + 500]}
            for row in self._read(ORDERS, _ORDERS_NAMED, params).mappings():
                found.setdefault(row["client_order_id"], order_from_record(dict(row)))
        return list(found.values())

    def orders_in_play(self) -> list[Order]:
        """The orders whose record may still change, oldest first: not final on the
        exchange, belonging to an open position, or filled without being linked to a
        position (an entry whose position was never opened, an exit of one). Settled
        orders of closed positions are final: reconciling never needs to ask the
        exchange about them again."""
        return [order_from_record(dict(row)) for row in self._read(ORDERS, _ORDERS_IN_PLAY).mappings()]

    # fills

    def add_fill(self, fill: Fill, *, run_id: str | None) -> bool:
        """Store the fill; False if its trade_id is already stored, so re-reading trades is harmless."""
        return self._insert_new(
            FILLS, f"fill {fill.trade_id}", {**_FILLS.dump_python(fill, mode="json"), "run_id": run_id}
        )

    def fills(self, *, order_external_id: str | None = None, run_id: str | None = None) -> list[Fill]:
        """Oldest first."""
        where = _given(order_external_id=order_external_id, run_id=run_id)
        return [_FILLS.validate_python(row) for row in self._rows(FILLS, where, order_by=("time",))]

    # positions

    def upsert_position(self, position: Position) -> None:
        self._upsert(POSITIONS, f"position {position.id}", position_record(position))

    def get_position(self, position_id: str) -> Position | None:
        rows = self._rows(POSITIONS, {"id": position_id})
        return position_from_record(rows[0]) if rows else None

    def positions(
        self,
        *,
        status: PositionStatus | None = None,
        run_id: str | None = None,
        symbol: str | None = None,
    ) -> list[Position]:
        """Oldest first."""
        where = _given(status=status.value if status else None, run_id=run_id, symbol=symbol)
        rows = self._rows(POSITIONS, where, order_by=("opened_at",))
        return [position_from_record(row) for row in rows]

    def realized_pnls(self) -> list[tuple[float | None, Decimal]]:
        """(closed_at, realized P&L) of each closed position that has one, oldest first:
        what the risk engine reads of the history, at every trade, without building
        every position ever closed."""
        return [(closed_at, pnl) for closed_at, pnl in self._read(POSITIONS, _REALIZED_PNLS)]

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
        if not orders:  # one statement, atomic by itself
            self.upsert_position(position)
            return
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
        self._write(
            AGENT_OUTPUTS,
            f"the {agent} output of run {run_id}",
            _INSERT_AGENT_OUTPUT,
            {"run_id": run_id, "agent": agent, "symbol": symbol, "payload": _json(payload), "created_at": created_at},
        )

    def agent_outputs(self, run_id: str) -> list[dict[str, Any]]:
        """Oldest first; each dict has id, run_id, agent, symbol, payload (decoded) and created_at."""
        return [
            {**row, "payload": json.loads(row["payload"])}
            for row in self._rows(AGENT_OUTPUTS, {"run_id": run_id}, order_by=("id",))
        ]

    def add_votes(self, run_id: str, *, symbol: str, decisions: Sequence[ModelDecision], created_at: float) -> None:
        rows = [
            {**_VOTES.dump_python(d, mode="json"), "run_id": run_id, "symbol": symbol, "created_at": created_at}
            for d in decisions
        ]
        with self._writing(MODEL_VOTES, f"the model votes of run {run_id}") as conn:  # a statement a row
            if rows:
                conn.execute(_INSERT_VOTE, rows)

    def votes(self, run_id: str) -> list[ModelDecision]:
        """In the order they were cast."""
        rows = self._rows(MODEL_VOTES, {"run_id": run_id}, order_by=("id",))
        return [_VOTES.validate_python(row) for row in rows]

    def add_alert(self, run_id: str | None, *, level: str, message: str, created_at: float) -> None:
        self._write(
            ALERTS,
            f"a {level} alert",
            _INSERT_ALERT,
            {"run_id": run_id, "level": str(level), "message": message, "created_at": created_at},
        )

    def alerts(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Oldest first; each dict has id, run_id, level, message and created_at."""
        return self._rows(ALERTS, _given(run_id=run_id), order_by=("created_at", "id"))

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
        self._write(
            CONFLICTS,
            f"a {conflict_type} conflict on {symbol}",
            _INSERT_CONFLICT,
            {
                "run_id": run_id,
                "symbol": symbol,
                "conflict_type": conflict_type,
                "resolution_action": resolution_action,
                "reasoning": reasoning,
                "confidence": confidence,
                "payload": _json(payload),
                "timestamp": timestamp,
            },
        )

    def conflicts(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Oldest first; each dict holds the row's columns, payload decoded."""
        rows = self._rows(CONFLICTS, _given(symbol=symbol), order_by=("timestamp", "id"))
        return [{**row, "payload": json.loads(row["payload"])} for row in rows]


# The statements, built once per process (a table's or a dialect's), the values bound as
# parameters at each call: building a statement around its values costs more than running
# it, and SQLAlchemy's compiled cache knows a statement by its shape.

Insert = Callable[[sa.Table], Any]
"""A backend's INSERT that takes ON CONFLICT clauses (Backend.insert)."""


@functools.cache
def _select(
    table: sa.Table,
    equal: tuple[str, ...],
    *,
    order_by: tuple[str, ...],
    among: str | None,
    newest_first: bool,
    limited: bool,
) -> sa.Select[Any]:
    """The rows of `table` whose `equal` columns equal the parameters of their names and
    whose `among` column is one of the parameter "among"'s (at most "limit" of them if
    `limited`), ordered by `order_by`, rows that tie in the order they were first written."""
    tie_break: list[sa.ColumnElement[Any]] = (
        [InsertionOrder()] if table in INSERTION_ORDERED else list(table.primary_key)
    )
    order = [*(table.c[name] for name in order_by), *tie_break]
    query = sa.select(table).where(*(table.c[name] == sa.bindparam(name) for name in equal))
    if among is not None:
        query = query.where(table.c[among].in_(sa.bindparam("among", expanding=True)))
    query = query.order_by(*(column.desc() for column in order) if newest_first else order)
    return query.limit(sa.bindparam("limit", type_=sa.Integer)) if limited else query


@functools.cache
def _upsert(insert: Insert, table: sa.Table, columns: tuple[str, ...]) -> sa.Executable:
    """Insert the row, or replace the `columns` it gives of the row with its primary key."""
    keys = [column.name for column in table.primary_key]
    statement = insert(table)
    changes = {name: statement.excluded[name] for name in columns if name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=changes)


@functools.cache
def _insert_new(insert: Insert, table: sa.Table) -> sa.Executable:
    """Insert the row unless its primary key is stored already; returns the key if inserted."""
    return insert(table).on_conflict_do_nothing().returning(*table.primary_key)


@functools.cache
def _claim(insert: Insert, replacing: bool) -> sa.Executable:
    """Write a lease's claim if it is free, or (`replacing`) held by the token "replacing"."""
    statement = insert(LEASES)
    return statement.on_conflict_do_update(
        index_elements=[LEASES.c.name],
        set_={name: statement.excluded[name] for name in ("token", "host", "pid", "expires_at")},
        where=LEASES.c.token == sa.bindparam("replacing") if replacing else sa.false(),
    ).returning(LEASES.c.name)


_INSERT_RUN = sa.insert(RUNS)
_FINISH_RUN = sa.update(RUNS).where(RUNS.c.run_id == sa.bindparam("run")).returning(RUNS.c.run_id)
_UPDATE_RUN = sa.update(RUNS).where(RUNS.c.run_id == sa.bindparam("run"))
_INSERT_RESULT = sa.insert(RUN_RESULTS)
_RUNS_STARTING = (
    sa.select(RUNS)
    .where(sa.func.substr(RUNS.c.run_id, 1, sa.bindparam("length", type_=sa.Integer)) == sa.bindparam("prefix"))
    .order_by(InsertionOrder())
    .limit(2)
)
_INSERT_ORDER = sa.insert(ORDERS)
_TRADED_SYMBOLS = sa.select(ORDERS.c.symbol).distinct()
_ORDERS_NAMED = (
    sa.select(ORDERS)
    .where(
        sa.or_(
            ORDERS.c.external_id.in_(sa.bindparam("txids", expanding=True)),
            ORDERS.c.client_order_id.in_(sa.bindparam("client_order_ids", expanding=True)),
        )
    )
    .order_by(InsertionOrder())
)
_ORDERS_IN_PLAY = (
    sa.select(ORDERS)
    .where(
        sa.or_(
            # each status its own parameter: a list would be one "expanding" parameter,
            # spliced into the statement's text again at every execution
            ORDERS.c.status.in_([sa.literal(s.value, ORDERS.c.status.type) for s in OrderStatus if not s.is_final]),
            ORDERS.c.position_id.in_(sa.select(POSITIONS.c.id).where(POSITIONS.c.status == PositionStatus.OPEN.value)),
            sa.and_(ORDERS.c.position_id.is_(None), sa.cast(ORDERS.c.filled_volume, sa.Float) > 0),
        )
    )
    .order_by(ORDERS.c.created_at, InsertionOrder())
)
_REALIZED_PNLS = (
    sa.select(POSITIONS.c.closed_at, POSITIONS.c.realized_pnl)
    .where(POSITIONS.c.status == PositionStatus.CLOSED.value, POSITIONS.c.realized_pnl.is_not(None))
    .order_by(POSITIONS.c.closed_at, InsertionOrder())
)
_CLEAR_HOLDINGS = sa.delete(HOLDINGS)
_RELEASE = sa.delete(LEASES).where(LEASES.c.name == sa.bindparam("lease"), LEASES.c.token == sa.bindparam("holder"))
_INSERT_AGENT_OUTPUT = sa.insert(AGENT_OUTPUTS)
_INSERT_VOTE = sa.insert(MODEL_VOTES)
_INSERT_ALERT = sa.insert(ALERTS)
_INSERT_CONFLICT = sa.insert(CONFLICTS)


def _returned_a_row(result: sa.CursorResult[Any]) -> bool:
    return result.returns_rows and result.first() is not None


def _given(**columns: object) -> dict[str, object]:
    """The filters given; None means no filter."""
    return {column: value for column, value in columns.items() if value is not None}


def _json(value: dict[str, Any]) -> str:
    return json.dumps(to_jsonable(value))


def _holding_record(baseline: HoldingBaseline) -> dict[str, Any]:
    return {
        "asset": baseline.asset,
        "foreign": str(baseline.foreign),
        "as_of": baseline.as_of,
        "foreign_filled": json.dumps({t: str(v) for t, v in baseline.foreign_filled.items()}),
        "surplus": str(baseline.surplus),
        "surplus_since": baseline.surplus_since,
    }


def _baseline(row: dict[str, Any]) -> HoldingBaseline:
    filled = {txid: Decimal(v) for txid, v in json.loads(row["foreign_filled"]).items()}
    return HoldingBaseline(
        row["asset"],
        row["foreign"],
        row["as_of"],
        filled,
        row["surplus"] or Decimal(0),
        row["surplus_since"],
    )


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
