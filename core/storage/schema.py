"""tg's tables, written once for every backend (SQLAlchemy Core), and the steps that
bring an older database up to them.

Two column types carry what the backends store differently: `Money` is NUMERIC on
PostgreSQL and the exact digits as TEXT on SQLite (whose NUMERIC affinity would round
through a float); `EpochTime` is tg's clock reading (epoch seconds) as a timezone-aware
TIMESTAMPTZ on PostgreSQL and REAL epoch seconds (UTC by definition) on SQLite. Either
way a Decimal comes back exactly as it went in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.domain.ownership import new_install_id


class Money(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, its digits as TEXT on SQLite."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Numeric(asdecimal=True))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: Decimal | str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = Decimal(value)  # rows arrive as JSON-safe text (the spool's form) or as Decimals
        return exact if dialect.name == "postgresql" else str(exact)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class EpochTime(TypeDecorator[float]):
    """tg's clock reading: TIMESTAMPTZ (UTC) on PostgreSQL, REAL epoch seconds on SQLite."""

    impl = sa.Float
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.DateTime(timezone=True))
        return dialect.type_descriptor(sa.Float())

    def process_bind_param(self, value: float | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return datetime.fromtimestamp(value, UTC) if dialect.name == "postgresql" else float(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        if value is None:
            return None
        return value.timestamp() if isinstance(value, datetime) else float(value)


METADATA = sa.MetaData()


def _text(name: str, *, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=nullable)


def _money(name: str, *, nullable: bool = True) -> sa.Column[Decimal]:
    return sa.Column(name, Money, nullable=nullable)


def _time(name: str, *, nullable: bool = True) -> sa.Column[float]:
    return sa.Column(name, EpochTime, nullable=nullable)


# schema 1: what tg did on the exchange

RUNS = sa.Table(
    "runs",
    METADATA,
    sa.Column("run_id", sa.Text, primary_key=True),
    _text("kind", nullable=False),
    _text("symbol"),
    _text("status", nullable=False),
    _time("started_at", nullable=False),
    _time("finished_at"),
    _text("params", nullable=False),
    _text("summary", nullable=False),
    sa.Index("idx_runs_started_at", "started_at"),
)

POSITIONS = sa.Table(
    "positions",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True),
    _text("run_id"),
    _text("symbol", nullable=False),
    _text("side", nullable=False),
    _money("size", nullable=False),
    _money("entry_price", nullable=False),
    _money("stop_loss"),
    _money("take_profit"),
    _text("status", nullable=False),
    _money("leverage", nullable=False),
    _time("opened_at", nullable=False),
    _time("closed_at"),
    _money("exit_price"),
    _money("realized_pnl"),
    _money("fees", nullable=False),
    sa.Index("idx_positions_status", "status"),
    sa.Index("idx_positions_run_id", "run_id"),
)

ORDERS = sa.Table(
    "orders",
    METADATA,
    sa.Column("client_order_id", sa.Text, primary_key=True),
    _text("external_id"),
    _text("run_id"),
    sa.Column("position_id", sa.Text, sa.ForeignKey("positions.id")),
    _text("symbol", nullable=False),
    _text("side", nullable=False),
    _text("order_type", nullable=False),
    _text("role", nullable=False),
    _money("volume", nullable=False),
    _money("price"),
    _text("status", nullable=False),
    _money("filled_volume", nullable=False),
    _money("avg_fill_price"),
    _money("fee", nullable=False),
    _time("created_at", nullable=False),
    _time("updated_at", nullable=False),
    _money("stop_level"),  # schema 3
    _money("target_level"),  # schema 3
    sa.Index("idx_orders_external_id", "external_id", unique=True),
    sa.Index("idx_orders_run_id", "run_id"),
    sa.Index("idx_orders_status", "status"),
    sa.Index("idx_orders_position_id", "position_id"),
)

FILLS = sa.Table(
    "fills",
    METADATA,
    sa.Column("trade_id", sa.Text, primary_key=True),
    _text("order_external_id", nullable=False),
    _text("symbol", nullable=False),
    _text("side", nullable=False),
    _money("price", nullable=False),
    _money("volume", nullable=False),
    _money("fee", nullable=False),
    _time("time", nullable=False),
    _text("run_id"),
    sa.Index("idx_fills_order_external_id", "order_external_id"),
    sa.Index("idx_fills_run_id", "run_id"),
)

# schema 2: what the agents, the models and the coordinator said along the way

AGENT_OUTPUTS = sa.Table(
    "agent_outputs",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _text("run_id", nullable=False),
    _text("agent", nullable=False),
    _text("symbol", nullable=False),
    _text("payload", nullable=False),
    _time("created_at", nullable=False),
    sa.Index("idx_agent_outputs_run_id", "run_id"),
)

MODEL_VOTES = sa.Table(
    "model_votes",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _text("run_id", nullable=False),
    _text("symbol", nullable=False),
    _text("model", nullable=False),
    _text("action", nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    _money("entry"),
    _money("stop_loss"),
    _money("take_profit"),
    _text("reasoning", nullable=False),
    sa.Column("valid", sa.Boolean(create_constraint=False), nullable=False),
    _time("created_at", nullable=False),
    sa.Index("idx_model_votes_run_id", "run_id"),
)

ALERTS = sa.Table(
    "alerts",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _text("run_id"),
    _text("level", nullable=False),
    _text("message", nullable=False),
    _time("created_at", nullable=False),
    sa.Index("idx_alerts_run_id", "run_id"),
)

CONFLICTS = sa.Table(
    "coordinator_conflicts",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _text("run_id"),
    _text("symbol", nullable=False),
    _text("conflict_type", nullable=False),
    _text("resolution_action", nullable=False),
    _text("reasoning", nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    _text("payload", nullable=False),
    _time("timestamp", nullable=False),
    sa.Index("idx_coordinator_conflicts_symbol", "symbol"),
)

# schema 3: whose orders are whose. `meta` holds this database's install id (the
# namespace of the client order ids it mints), `namespaces` the ones it adopted,
# `holdings` what of each asset the account held outside tg when last measured, and
# `leases` which process owns the critical section of an account's asset.

META = sa.Table("meta", METADATA, sa.Column("key", sa.Text, primary_key=True), _text("value", nullable=False))

NAMESPACES = sa.Table(
    "namespaces",
    METADATA,
    sa.Column("install_id", sa.Text, primary_key=True),
    _time("adopted_at", nullable=False),
)

HOLDINGS = sa.Table(
    "holdings",
    METADATA,
    sa.Column("asset", sa.Text, primary_key=True),
    _money("foreign", nullable=False),
    _time("as_of", nullable=False),
    _text("foreign_filled", nullable=False),
    _money("surplus"),
    _time("surplus_since"),
)

LEASES = sa.Table(
    "leases",
    METADATA,
    sa.Column("name", sa.Text, primary_key=True),
    _text("token", nullable=False),
    _text("host", nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    _time("expires_at", nullable=False),
)

# schema 4: a run's results, one row each (a simulate run's runs), numbered by `part`.
# Recording one more costs the same however many came before, where rewriting them all
# in the run's summary each time grew with the run.

RUN_RESULTS = sa.Table(
    "run_results",
    METADATA,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
    _text("result", nullable=False),
)

INSERTION_ORDERED: Final = (RUNS, POSITIONS, ORDERS, FILLS)
"""Tables whose rows are listed in the order they were first written when their times tie:
SQLite numbers rows by itself (rowid); PostgreSQL is given an identity column, `seq`."""


class InsertionOrder(sa.ColumnElement[int]):
    """The order the rows of an INSERTION_ORDERED table were first written in, to order
    by: one construct for both backends, so a statement using it is built once."""

    inherit_cache = True
    _traverse_internals = []  # noqa: RUF012 (SQLAlchemy's cache key: nothing varies)
    type = sa.BigInteger()


@compiles(InsertionOrder)
def _rowid(element: InsertionOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return "rowid"


@compiles(InsertionOrder, "postgresql")
def _seq(element: InsertionOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return "seq"


for _table in INSERTION_ORDERED:
    sa.event.listen(
        _table,
        "after_create",
        sa.DDL("ALTER TABLE %(table)s ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY").execute_if(
            dialect="postgresql"
        ),
    )


def _mint_install_id(conn: Connection) -> None:
    conn.execute(sa.insert(META).values(key="install_id", value=new_install_id()))


def create(conn: Connection) -> None:
    """A new database: every table as it stands now, and its install id."""
    METADATA.create_all(conn)
    _mint_install_id(conn)


def _add_agent_record_tables(conn: Connection) -> None:
    METADATA.create_all(conn, tables=[AGENT_OUTPUTS, MODEL_VOTES, ALERTS, CONFLICTS])


def _add_ownership(conn: Connection) -> None:
    """Ownership tables, an install id, and the levels an entry was approved with."""
    METADATA.create_all(conn, tables=[META, NAMESPACES, HOLDINGS, LEASES])
    for name in ("stop_level", "target_level"):
        column_type = ORDERS.c[name].type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE orders ADD COLUMN {name} {column_type}"))
    _mint_install_id(conn)


RESULTS_IN_SUMMARY: Final = "details"
"""Where a run's results were kept before schema 4: a list in its summary (of simulate runs)."""


def _keep_results_as_rows(conn: Connection) -> None:
    """Each simulate run's results move out of its summary into rows of their own, the
    summary keeping the totals: the form every run is read in from now on."""
    METADATA.create_all(conn, tables=[RUN_RESULTS])
    runs = conn.execute(sa.select(RUNS.c.run_id, RUNS.c.summary).where(RUNS.c.kind == "simulate")).all()
    for run_id, text in runs:
        summary = json.loads(text)
        results = summary.pop(RESULTS_IN_SUMMARY, None)
        if not isinstance(results, list):
            continue
        if results:
            rows = [{"run_id": run_id, "part": r["run"], "result": json.dumps(r)} for r in results]
            conn.execute(sa.insert(RUN_RESULTS), rows)
        conn.execute(sa.update(RUNS).where(RUNS.c.run_id == run_id).values(summary=json.dumps(summary)))


UPGRADES: Final[tuple[Callable[[Connection], None], ...]] = (
    _add_agent_record_tables,
    _add_ownership,
    _keep_results_as_rows,
)
"""UPGRADES[i] takes a database from schema i + 1 to i + 2; a new database is created
at the last schema directly. Append only: a change to the tables above comes with the
step that makes it in a database created before."""

SCHEMA_VERSION: Final = len(UPGRADES) + 1
