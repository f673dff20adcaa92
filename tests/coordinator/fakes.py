"""Markets, scripted models and a recording venue for the coordinator's tests."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal

from core.decision.bus import Message, MessageTopic
from core.decision.llm.interface import ModelContext, ModelReply
from core.domain.enums import ExecutionStatus, PositionSide, Side
from core.domain.errors import ServiceUnavailableError
from core.domain.models import Candle, ExecutionResult, MarketSnapshot, Position, RiskState, Ticker, TradeProposal
from tests.virtual_time import elapse

START = 1_700_000_000

Answer = str | Exception | Callable[[ModelContext], str]


def rising_snapshot(symbol: str = "BTC/USDT", *, base: float = 100.0, seed: int = 1) -> MarketSnapshot:
    """120 hourly candles of a seeded, wavy climb: enough for every indicator."""
    rng = random.Random(seed)
    closes = [base * 1.003**i * (1 + 0.02 * math.sin(i / 3) + rng.uniform(-0.001, 0.001)) for i in range(120)]
    candles: list[Candle] = []
    previous = closes[0]
    for i, close in enumerate(closes):
        high, low = max(previous, close) * 1.002, min(previous, close) * 0.998
        candles.append(
            Candle(
                START + i * 3600,
                Decimal(f"{previous:.2f}"),
                Decimal(f"{high:.2f}"),
                Decimal(f"{low:.2f}"),
                Decimal(f"{close:.2f}"),
                Decimal("1.5"),
            )
        )
        previous = close
    last = candles[-1].close
    ticker = Ticker(last - Decimal("0.01"), last + Decimal("0.01"), last)
    return MarketSnapshot(symbol, float(START), ticker, {60: candles})


class ScriptedModel:
    """Answers its script in turn, the last item again when it runs out: a text, an
    Exception to raise, or a function of the context (for answers priced off the
    snapshot). With `delay`, each answer first sleeps that long (use under looptime)."""

    def __init__(self, name: str, *script: Answer, delay: float = 0.0) -> None:
        self.name = name
        self.script = list(script)
        self.delay = delay
        self.prompts: list[str] = []
        self.contexts: list[ModelContext] = []

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        self.prompts.append(prompt)
        self.contexts.append(context)
        if self.delay:
            await elapse(self.delay)
        item = self.script[min(len(self.prompts), len(self.script)) - 1]
        if isinstance(item, Exception):
            raise item
        return ModelReply(text=item(context) if callable(item) else item, model=self.name)


def vote(
    action: str, confidence: float = 0.8, *, stop_pct: str = "0.02", target_pct: str = "0.05"
) -> Callable[[ModelContext], str]:
    """A vote priced off the snapshot: entry at the last price, stop and target at these distances."""

    def answer(context: ModelContext) -> str:
        if action == "HOLD":
            return f'{{"action": "HOLD", "confidence": {confidence}}}'
        price = context.snapshot.price
        direction = 1 if action == "BUY" else -1
        stop = (price * (1 - direction * Decimal(stop_pct))).quantize(Decimal("0.01"))
        target = (price * (1 + direction * Decimal(target_pct))).quantize(Decimal("0.01"))
        return (
            f'Here is my vote: {{"action": "{action}", "confidence": {confidence}, "entry": {price}, '
            f'"stop_loss": {stop}, "take_profit": {target}, "reasoning": "scripted"}}'
        )

    return answer


TA_LONG = '{"bias": "long", "confidence": 0.8, "trend": "up", "signals": ["scripted"]}'
TA_SHORT = '{"bias": "short", "confidence": 0.7, "trend": "down"}'
TA_NEUTRAL = '{"bias": "neutral", "confidence": 0.5}'
BULL = '{"regime": "trending_bull", "confidence": 0.9, "reasoning": "scripted"}'
BEAR = '{"regime": "trending_bear", "confidence": 0.8}'
VOLATILE_BULL = '{"regime": "volatile_bull", "confidence": 0.85}'


def traders(*answers: Answer, delay: float = 0.0) -> list[ScriptedModel]:
    return [ScriptedModel(f"trader_{i + 1}", answer, delay=delay) for i, answer in enumerate(answers)]


class RecordingVenue:
    """A venue that serves built snapshots, a fixed account, and fills every trade.

    `failing_snapshots` makes that many snapshot reads fail first; `execute_delay`
    makes each execution take that long (use under looptime)."""

    def __init__(self, *, equity: Decimal = Decimal("100000"), execute_delay: float = 0.0) -> None:
        self.equity = equity
        self.execute_delay = execute_delay
        self.failing_snapshots = 0
        self.snapshots: list[str] = []
        self.executed: list[tuple[TradeProposal, str]] = []
        self.executions_running = 0
        self.most_executions_at_once: dict[str, int] = {}

    async def snapshot(self, symbol: str) -> MarketSnapshot:
        self.snapshots.append(symbol)
        if self.failing_snapshots:
            self.failing_snapshots -= 1
            raise ServiceUnavailableError("EService:Unavailable", kraken_error="EService:Unavailable")
        return rising_snapshot(symbol, seed=sum(map(ord, symbol)))

    @asynccontextmanager
    async def trading(self, symbol: str) -> AsyncIterator[None]:
        """One process, one account: nothing to lease or reconcile."""
        yield

    async def risk_state(self, symbol: str, price: Decimal) -> RiskState:
        return RiskState(equity=self.equity, available_quote=self.equity)

    async def execute(self, proposal: TradeProposal, correlation_id: str) -> ExecutionResult:
        self.executions_running += 1
        self.most_executions_at_once[proposal.symbol] = max(
            self.most_executions_at_once.get(proposal.symbol, 0), self.executions_running
        )
        try:
            if self.execute_delay:
                await elapse(self.execute_delay)
            self.executed.append((proposal, correlation_id))
            assert proposal.volume is not None
            position = Position(
                f"P-{len(self.executed)}",
                proposal.symbol,
                PositionSide.LONG if proposal.side is Side.BUY else PositionSide.SHORT,
                proposal.volume,
                proposal.entry_price,
                proposal.stop_loss,
                proposal.take_profit,
                run_id=correlation_id,
            )
            return ExecutionResult(success=True, status=ExecutionStatus.FILLED, position=position)
        finally:
            self.executions_running -= 1


PIPELINE: Sequence[MessageTopic] = (
    MessageTopic.MARKET_DATA,
    MessageTopic.TA_SIGNALS,
    MessageTopic.REGIME_UPDATES,
    MessageTopic.TRADING_SIGNALS,
    MessageTopic.RISK_ALERTS,
    MessageTopic.EXECUTION_EVENTS,
    MessageTopic.PORTFOLIO_UPDATES,
)


def assert_messages_properly_ordered(messages: Sequence[Message]) -> dict[str, list[MessageTopic]]:
    """Within each correlation id the topics follow the pipeline and time never runs
    backwards; returns the topics of each correlation id, in order."""
    by_task: dict[str, list[Message]] = {}
    for message in messages:
        if message.correlation_id is not None:
            by_task.setdefault(message.correlation_id, []).append(message)
    for cid, task_messages in by_task.items():
        stages = [PIPELINE.index(m.topic) for m in task_messages]
        assert stages == sorted(stages), f"{cid}: topics out of order: {[m.topic for m in task_messages]}"
        times = [m.timestamp for m in task_messages]
        assert times == sorted(times), f"{cid}: timestamps run backwards"
    return {cid: [m.topic for m in task_messages] for cid, task_messages in by_task.items()}
