"""A fresh store per test (tests/conftest.py), its database in a folder of its own."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "tg.db"
