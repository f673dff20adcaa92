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
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each test that takes a store or a location runs once on each backend."""
    name: str = request.param
    return name


@pytest.fixture
def location(request: pytest.FixtureRequest, backend_name: str, db_path: Path) -> Path | str:
    """Where a new, empty database is: a path (SQLite) or a postgresql:// URL."""
    if backend_name == "sqlite":
        return db_path
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def tg_location(request: pytest.FixtureRequest, backend_name: str, db_path: Path) -> Path | str:
    """Where a database tg has created is (on SQLite, creating it is quick: the first
    open does it)."""
    if backend_name == "sqlite":
        return db_path
    url: str = request.getfixturevalue("pg_tg_database")
    return url


@pytest.fixture
def store(tg_location: Path | str) -> Iterator[Store]:
    """Overrides the suite's SQLite-only store: here, each backend in turn."""
    with Store.open(tg_location) as opened:
        yield opened


@pytest.fixture
def postgres_location(postgres: PostgresServer) -> str:
    """A new database on the session's PostgreSQL server, for what only it has."""
    return postgres.new_database()
