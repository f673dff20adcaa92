"""What a fresh `tg` process imports (issue 14, start-up): the help imports Typer and the
commands' signatures, none of what the commands do; a trade on the default SQLite store
and the embedded sandbox imports neither the PostgreSQL driver nor what only a served
sandbox needs (uvicorn, the WebSocket protocol, the shared-nonce file lock) nor ccxt; a
trade on a served sandbox does not load the sandbox itself. Speed is measured by
benchmarks/bench_startup.py; this pins the structure that makes it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from simulator.server import serving
from tests.integration.tg_processes import at_exit

pytestmark = pytest.mark.integration


def imported_by(*args: str, folder: Path, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter has imported when `tg ARGS` exits."""
    return set(at_exit("modules", *args, folder=folder, env=env))


def under(modules: set[str], *packages: str) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages)}


def test_the_help_imports_typer_and_the_signatures_only(tmp_path: Path) -> None:
    modules = imported_by("--help", folder=tmp_path)
    assert "typer" in modules and "cli.main" in modules
    heavy = ("sqlalchemy", "psycopg", "pydantic", "pydantic_settings", "httpx", "rich", "uvicorn", "websockets", "ccxt")
    assert under(modules, *heavy) == set()
    assert under(modules, "core.flows", "core.decision", "core.execution", "core.exchange", "core.storage") == set()
    # the choices of --side and --status, not the domain's dataclasses; no error class
    # until a command runs, and no logging until one configures it
    assert under(modules, "core.domain") == {"core.domain", "core.domain.enums"}
    assert under(modules, "simulator", "logging", "decimal") == set()


def test_a_trade_on_sqlite_and_the_embedded_sandbox_imports_no_server_side(tmp_path: Path) -> None:
    modules = imported_by("trade", "BTC/USDT", "--db", str(tmp_path / "tg.db"), folder=tmp_path)
    assert {"core.flows.trade_cycle", "simulator.embedded", "sqlalchemy.dialects.sqlite"} <= modules
    assert under(modules, "psycopg", "sqlalchemy.dialects.postgresql", "core.storage.postgres") == set()
    assert under(modules, "uvicorn", "websockets", "simulator.server", "simulator.websocket.session") == set()
    assert under(modules, "filelock.asyncio", "core.exchange.shared_nonces", "ccxt") == set()


def test_a_trade_on_a_served_sandbox_does_not_load_the_sandbox(tmp_path: Path) -> None:
    key, secret = "tgStartupImportsKey0123456789", base64.b64encode(bytes(range(64))).decode()
    with serving(keys=[(key, secret)], tier=None) as server:
        modules = imported_by(
            *("trade", "BTC/USDT", "--side", "buy", "--url", server.url, "--db", str(tmp_path / "tg.db")),
            folder=tmp_path,
            env={"TG_KRAKEN_API_KEY": key, "TG_KRAKEN_API_SECRET": secret},
        )
    assert {"core.flows.trade_cycle", "core.exchange.shared_nonces"} <= modules
    assert under(modules, "simulator") <= {"simulator", "simulator.exceptions"}
    assert under(modules, "psycopg", "sqlalchemy.dialects.postgresql", "uvicorn", "websockets", "ccxt") == set()
