"""What the decision side costs in-process: one risk validation (target < 1 ms) and one
offline cycle through the coordinator (target < 100 ms).

    python benchmarks/bench_decision.py [--validations 20000] [--cycles 20]

Cycles are timed three ways:
- decision: the coordinator on an in-memory market that the offline models buy
  (TA, regime, six votes, conflict check, risk) with an instant fill: the agents'
  and coordinator's own cost;
- tg trade: TradeCycle.run against a fresh embedded sandbox, the `tg trade` path:
  Kraken wire in-process, offline models, SQLite;
- tg trade --side buy: the same with an operator's proposal, so risk, orders, stop,
  target and the stored position are in it.
Prints the median and the worst of each, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

from core.decision.coordinator import CoordinatorAgent
from core.decision.risk import RiskManagementEngine
from core.domain.config import RiskSettings, Settings
from core.domain.enums import ExecutionStatus, Regime, Side
from core.domain.models import Candle, ExecutionResult, MarketSnapshot, RiskState, Ticker, TradeProposal
from core.exchange import Credentials, KrakenClient
from core.flows.manual import manual_proposal
from core.flows.trade_cycle import TradeCycle
from core.storage.store import Store
from simulator.embedded import EmbeddedExchange

RISK_TARGET_MS = 1.0
CYCLE_TARGET_MS = 100.0


def bench_risk(validations: int) -> list[float]:
    engine = RiskManagementEngine(RiskSettings())
    proposal = TradeProposal(
        "BTC/USDT",
        Side.BUY,
        Decimal("45000.0"),
        Decimal("44100.0"),
        Decimal("47250.0"),
        0.8,
        regime=Regime.TRENDING_BULL,
    )
    state = RiskState(equity=Decimal("100000"), available_quote=Decimal("60000"), open_positions=1)
    if not engine.validate_trade(proposal, state).is_approved():
        raise SystemExit("the benchmark proposal should be approved")
    timings = []
    for _ in range(validations):
        start = time.perf_counter()
        engine.validate_trade(proposal, state)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def rising_market(symbol: str = "BTC/USDT") -> MarketSnapshot:
    """Hourly and 4-hourly candles of a steady, wavy climb ending on an up-leg."""

    def candles(interval: int, growth: float, count: int) -> list[Candle]:
        closes = [100 * (1 + growth) ** i * (1 + 0.03 * math.sin(i / 3)) for i in range(count)]
        return [
            Candle(
                1_700_000_000 + i * interval * 60,
                Decimal(f"{o:.2f}"),
                Decimal(f"{max(o, c) * 1.001:.2f}"),
                Decimal(f"{min(o, c) * 0.999:.2f}"),
                Decimal(f"{c:.2f}"),
                Decimal("1.5"),
            )
            for i, (o, c) in enumerate(zip([closes[0], *closes], closes, strict=False))
        ]

    series = {60: candles(60, 0.004, 192), 240: candles(240, 0.012, 120)}
    last = series[60][-1].close
    return MarketSnapshot(symbol, 1_700_000_000.0, Ticker(last, last, last), series)


class InMemoryVenue:
    def __init__(self, snapshot: MarketSnapshot) -> None:
        self._snapshot = snapshot

    async def snapshot(self, symbol: str) -> MarketSnapshot:
        return self._snapshot

    @asynccontextmanager
    async def trading(self, symbol: str) -> AsyncIterator[None]:
        """One process, one account: nothing to lease or reconcile."""
        yield

    async def risk_state(self, symbol: str, price: Decimal) -> RiskState:
        return RiskState(equity=Decimal("100000"), available_quote=Decimal("100000"))

    async def execute(self, proposal: TradeProposal, correlation_id: str) -> ExecutionResult:
        return ExecutionResult(success=True, status=ExecutionStatus.FILLED)


async def time_it(run: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await run()
    return (time.perf_counter() - start) * 1000


async def bench_decision(cycles: int) -> list[float]:
    coordinator = CoordinatorAgent(InMemoryVenue(rising_market()))
    first = await coordinator.run_cycle("BTC/USDT")
    if first.execution is None:
        raise SystemExit(f"the benchmark market should trade; it did {first.decision} ({first.note})")
    timings = [await time_it(lambda: coordinator.run_cycle("BTC/USDT")) for _ in range(cycles)]
    await coordinator.close()
    return timings


async def bench_trade_cycle(cycles: int, *, side: str | None) -> list[float]:
    timings = []
    for _ in range(cycles):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            sandbox = EmbeddedExchange.open(root / "s.db")
            client = KrakenClient(
                sandbox.base_url,
                Credentials(sandbox.api_key, sandbox.api_secret),
                transport=sandbox.transport,
                clock=sandbox.clock,
            )
            with Store.open(root / "tg.db") as store:
                cycle = TradeCycle(client, store, sandbox.clock, Settings(db=root / "tg.db"))

                async def one(client: KrakenClient = client, cycle: TradeCycle = cycle) -> None:
                    manual = await manual_proposal(client, "BTC/USDT", side, None) if side else None
                    report = await cycle.run("BTC/USDT", manual=manual)
                    if side and report.status != "FILLED":
                        raise SystemExit(f"the manual trade should fill, it is {report.status}")

                timings.append(await time_it(one))
            await client.aclose()
    return timings


def line(name: str, timings: list[float], target: float) -> str:
    median, worst = statistics.median(timings), max(timings)
    verdict = "ok" if median < target else "OVER TARGET"
    return f"{name:<38} median {median:9.3f} ms   worst {worst:9.3f} ms   target < {target:g} ms: {verdict}"


async def main(validations: int, cycles: int) -> None:
    print(line(f"risk validation (x{validations})", bench_risk(validations), RISK_TARGET_MS))
    print(line(f"decision cycle, in memory (x{cycles})", await bench_decision(cycles), CYCLE_TARGET_MS))
    print(line(f"tg trade, sandbox (x{cycles})", await bench_trade_cycle(cycles, side=None), CYCLE_TARGET_MS))
    print(
        line(f"tg trade --side buy, sandbox (x{cycles})", await bench_trade_cycle(cycles, side="buy"), CYCLE_TARGET_MS)
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validations", type=int, default=20_000)
    parser.add_argument("--cycles", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.validations, args.cycles))
