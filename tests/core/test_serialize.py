"""to_jsonable: what JSON output and stored payloads are made of."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from core.domain.enums import Action, Side
from core.domain.serialize import to_jsonable


@dataclass(frozen=True)
class _Vote:
    action: Action
    price: Decimal
    levels: tuple[Decimal, ...]
    note: str | None = None


def test_values_nested_in_dicts_lists_and_dataclasses_become_json_safe() -> None:
    value = {
        "price": Decimal("94753.70"),
        Side.BUY: [Decimal("1E-8"), 2, 0.5, True, None, "x"],
        3: (_Vote(Action.BUY, Decimal("1.5"), (Decimal(2),)),),
        "where": Path("/tmp/a.db"),
        "votes": {Action.SELL: {"n": 1}},
    }
    assert to_jsonable(value) == {
        "price": "94753.70",
        "buy": ["0.00000001", 2, 0.5, True, None, "x"],
        "3": [{"action": "BUY", "price": "1.5", "levels": ["2"], "note": None}],
        "where": "/tmp/a.db",
        "votes": {"SELL": {"n": 1}},
    }


def test_a_json_safe_payload_comes_back_equal() -> None:
    payload = to_jsonable({"a": [Decimal("0.1"), {"b": Action.HOLD}], "c": 1.25, "d": None})
    assert to_jsonable(payload) == payload == json.loads(json.dumps(payload))


def test_an_unknown_type_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="object"):
        to_jsonable({"x": [object()]})
