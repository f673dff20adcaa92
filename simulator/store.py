"""The exchange's state saved in its own SQLite file, so that consecutive processes (one
tg command after another) trade on the same exchange: balances, orders, trades, nonces,
the id serial and the time matched up to.

The state is one JSON document in one row; Decimals are stored as strings. The price
paths are not stored: they are a function of the seed and the origin, which are.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils
from pydantic import TypeAdapter, ValidationError

from simulator.exceptions import SandboxStateError
from simulator.models import ExchangeState

SCHEMA_VERSION = 1
_TABLE = "exchange_state"
_STATE = TypeAdapter(ExchangeState)


def save_state(path: Path, state: ExchangeState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(path)
    try:
        with db.conn:
            db.table(_TABLE).upsert(
                {"id": 1, "schema_version": SCHEMA_VERSION, "state": _STATE.dump_json(state).decode()},
                pk="id",
            )
    finally:
        db.close()


def load_state(path: Path) -> ExchangeState | None:
    """The saved state, or None when nothing was saved at `path` yet."""
    if not path.exists():
        return None
    db = sqlite_utils.Database(path)
    try:
        if _TABLE not in db.table_names():
            return None
        rows = list(db.table(_TABLE).rows_where("id = 1"))
    except sqlite3.DatabaseError as exc:
        raise SandboxStateError(
            f"{path} is not a sandbox state database ({exc}); delete it or point the sandbox at another file"
        ) from exc
    finally:
        db.close()
    if not rows:
        return None
    row = rows[0]
    if row["schema_version"] != SCHEMA_VERSION:
        raise SandboxStateError(
            f"{path} holds sandbox state of schema {row['schema_version']}, this version "
            f"reads {SCHEMA_VERSION}; reset the sandbox to start over"
        )
    try:
        return _STATE.validate_json(row["state"])
    except ValidationError as exc:
        raise SandboxStateError(
            f"the sandbox state in {path} is damaged ({exc.error_count()} errors); reset the sandbox to start over"
        ) from exc
