"""A fresh store per test, on each backend: a SQLite file, and a new database on the
session's PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.storage.store import Store
from tests.postgres import PostgresServer


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "tg.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, db_path: Path) -> Path | str:
    """Where a test's database is: a path (SQLite) or a postgresql:// URL."""
    if request.param == "sqlite":
        return db_path
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def store(location: Path | str) -> Iterator[Store]:
    with Store.open(location) as opened:
        yield opened


@pytest.fixture
def postgres_location(postgres: PostgresServer) -> str:
    """A new database on the session's PostgreSQL server, for what only it has."""
    return postgres.new_database()
