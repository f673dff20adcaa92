"""A database and embedded sandbox with a history of closed trades behind them, and
`tg trade` run on them with its exchange requests counted: shared by the test that
a trade's requests do not grow with history and by benchmarks/bench_trade_history.py.

Each trade of the history is what `tg trade BTC/USDT --side buy` sends and stores
(the operator's proposal executed: entry, stop-loss and take-profit, the position),
without the agents' analysis, which reads the market and not the history; then the
market runs (as `tg sim advance` would) until its stop or target closed it, with a
reconcile at each step. The risk limits are relaxed so that losing streaks, daily
losses and drawdown never stop the measured trade."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from typer.testing import CliRunner

from cli.main import app
from cli.wiring import open_session
from core.domain.config import load_settings
from core.domain.enums import PositionStatus
from core.exchange.sandbox_control import SandboxControl
from core.execution.manager import OrderExecutionManager
from core.execution.reconcile import Reconciler
from core.flows.manual import manual_proposal
from core.flows.trade_cycle import new_run_id
from simulator.app import Receive, SandboxApp, Scope, Send

SYMBOL = "BTC/USDT"
RELAXED = """\
[risk]
losing_streak = 1000000
cooldown_after_loss_s = 0
max_daily_loss_pct = 1
max_weekly_loss_pct = 1
max_drawdown_pct = 1
"""
MARKET_STEP_S = 86_400.0
MAX_STEPS = 60


def prepare(folder: Path) -> tuple[Path, Path]:
    """The database path and config file of a history in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "tg.toml"
    config.write_text(RELAXED)
    return folder / "tg.db", config


async def build_history(folder: Path, trades: int) -> None:
    """`trades` trades, each bought, protected and closed by the market, into `folder`."""
    db, config = prepare(folder)
    settings = load_settings(config, db=db)
    async with open_session(settings) as session:
        assert session.sandbox is not None
        control = SandboxControl(session.sandbox.base_url, transport=session.sandbox.transport)
        try:
            for _ in range(trades):
                proposal = await manual_proposal(session.client, SYMBOL, "buy", "0.01")
                run_id = new_run_id()
                result = await OrderExecutionManager(
                    session.client, session.store, clock=session.clock, settings=settings.execution, run_id=run_id
                ).execute_trade(proposal)
                assert result.success, result.error_message
                for _ in range(MAX_STEPS):
                    if not session.store.positions(status=PositionStatus.OPEN):
                        break
                    await control.advance(MARKET_STEP_S)
                    await Reconciler(
                        session.client, session.store, session.clock, spool=session.spool, settings=settings.execution
                    ).reconcile()
                else:
                    raise AssertionError(f"the market never closed the position of {run_id}")
        finally:
            await control.aclose()


def build(folder: Path, trades: int) -> None:
    asyncio.run(build_history(folder, trades))


@contextmanager
def counting_requests() -> Iterator[Counter[str]]:
    """Every request to an embedded sandbox meanwhile, counted by path where the sandbox
    receives it (tg's Sender drives an httpx.ASGITransport's app itself)."""
    counts: Counter[str] = Counter()
    serve = SandboxApp.__call__

    async def counted(self: SandboxApp, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            counts[scope["path"]] += 1
        await serve(self, scope, receive, send)

    with mock.patch.object(SandboxApp, "__call__", counted):
        yield counts


@dataclass
class TradeCost:
    cpu_s: float
    requests: Counter[str]
    summary: dict[str, object]


def trade(folder: Path) -> TradeCost:
    """One `tg trade BTC/USDT --side buy` in this process on the history in `folder`:
    its CPU time and its requests by path."""
    db, config = prepare(folder)
    with counting_requests() as counts:
        start = time.process_time()
        result = CliRunner().invoke(
            app, ["trade", SYMBOL, "--side", "buy", "--db", str(db), "--config", str(config), "--json"]
        )
        spent = time.process_time() - start
    assert result.exit_code == 0, result.output
    return TradeCost(spent, counts, json.loads(result.stdout))
