"""Turning domain values into JSON-safe values: Decimals as exact strings, enums as
their values, dataclasses as dicts. Used for --json output and stored payloads."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.domain.models import Order, Position


_SCALARS = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}
"""The field names of each dataclass met: dataclasses.fields() walks the class each call."""


def to_jsonable(value: Any) -> Any:
    """`value` with every Decimal, enum, dataclass and path in it made JSON-safe.

    A dict's plain str keys, scalar items and Decimal items are dealt with in place,
    without a call each: a stored payload is often JSON-safe already (the bus's
    messages are, and the store walks them again), and indicator dicts are all
    Decimals; one call per item was most of what either cost."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is Decimal:
        return format(value, "f")
    if kind is dict:
        return {
            k if type(k) is str else str(to_jsonable(k)): (
                v if type(v) in _SCALARS else format(v, "f") if type(v) is Decimal else to_jsonable(v)
            )
            for k, v in value.items()
        }
    if kind is list or kind is tuple:
        return [v if type(v) in _SCALARS else to_jsonable(v) for v in value]
    # subclasses (str-valued enums among them) and the rarer types, in this order
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS.get(kind)
        if names is None:
            names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(value))
        return {name: to_jsonable(getattr(value, name)) for name in names}
    if isinstance(value, dict):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"cannot turn {type(value).__name__} into JSON")


def order_json(order: Order) -> dict[str, Any]:
    """An order as every command's --json shows it (docs/json.md): the exchange's id is
    `txid`, as Kraken and the tables call it."""
    fields = to_jsonable(order)
    fields["txid"] = fields.pop("external_id")
    return dict(fields)


def position_json(position: Position) -> dict[str, Any]:
    """A position as every command's --json shows it (docs/json.md)."""
    return dict(to_jsonable(position))
