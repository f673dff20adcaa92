"""tg's store on a PostgreSQL server (psycopg 3): what it does differently from SQLite
(core.storage.backends)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from core.domain.config import hide_password
from core.domain.errors import InputError
from core.storage.backends import ENGINES_KEPT
from core.storage.schema import META

MIGRATION_LOCK = 0x7467_5F73_6368  # "tg_sch": the advisory lock of schema changes on PostgreSQL


@dataclass(frozen=True)
class PostgresBackend:
    """A server: the schema version is a row of `meta`, and an advisory lock makes one
    of several processes opening a new database create its tables."""

    url: URL
    begin: str = "BEGIN"
    open_advice: str = "check the server runs and the URL's user, host, port and database name"
    holds_other_programs_tables: bool = True
    failed_statement_undone_alone: bool = False

    @property
    def location(self) -> str:
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)

    @classmethod
    def at(cls, url: str) -> PostgresBackend:
        try:
            return cls(make_url(url))
        except (sa.exc.ArgumentError, ValueError) as exc:
            raise InputError(
                f"{hide_password(url)} is not a valid PostgreSQL URL: give postgresql://user@host:port/dbname"
            ) from exc

    def engine(self, busy_timeout: float) -> Engine:
        return _engine(self.url)

    def wait_at_most(self, conn: Connection, seconds: float) -> None:
        conn.exec_driver_sql(f"SET lock_timeout = {max(1, int(seconds * 1000))}")

    def schema_version(self, conn: Connection) -> int:
        if not sa.inspect(conn).has_table("meta"):
            return 0
        value = conn.execute(sa.select(META.c.value).where(META.c.key == "schema_version")).scalar()
        return int(value) if value is not None else 0

    def set_schema_version(self, conn: Connection, version: int) -> None:
        statement = postgresql.insert(META).values(key="schema_version", value=str(version))
        conn.execute(statement.on_conflict_do_update(index_elements=[META.c.key], set_={"value": str(version)}))

    def lock_schema(self, conn: Connection) -> None:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))

    @staticmethod
    def insert(table: sa.Table) -> postgresql.Insert:
        return postgresql.insert(table)


@lru_cache(maxsize=ENGINES_KEPT)
def _engine(url: URL) -> Engine:
    """The server's engine, kept by the process (see core.storage.backends)."""
    return sa.create_engine(
        url.set(drivername="postgresql+psycopg"),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 10, "application_name": "tg"},
    )
