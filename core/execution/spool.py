"""The pending-writes spool: records the exchange accepted but the database refused.

A JSON-lines file beside the database, appended and fsynced before the trade goes
on, so a record survives the process dying; `flush` replays it into the store
(every write is an idempotent upsert) and empties it. Nothing the exchange
accepted is lost because SQLite was unavailable for a moment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.domain.enums import PositionStatus
from core.domain.errors import DatabaseWriteError, StorageError
from core.domain.models import Order, Position
from core.storage.store import Store, order_from_record, order_record, position_from_record, position_record


def spool_path(db_path: Path) -> Path:
    return db_path.with_name(f"{db_path.stem}.pending.jsonl")


def spool_record(orders: Sequence[Order] = (), position: Position | None = None) -> dict[str, Any]:
    """One spool line: orders and the position they belong to, in storage row form."""
    return {
        "orders": [order_record(o) for o in orders],
        "position": position_record(position) if position is not None else None,
    }


@dataclass
class PendingWrites:
    path: Path

    def append(self, orders: Sequence[Order] = (), position: Position | None = None) -> None:
        self.append_records([spool_record(orders, position)])

    def append_records(self, records: Sequence[dict[str, Any]]) -> None:
        """Spool lines as `spool_record` makes them (or as a command printed them)."""
        text = "".join(json.dumps(record) + "\n" for record in records)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise StorageError(
                f"cannot write the pending-writes spool {self.path}: {exc.strerror}; "
                "the exchange holds orders tg could not record: run `tg reconcile` once storage is back"
            ) from exc

    def pending(self) -> list[tuple[list[Order], Position | None]]:
        if not self.path.exists():
            return []
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StorageError(
                f"cannot read the pending-writes spool {self.path}: {exc.strerror}; "
                "its records stay where they are until it can be read"
            ) from exc
        records = []
        for line in text.splitlines():
            if line.strip():
                raw = json.loads(line)
                position = position_from_record(raw["position"]) if raw["position"] else None
                records.append(([order_from_record(o) for o in raw["orders"]], position))
        return records

    def flush(self, store: Store) -> int:
        """Write every spooled record; returns how many records were written."""
        records = self.pending()
        if not records:
            return 0
        try:
            with store.transaction():
                for orders, position in records:
                    _write(store, orders, position)
        except DatabaseWriteError:
            return 0  # still refused: the spool keeps them for the next run
        self.path.unlink()
        return len(records)


def _write(store: Store, orders: list[Order], position: Position | None) -> None:
    """One spooled record, merged with what the database learnt since it was spooled."""
    fresher = [_newer_of(order, store.get_order(order.client_order_id)) for order in orders]
    if position is not None:
        rebuilt = next((o.position_id for o in fresher if o.position_id not in (None, position.id)), None)
        if rebuilt is not None:
            # a reconciliation rebuilt the position meanwhile, under its own id: that one stands
            for order in fresher:
                if order.position_id in (None, position.id):
                    order.position_id = rebuilt
            position = None
        else:
            stored = store.get_position(position.id)
            if stored is not None and not (
                stored.status is PositionStatus.OPEN and position.status is PositionStatus.CLOSED
            ):
                position = None  # a position never reopens: the stored one is as new or newer
    if position is not None:
        store.record_protected_position(position, fresher)
        return
    for order in fresher:
        if order.position_id is not None and store.get_position(order.position_id) is None:
            order.position_id = None  # its position is in a later record, which links it
        store.upsert_order(order)


def _newer_of(spooled: Order, stored: Order | None) -> Order:
    """A spooled record never undoes what the database learnt since: the later
    version wins, and a link to a position is never dropped."""
    if stored is None:
        return spooled
    chosen = spooled if spooled.updated_at >= stored.updated_at else stored  # the spool is in order
    chosen.position_id = chosen.position_id or spooled.position_id or stored.position_id
    return chosen
