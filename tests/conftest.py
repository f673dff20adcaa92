"""Suite-wide settings and the one fixture every area shares: a fresh store. Under CI,
hypothesis explores a fixed set of examples (the same on every run, so a run can be
repeated exactly); locally it explores afresh each time."""

from __future__ import annotations

import decimal
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from core.storage.store import Store

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _fresh_decimal_context() -> Iterator[None]:
    """ccxt sets the thread's decimal context (ROUND_HALF_UP, an Underflow trap) when it
    formats a number; a test that drives ccxt in-process must not change the numbers
    of the tests after it."""
    decimal.setcontext(decimal.Context())
    yield
    decimal.setcontext(decimal.Context())


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where `store` keeps its database (a test folder may put it elsewhere)."""
    return tmp_path / "tg.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened
