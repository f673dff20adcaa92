"""CoordinatorAgent: runs the agents per symbol in dependency order, many symbols at
once, never two trade decisions for one symbol at a time; settles conflicts between
the agents through a conflict-resolution model; steps down through degradation
levels when things keep failing, and back up when they work again. The conflict
rules themselves are in core.decision.conflicts.

Tasks, each with its dependencies run first, in order, on one snapshot (so that all
a task publishes describes the same moment and nothing it uses is stale):
- technical_analysis: snapshot -> TA
- regime_detection:   snapshot -> TA -> regime
- trading_decision:   snapshot -> TA -> regime -> vote -> conflicts -> risk -> execution
Every output goes out on the message bus under the task's correlation id. Given a
store, the coordinator attaches the recorder (core.decision.recorder) to its bus, which
stores what is said under that id.

No double trading: trading_decision holds the symbol's lock from the snapshot to the
end of execution, and a request for a symbol whose decision is running is skipped
(status "skipped"), not queued: it would decide on the same market a moment later
and could trade twice. The lock is per process.

Time limits: every task has one. For trading_decision it covers everything up to the
risk verdict and never the execution: an order in flight is not abandoned halfway
(the execution manager has its own deadlines).

Degradation: a task that raises or times out, a vote without quorum, a failed
execution and a bus subscriber that failed to handle a message are failures; `failures_per_step` of them in a row step the level down
(normal -> reduced: smaller size -> conservative: no new entries -> halted: no
trading decisions at all) and `successes_per_step` successes in a row step it up.
Analysis tasks keep running when halted, so their successes bring trading back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from core.decision.agents import (
    RegimeDetectionAgent,
    TechnicalAnalysisAgent,
    TradingDecisionAgent,
    create_trade_proposal,
)
from core.decision.bus import MessageBus, MessagePriority, MessageTopic, create_message
from core.decision.conflicts import (
    ConflictInfo,
    ConflictResolution,
    ResolutionAnswer,
    clamp_resolution,
    conflict_prompt,
    detect_conflicts,
    price_only_snapshot,
)
from core.decision.llm.factory import ModelSet
from core.decision.llm.interface import LanguageModel, ModelContext
from core.decision.llm.offline import OfflineConflictResolver
from core.decision.llm.parsing import ConflictAction, ask
from core.decision.recorder import BusRecorder
from core.decision.risk import RiskManagementEngine
from core.domain.clock import Clock, SystemClock
from core.domain.config import CoordinatorConfig, RiskSettings
from core.domain.enums import VerdictStatus
from core.domain.errors import ConfigError, TaskTimeoutError, TgError
from core.domain.models import (
    ExecutionResult,
    MarketSnapshot,
    RegimeOutput,
    RiskState,
    RiskVerdict,
    TAOutput,
    TradeProposal,
    TradingDecisionOutput,
)
from core.domain.serialize import to_jsonable
from core.storage.store import Store

log = logging.getLogger(__name__)

SOURCE = "coordinator"


class TaskName(StrEnum):
    TECHNICAL_ANALYSIS = "technical_analysis"
    REGIME_DETECTION = "regime_detection"
    TRADING_DECISION = "trading_decision"


class TaskStatus(StrEnum):
    COMPLETED = "completed"
    SKIPPED = "skipped"  # the symbol's decision was already running, or trading is halted
    FAILED = "failed"
    TIMED_OUT = "timed_out"


class DegradationLevel(StrEnum):
    NORMAL = "normal"
    REDUCED = "reduced"  # trades at `reduced_size_factor` of their size
    CONSERVATIVE = "conservative"  # no new entries
    HALTED = "halted"  # no trading decisions


LEVELS: tuple[DegradationLevel, ...] = tuple(DegradationLevel)


class TradingVenue(Protocol):
    """Where the coordinator reads markets and the account, and sends trades."""

    async def snapshot(self, symbol: str) -> MarketSnapshot: ...

    def trading(self, symbol: str) -> AbstractAsyncContextManager[None]:
        """The critical section a trading decision runs in, from its snapshot to the end
        of its execution (a lease against other processes, reconciliation first)."""
        ...

    async def risk_state(self, symbol: str, price: Decimal) -> RiskState: ...

    async def execute(self, proposal: TradeProposal, correlation_id: str) -> ExecutionResult: ...


StoppedBy = Literal["wait", "abort", "conservative"]


@dataclass
class TaskResult:
    """What one task produced; the fields of the steps it did not reach stay None."""

    task: TaskName
    symbol: str
    correlation_id: str
    status: TaskStatus = TaskStatus.COMPLETED
    snapshot: MarketSnapshot | None = None
    ta: TAOutput | None = None
    regime: RegimeOutput | None = None
    decision: TradingDecisionOutput | None = None
    conflict: ConflictInfo | None = None
    resolution: ConflictResolution | None = None
    proposal: TradeProposal | None = None
    verdict: RiskVerdict | None = None
    execution: ExecutionResult | None = None
    stopped_by: StoppedBy | None = None  # what kept a proposal from the exchange, besides risk
    level: DegradationLevel = DegradationLevel.NORMAL  # the level the task ran at
    note: str = ""
    healthy: bool = True  # False counts as a failure towards degradation


def new_correlation_id() -> str:
    return f"C-{uuid.uuid4().hex[:12]}"


class CoordinatorAgent:
    """Schedules and runs the agents; see the module docstring for the rules."""

    def __init__(
        self,
        venue: TradingVenue | None = None,
        *,
        ta_agent: TechnicalAnalysisAgent | None = None,
        regime_agent: RegimeDetectionAgent | None = None,
        decision_agent: TradingDecisionAgent | None = None,
        conflict_model: LanguageModel | None = None,
        risk_engine: RiskManagementEngine | None = None,
        store: Store | None = None,
        clock: Clock | None = None,
        message_bus: MessageBus | None = None,
        config: CoordinatorConfig | Mapping[str, Any] | None = None,
    ) -> None:
        self._venue = venue
        self._ta = ta_agent or TechnicalAnalysisAgent()
        self._regime = regime_agent or RegimeDetectionAgent()
        self._decision = decision_agent or TradingDecisionAgent()
        self._conflict_model = conflict_model or OfflineConflictResolver()
        self._risk = risk_engine or RiskManagementEngine(RiskSettings())
        self._recorder = BusRecorder(store) if store is not None else None
        """Attached to the bus before the first message: what is said is recorded."""
        self._clock = clock or SystemClock()
        self._owns_bus = message_bus is None
        self._message_bus = message_bus if message_bus is not None else MessageBus(clock=self._clock)
        self._config = _parse_config(config)
        self._trading_locks: dict[str, asyncio.Lock] = {}
        self._level = DegradationLevel.NORMAL
        self._failures = 0
        self._successes = 0
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._subscriber_failures: dict[str, int] = {}

    @classmethod
    def from_models(cls, models: ModelSet, venue: TradingVenue | None = None, **kwargs: Any) -> CoordinatorAgent:
        """A coordinator whose agents ask the configured model slots."""
        timeout = models.answer_timeout_s
        return cls(
            venue,
            ta_agent=TechnicalAnalysisAgent(models.ta, timeout_s=timeout),
            regime_agent=RegimeDetectionAgent(models.regime, timeout_s=timeout),
            decision_agent=TradingDecisionAgent(models.traders, quorum=models.quorum, model_timeout_s=timeout),
            conflict_model=models.conflict,
            **kwargs,
        )

    @property
    def degradation_level(self) -> DegradationLevel:
        return self._level

    @property
    def message_bus(self) -> MessageBus:
        return self._message_bus

    # schedule

    async def start(self) -> None:
        """Run every task for every configured symbol at its interval until stop().

        The pauses use the clock's sleep, so the schedule needs a clock that waits
        (SystemClock, or a fast-forwarding loop in tests), not a VirtualClock.
        """
        if self._loops:
            return
        self._stopping.clear()
        self._loops = [
            asyncio.create_task(self._loop(task, symbol), name=f"coordinator-{task}-{symbol}")
            for symbol in self._config.symbols
            for task in TaskName
            if task.value in self._config.scheduled
        ]
        await self._publish(MessageTopic.SYSTEM_EVENTS, {"event": "started", "symbols": self._config.symbols}, None)

    async def stop(self) -> None:
        """Let running tasks finish (an execution is never cut short), end the schedule,
        and close the bus if the coordinator made it."""
        self._stopping.set()
        loops, self._loops = self._loops, []
        await asyncio.gather(*loops)
        if self._owns_bus:
            await self._message_bus.close()

    async def close(self) -> None:
        await self.stop()

    async def _loop(self, task: TaskName, symbol: str) -> None:
        interval = self._config.intervals_s.of(task)
        while not self._stopping.is_set():
            await self._run_scheduled_task(task, symbol)
            await self._pause(interval)

    async def _pause(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()

    # running tasks

    async def _run_scheduled_task(self, task_name: str, symbol: str) -> TaskResult:
        """Run one task; its failure comes back as a result, because the schedule must outlive it."""
        task = TaskName(task_name)
        correlation_id = new_correlation_id()
        try:
            return await self._run(task, symbol, correlation_id, manual=None)
        except TaskTimeoutError as exc:
            return TaskResult(task, symbol, correlation_id, TaskStatus.TIMED_OUT, level=self._level, note=str(exc))
        except Exception as exc:
            if isinstance(
                exc, TgError
            ):  # a failure tg knows (another tg busy, the exchange down): its message says it all
                log.warning("coordinator task %s for %s failed: %s", task, symbol, exc)
            else:  # a bug: its traceback is what finds it
                log.exception("coordinator task %s for %s failed", task, symbol)
            return TaskResult(
                task,
                symbol,
                correlation_id,
                TaskStatus.FAILED,
                level=self._level,
                note=f"{type(exc).__name__}: {exc}",
            )

    async def run_cycle(
        self, symbol: str, *, correlation_id: str | None = None, manual: TradeProposal | None = None
    ) -> TaskResult:
        """One trading decision, now; with `manual`, the operator's proposal replaces the vote.

        Unlike a scheduled task, a failure is raised (after it counts towards degradation).
        """
        return await self._run(TaskName.TRADING_DECISION, symbol, correlation_id or new_correlation_id(), manual=manual)

    async def run_all(self, symbols: list[str], task: TaskName = TaskName.TRADING_DECISION) -> list[TaskResult]:
        """One task for many symbols at once."""
        return list(await asyncio.gather(*(self._run_scheduled_task(task, s) for s in symbols)))

    async def _run(
        self, task: TaskName, symbol: str, correlation_id: str, *, manual: TradeProposal | None
    ) -> TaskResult:
        if task is not TaskName.TRADING_DECISION:
            return await self._tracked(task, symbol, correlation_id, manual)
        if self._level is DegradationLevel.HALTED:
            return self._skipped(task, symbol, correlation_id, "trading is halted after repeated failures")
        lock = self._trading_locks.setdefault(symbol, asyncio.Lock())
        if lock.locked():
            return self._skipped(task, symbol, correlation_id, f"a trading decision for {symbol} is already running")
        async with lock, self._require_venue().trading(symbol):
            return await self._tracked(task, symbol, correlation_id, manual)

    def _skipped(self, task: TaskName, symbol: str, correlation_id: str, why: str) -> TaskResult:
        log.info("coordinator skipped %s for %s: %s", task, symbol, why)
        return TaskResult(task, symbol, correlation_id, TaskStatus.SKIPPED, level=self._level, note=why)

    async def _tracked(
        self, task: TaskName, symbol: str, correlation_id: str, manual: TradeProposal | None
    ) -> TaskResult:
        result = TaskResult(task, symbol, correlation_id, level=self._level)
        limit = self._config.timeouts_s.of(task)
        try:
            try:
                async with asyncio.timeout(limit):
                    await self._decide(result, manual)
            except TimeoutError:
                raise TaskTimeoutError(
                    f"{task} for {symbol} took longer than its {limit:g}s limit; "
                    "a model or the exchange is not answering"
                ) from None
            await self._trade(result)
        except Exception as exc:
            await self._record(False, f"{task} for {symbol}: {exc}")
            raise
        failing = self._failing_subscribers()
        if failing:
            result.healthy = False
            result.note = "; ".join(filter(None, (result.note, f"bus subscriber(s) failing: {', '.join(failing)}")))
        await self._record(result.healthy, f"{task} for {symbol}: {result.note}")
        return result

    def _failing_subscribers(self) -> list[str]:
        """The subscribers that failed to handle a message since the last task ended."""
        failing = []
        for name, stats in self._message_bus.stats().items():
            if stats.failed > self._subscriber_failures.get(name, 0):
                failing.append(name)
            self._subscriber_failures[name] = stats.failed
        return failing

    async def _decide(self, result: TaskResult, manual: TradeProposal | None) -> None:
        """Everything up to the risk verdict, in dependency order."""
        cid, symbol = result.correlation_id, result.symbol
        snapshot = result.snapshot = await self._require_venue().snapshot(symbol)
        await self._publish(
            MessageTopic.MARKET_DATA,
            {"symbol": snapshot.symbol, "price": snapshot.price, "timestamp": snapshot.timestamp},
            cid,
            source="market",
        )
        ta = result.ta = await self._ta.process(snapshot)
        await self._publish(MessageTopic.TA_SIGNALS, ta, cid, source="technical_analysis")
        if result.task is TaskName.TECHNICAL_ANALYSIS:
            return
        regime = result.regime = await self._regime.process(snapshot, ta)
        await self._publish(MessageTopic.REGIME_UPDATES, regime, cid, source="regime_detection")
        if result.task is TaskName.REGIME_DETECTION:
            return
        if manual is not None:
            result.proposal = dataclasses.replace(manual, symbol=snapshot.symbol)
        else:
            await self._vote(result, snapshot, ta, regime)
        if result.proposal is None:
            return
        if LEVELS.index(self._level) >= LEVELS.index(DegradationLevel.CONSERVATIVE):
            result.stopped_by = "conservative"
            result.note = f"degradation level {self._level}: no new entries"
            return
        state = await self._require_venue().risk_state(snapshot.symbol, snapshot.price)
        verdict = result.verdict = self._sized(self._risk.validate_trade(result.proposal, state), result)
        await self._publish(
            MessageTopic.RISK_ALERTS,
            {"event": "verdict", **to_jsonable(verdict)},
            cid,
            source="risk",
            priority=MessagePriority.NORMAL if verdict.is_approved() else MessagePriority.HIGH,
        )

    async def _vote(self, result: TaskResult, snapshot: MarketSnapshot, ta: TAOutput, regime: RegimeOutput) -> None:
        cid = result.correlation_id
        decision = result.decision = await self._decision.process(snapshot, ta, regime)
        await self._publish(MessageTopic.TRADING_SIGNALS, decision, cid, source="trading_decision")
        valid = sum(1 for d in decision.model_decisions if d.valid)
        if valid < self._decision.quorum:
            result.healthy = False
            result.note = f"only {valid} valid votes, quorum is {self._decision.quorum}"
        proposal = create_trade_proposal(decision, regime)
        conflicts = detect_conflicts(ta, regime, decision, self._config.conflicts)
        if conflicts:
            result.conflict = ConflictInfo(
                conflict_type=conflicts[0][0].value,
                ta_output=ta,
                regime_output=regime,
                decision_output=decision,
                details=tuple(f"{kind.value}: {why}" for kind, why in conflicts),
                snapshot=snapshot,
                correlation_id=cid,
            )
            resolution = result.resolution = await self._resolve_conflict(result.conflict)
            if proposal is not None and not resolution.allows_trade:
                result.stopped_by = "wait" if resolution.action is ConflictAction.WAIT else "abort"
                result.note = f"{result.conflict.conflict_type}: {resolution.action}"
                proposal = None
            elif proposal is not None and resolution.stop_loss is not None:
                proposal = dataclasses.replace(proposal, stop_loss=resolution.stop_loss)
        result.proposal = proposal

    def _sized(self, verdict: RiskVerdict, result: TaskResult) -> RiskVerdict:
        """The approved volume times the conflict ruling's and the degradation level's factors."""
        volume = verdict.proposal.volume
        if not verdict.is_approved() or volume is None:
            return verdict
        factors: list[tuple[Decimal, str]] = []
        if result.resolution is not None and result.resolution.size_factor < 1:
            factors.append((result.resolution.size_factor, f"conflict ruling {result.resolution.action}"))
        if self._level is DegradationLevel.REDUCED:
            factors.append((self._config.degradation.reduced_size_factor, "degradation level reduced"))
        if not factors:
            return verdict
        reasons = list(verdict.reasons)
        for factor, why in factors:
            volume *= factor
            reasons.append(f"coordinator: {why} sizes at {factor}x -> {volume}")
        return RiskVerdict(VerdictStatus.REDUCED, reasons, dataclasses.replace(verdict.proposal, volume=volume))

    async def _trade(self, result: TaskResult) -> None:
        """Execution, outside the task's time limit: an order in flight is seen through."""
        verdict = result.verdict
        if verdict is None or not verdict.is_approved():
            return
        cid, symbol = result.correlation_id, result.symbol
        execution = result.execution = await self._require_venue().execute(verdict.proposal, cid)
        if not execution.success:
            result.healthy = False
            result.note = execution.error_message or "execution failed"
        urgent = execution.alert_level is not None
        await self._publish(
            MessageTopic.EXECUTION_EVENTS,
            {
                "symbol": symbol,
                "success": execution.success,
                "status": execution.status,
                "orders": execution.orders,
                "alert_level": execution.alert_level,
                "error_message": execution.error_message,
                "warnings": execution.warnings,
            },
            cid,
            source="execution",
            priority=MessagePriority.URGENT if urgent else MessagePriority.NORMAL,
        )
        if execution.position is not None:
            await self._publish(MessageTopic.PORTFOLIO_UPDATES, execution.position, cid, source="execution")

    # conflicts

    async def _resolve_conflict(self, info: ConflictInfo) -> ConflictResolution:
        """Ask the conflict model for a ruling, clamp it, store and publish it."""
        snapshot = info.snapshot or price_only_snapshot(info, self._clock.time())
        context = ModelContext(
            task="conflict",
            snapshot=snapshot,
            indicators=info.ta_output.indicators if info.ta_output is not None else {},
            ta=info.ta_output,
            regime=info.regime_output,
            decision=info.decision_output,
            conflict_type=info.conflict_type,
        )
        settings = self._config.conflicts
        parsed = await ask(
            self._conflict_model,
            conflict_prompt(info),
            context=context,
            schema=ResolutionAnswer,
            timeout_s=settings.timeout_s,
        )
        resolution = clamp_resolution(
            parsed.answer, parsed.errors, info.decision_output, settings, self._conflict_model.name
        )
        payload = self._conflict_payload(info, resolution)
        await self._publish(
            MessageTopic.RISK_ALERTS,
            {"event": "conflict", "symbol": info.symbol, "conflict_type": info.conflict_type, **payload},
            info.correlation_id,
            priority=MessagePriority.HIGH,
        )
        log.info(
            "conflict %s on %s resolved: %s (%s)",
            info.conflict_type,
            info.symbol,
            resolution.action,
            resolution.reasoning,
        )
        return resolution

    @staticmethod
    def _conflict_payload(info: ConflictInfo, resolution: ConflictResolution) -> dict[str, Any]:
        decision, ta, regime = info.decision_output, info.ta_output, info.regime_output
        return to_jsonable(
            {
                "details": list(info.details),
                "resolution": resolution,
                "decision": None
                if decision is None
                else {
                    "action": decision.action,
                    "consensus": decision.consensus_strength,
                    "confidence": decision.confidence,
                    "votes": decision.votes,
                },
                "ta": None if ta is None else {"bias": ta.bias, "confidence": ta.confidence},
                "regime": None
                if regime is None
                else {"regime": regime.regime, "confidence": regime.confidence, "volatility": regime.volatility},
            }
        )

    # degradation

    async def _record(self, success: bool, what: str) -> None:
        steps = self._config.degradation
        before = self._level
        index = LEVELS.index(before)
        if success:
            self._failures, self._successes = 0, self._successes + 1
            if self._successes >= steps.successes_per_step and index > 0:
                self._level, self._successes = LEVELS[index - 1], 0
        else:
            self._successes, self._failures = 0, self._failures + 1
            if self._failures >= steps.failures_per_step and index < len(LEVELS) - 1:
                self._level, self._failures = LEVELS[index + 1], 0
        if self._level is not before:
            log.warning("coordinator degradation %s -> %s after %s", before, self._level, what)
            await self._publish(
                MessageTopic.SYSTEM_EVENTS,
                {"event": "degradation", "from": before, "to": self._level, "after": what},
                None,
                priority=MessagePriority.URGENT if self._level is DegradationLevel.HALTED else MessagePriority.HIGH,
            )

    # plumbing

    def _require_venue(self) -> TradingVenue:
        if self._venue is None:
            raise ConfigError("the coordinator has no trading venue to read markets from; give it one")
        return self._venue

    async def _publish(
        self,
        topic: MessageTopic,
        payload: object,
        correlation_id: str | None,
        *,
        source: str = SOURCE,
        priority: MessagePriority = MessagePriority.NORMAL,
    ) -> None:
        """Publish `payload` (a dict or a dataclass, turned JSON-safe here, once)."""
        if self._recorder is not None:
            recorder, self._recorder = self._recorder, None
            await recorder.attach(self._message_bus)
        await self._message_bus.publish(
            create_message(
                topic,
                source,
                to_jsonable(payload),
                priority=priority,
                correlation_id=correlation_id,
                clock=self._clock,
            )
        )


def _parse_config(config: CoordinatorConfig | Mapping[str, Any] | None) -> CoordinatorConfig:
    if isinstance(config, CoordinatorConfig):
        return config
    try:
        return CoordinatorConfig.model_validate(config or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid coordinator setting {where}: {first['msg']}") from exc
