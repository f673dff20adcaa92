"""The two databases tg stores in: SQLite, a file on this machine (the default), and
PostgreSQL, a server that processes on many machines share (core.storage.postgres,
imported only for a postgresql:// URL: its dialect is a tenth of a second to import).

Store holds every query once, in SQLAlchemy Core; a Backend is only what the two
differ in: how a connection is made and set up, how a write transaction starts, where
the schema version is kept, what serialises two processes migrating at once, and how
long a write waits for another's lock.

A process keeps the engine of each database it opened lately (ENGINES_KEPT), and its
SQLite engines share one cache of compiled statements (SQLITE_COMPILED): a Store opening
a database, the same again or a new one, runs the statements the last one compiled. The
engines pool nothing (NullPool): keeping one holds no connection or file open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, Connection, Dialect, Engine
from sqlalchemy.engine.interfaces import Compiled
from sqlalchemy.pool import NullPool
from sqlalchemy.util import LRUCache

from core.domain.config import is_server_url
from core.domain.errors import InputError, StorageError

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

ENGINES_KEPT = 8
"""How many databases' engines a process keeps: a simulated run opens its database
twice, one after the other; a test or a long process a handful at a time."""


class DialectClassCache(MutableMapping[Any, Compiled]):
    """A cache of compiled statements for engines whose dialects are made alike (the
    `compiled_cache` execution option, SQLAlchemy's LRU cache underneath).

    SQLAlchemy keys a compiled statement by the dialect object that compiled it, and
    each engine has its own, so a cache given to several engines would still compile
    each statement once per engine: a simulated run's new database, all of them. Here
    the dialect's class stands for it, which is sound only for dialects made with the
    same arguments and learning nothing from the server they connect to: tg's SQLite
    engines (one sqlite3 library per process). A key of another shape is kept as given.
    """

    def __init__(self, size: int) -> None:
        self._compiled: LRUCache[Any, Compiled] = LRUCache(size)

    @staticmethod
    def _key(key: Any) -> Any:
        if isinstance(key, tuple) and key and isinstance(key[0], Dialect):
            return (type(key[0]), *key[1:])
        return key

    def __getitem__(self, key: Any) -> Compiled:
        return self._compiled[self._key(key)]

    def __setitem__(self, key: Any, value: Compiled) -> None:
        self._compiled[self._key(key)] = value

    def __delitem__(self, key: Any) -> None:
        del self._compiled[self._key(key)]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._compiled)

    def __len__(self) -> int:
        return len(self._compiled)


SQLITE_COMPILED = DialectClassCache(500)
"""The process's SQLite engines' compiled statements (500: SQLAlchemy's own default)."""


class Backend(Protocol):
    @property
    def location(self) -> str:
        """Where the database is, fit to show: a path, or a URL without its password."""

    @property
    def begin(self) -> str:
        """The statement that starts a write transaction."""

    @property
    def open_advice(self) -> str:
        """What to check when the database cannot be reached."""

    @property
    def holds_other_programs_tables(self) -> bool:
        """Whether tables tg did not make may stand beside tg's (a PostgreSQL database
        several programs share) rather than mark the database another program's (a
        SQLite file is one program's)."""

    @property
    def failed_statement_undone_alone(self) -> bool:
        """Whether a statement that fails inside a transaction is undone alone, the
        transaction going on (SQLite), rather than spoiling the whole transaction until
        it rolls back (PostgreSQL): there a write that may fail needs a SAVEPOINT."""

    def engine(self, busy_timeout: float) -> Engine: ...
    def wait_at_most(self, conn: Connection, seconds: float) -> None: ...
    def schema_version(self, conn: Connection) -> int: ...
    def set_schema_version(self, conn: Connection, version: int) -> None: ...
    def lock_schema(self, conn: Connection) -> None: ...
    @staticmethod
    def insert(table: sa.Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that takes ON CONFLICT clauses (one function per backend: statements
        built with it are kept per process, see core.storage.store)."""


@dataclass(frozen=True)
class SQLiteBackend:
    """A file: WAL so readers never wait for a writer, BEGIN IMMEDIATE so a second writer
    waits at the start of its transaction instead of failing at its first write."""

    path: Path
    in_memory: bool = False
    """An empty database in memory stands in for the missing file (see Store.open's `create`)."""
    scratch: bool = False
    """A throwaway file (see Store.open's `scratch`): no fsync, the journal in memory."""
    begin: str = "BEGIN IMMEDIATE"
    open_advice: str = "check the path is a writable file"
    holds_other_programs_tables: bool = False
    failed_statement_undone_alone: bool = True

    @property
    def location(self) -> str:
        return str(self.path)

    def engine(self, busy_timeout: float) -> Engine:
        """Refuses another program's database before connecting, which would turn it to WAL."""
        found = None if self.in_memory else _read_untouched(self.path)
        if found is not None and found[0] == 0 and found[1]:
            raise another_programs(self.location, found[1])
        if not self.in_memory:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the directory of database {self.path}: {exc.strerror}") from exc
        return _sqlite_engine(self, busy_timeout)

    def wait_at_most(self, conn: Connection, seconds: float) -> None:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def schema_version(self, conn: Connection) -> int:
        version: int = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
        return version

    def set_schema_version(self, conn: Connection, version: int) -> None:
        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")

    def lock_schema(self, conn: Connection) -> None:
        """BEGIN IMMEDIATE has taken the file's write lock already."""

    @staticmethod
    def insert(table: sa.Table) -> sqlite.Insert:
        return sqlite.insert(table)


@lru_cache(maxsize=ENGINES_KEPT)
def _sqlite_engine(backend: SQLiteBackend, busy_timeout: float) -> Engine:
    engine = sa.create_engine(
        URL.create("sqlite", database=":memory:" if backend.in_memory else str(backend.path)),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": busy_timeout},
        execution_options={"compiled_cache": SQLITE_COMPILED},
    )

    @sa.event.listens_for(engine, "connect")
    def _set_up(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if backend.scratch:  # what a crash of the machine would lose is thrown away anyway
            cursor.execute("PRAGMA journal_mode = MEMORY")
            cursor.execute("PRAGMA synchronous = OFF")
        else:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    return engine


def backend_for(location: str | Path, *, create: bool = True, scratch: bool = False) -> Backend:
    """A postgresql:// URL is a server; anything else is a SQLite file (with `create`
    False, one in memory if the file is missing; with `scratch`, one not kept)."""
    if is_server_url(location):
        from core.storage.postgres import PostgresBackend

        return PostgresBackend.at(str(location))
    path = Path(location)
    return SQLiteBackend(path, in_memory=not create and not _has_a_schema(path), scratch=scratch)


def _has_a_schema(path: Path) -> bool:
    """Whether the SQLite file at `path` has been given tg's schema (at any version). A
    missing or empty file, or another program's database, has none: a command that only
    reads answers from an empty database in memory rather than write tg's tables into it.
    What cannot be read here (not a database, no permission, not a file) is left to the
    real open to report."""
    if not path.exists():
        return False
    found = _read_untouched(path)
    return found is None or found[0] != 0


def _read_untouched(path: Path) -> tuple[int, list[str]] | None:
    """The schema version and the tables of the SQLite file at `path`, read without
    changing a byte of it (tg's own connections turn a file to WAL); None if it cannot
    be read so (not a file, not a database, no permission): the real open reports that."""
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.Error:
        return None
    return version, tables


def another_programs(location: str, tables: Iterable[str]) -> InputError:
    """The refusal of a database without tg's schema that holds tables already: tg would
    write its own beside them, or read and write theirs as its own (an `orders`)."""
    return InputError(
        f"database {location} is not tg's: it holds tables tg did not make ({', '.join(sorted(tables))}); "
        "give --db or TG_DB a file of tg's own, e.g. tg.db"
    )
