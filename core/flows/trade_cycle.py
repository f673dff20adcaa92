"""One trade cycle for `tg trade`: the coordinator runs snapshot, agents, vote, conflicts,
risk and execution against the exchange; everything is stored under one run id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.decision.coordinator import ConflictInfo, ConflictResolution, CoordinatorAgent, StoppedBy, TaskResult
from core.decision.llm.factory import build_models
from core.decision.market import build_market_snapshot
from core.decision.risk import RiskManagementEngine, trading_history
from core.domain.clock import Clock
from core.domain.config import Settings
from core.domain.enums import Action, ExecutionStatus, PositionStatus
from core.domain.errors import BusyError, StorageError, TgError
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
from core.domain.serialize import order_json, position_json, to_jsonable
from core.exchange import KrakenClient, PairInfo
from core.execution.leases import LeaseKeeper, asset_lease
from core.execution.manager import OrderExecutionManager
from core.execution.reconcile import Reconciler, ReconcileReport
from core.execution.spool import PendingWrites
from core.flows.journal import RunJournal
from core.storage.store import Store

_STOPPED_STATUS: dict[StoppedBy, str] = {"wait": "WAIT", "abort": "ABORTED", "conservative": "BLOCKED"}


_RECONCILE_AFTER = frozenset({ExecutionStatus.UNKNOWN, ExecutionStatus.CLOSED})


def new_run_id() -> str:
    return f"R-{uuid.uuid4().hex[:12]}"


@dataclass
class CycleReport:
    run_id: str
    symbol: str
    price: Decimal
    ta: TAOutput
    regime: RegimeOutput
    decision: TradingDecisionOutput | None
    proposal: TradeProposal | None
    verdict: RiskVerdict | None
    execution: ExecutionResult | None
    db_path: str
    conflict: ConflictInfo | None = None
    resolution: ConflictResolution | None = None
    stopped_by: StoppedBy | None = None
    reconciled: list[str] = field(default_factory=list)  # what reconciliation changed first
    foreign: list[str] = field(default_factory=list)  # what is on the account and not tg's
    unrecorded: list[dict[str, Any]] = field(default_factory=list)  # records storage refused (spool lines)
    storage_errors: list[str] = field(default_factory=list)

    @property
    def fully_stored(self) -> bool:
        return not self.unrecorded and not self.storage_errors

    @property
    def action(self) -> Action:
        if self.decision is None:
            return Action(self.proposal.side.value.upper()) if self.proposal else Action.HOLD
        return self.decision.action

    @property
    def status(self) -> str:
        if self.execution is not None:
            return self.execution.status.value
        if self.verdict is not None and not self.verdict.is_approved():
            return "REJECTED"
        if self.stopped_by is not None:
            return _STOPPED_STATUS[self.stopped_by]
        return "HOLD"

    def to_dict(self) -> dict[str, Any]:
        execution = self.execution
        position = execution.position if execution else None
        return to_jsonable(
            {
                "run_id": self.run_id,
                "symbol": self.symbol,
                "price": self.price,
                "action": self.action,
                "consensus": self.decision.consensus_strength if self.decision else None,
                "confidence": self.decision.confidence if self.decision else None,
                "votes": [
                    {"model": d.model, "action": d.action, "confidence": d.confidence, "valid": d.valid}
                    for d in (self.decision.model_decisions if self.decision else [])
                ],
                "ta": {"bias": self.ta.bias, "confidence": self.ta.confidence},
                "regime": {"regime": self.regime.regime, "confidence": self.regime.confidence},
                "approved": self.verdict.is_approved() if self.verdict else False,
                "risk": {
                    "status": self.verdict.status if self.verdict else None,
                    "reasons": self.verdict.reasons if self.verdict else [],
                },
                "status": self.status,
                "success": execution.success if execution else True,
                "alert_level": execution.alert_level if execution else None,
                "error_message": execution.error_message if execution else None,
                "warnings": execution.warnings if execution else [],
                "retry_count": execution.retry_count if execution else 0,
                "latency_ms": execution.latency_ms if execution else 0.0,
                "orders": [order_json(o) for o in (execution.orders if execution else [])],
                "position": None if position is None else position_json(position),
                "reconciled": self.reconciled,
                "foreign": self.foreign,
                "stored": self.fully_stored,
                "db_path": self.db_path,
                "conflict": self._conflict_dict(),
            }
        )

    def _conflict_dict(self) -> dict[str, Any] | None:
        if self.conflict is None or self.resolution is None:
            return None
        r = self.resolution
        return {
            "type": self.conflict.conflict_type,
            "details": list(self.conflict.details),
            "action": r.action,
            "confidence": r.confidence,
            "reasoning": r.reasoning,
            "size_factor": r.size_factor,
            "stop_loss": r.stop_loss,
            "model": r.model,
            "notes": list(r.notes),
            "fallback": r.fallback,
        }

    @classmethod
    def from_result(cls, run_id: str, result: TaskResult, db_path: str) -> CycleReport:
        if result.snapshot is None or result.ta is None or result.regime is None:
            raise TgError(f"run {run_id}: the cycle for {result.symbol} ended before its analysis: {result.note}")
        return cls(
            run_id=run_id,
            symbol=result.snapshot.symbol,
            price=result.snapshot.price,
            ta=result.ta,
            regime=result.regime,
            decision=result.decision,
            proposal=result.proposal,
            verdict=result.verdict,
            execution=result.execution,
            db_path=db_path,
            conflict=result.conflict,
            resolution=result.resolution,
            stopped_by=result.stopped_by,
        )


async def read_risk_state(
    client: KrakenClient, store: Store, pair: PairInfo, price: Decimal, *, now: float
) -> RiskState:
    """The account as the exchange reports it, valued in the pair's quote currency, with the
    open positions, today's (UTC) realized P&L and the losing streak from the database."""
    balances = await client.balance()
    quote = balances.get(pair.quote, Decimal("0"))
    base = balances.get(pair.base, Decimal("0"))
    open_positions = store.positions(status=PositionStatus.OPEN)
    equity = quote + base * price
    history = trading_history(store.realized_pnls(), equity, now)
    same_asset = pair.symbol.split("/")[0]
    return RiskState(
        equity=equity,
        available_quote=quote,
        entry_fee=pair.taker_fee_pct / 100,
        # tg sells only what it owns, and all it owns is in its open, protected positions:
        # what else the account holds is foreign (core.domain.ownership)
        available_base=Decimal(0),
        open_positions=len(open_positions),
        open_exposure=sum(
            (p.size * p.entry_price for p in open_positions if p.symbol.split("/")[0] == same_asset), Decimal("0")
        ),
        total_exposure=sum((p.size * p.entry_price for p in open_positions), Decimal("0")),
        daily_pnl=history.daily_pnl,
        weekly_pnl=history.weekly_pnl,
        consecutive_losses=history.consecutive_losses,
        last_loss_at=history.last_loss_at,
        drawdown=history.drawdown,
        now=now,
    )


class ExchangeVenue:
    """The coordinator's trading venue: one Kraken account (or the sandbox) for markets,
    balances and orders, and tg's database for positions.

    `trading(symbol)` is the critical section the coordinator runs a trading decision
    in: it holds the lease of the pair's base asset on the account (so no other tg
    process reconciles or trades it meanwhile), reconciles first (the risk engine then
    sees the account as it is), and reconciles again after an execution whose outcome
    the exchange did not show (what filled unseen is protected now, not next run)."""

    def __init__(
        self,
        client: KrakenClient,
        store: Store,
        clock: Clock,
        settings: Settings,
        *,
        spool: PendingWrites | None = None,
        leases: LeaseKeeper | None = None,
        reconcile: bool = True,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self._client = client
        self._stopping = stopping
        """Set when the command stops: a decision still waiting for its lease gives up."""
        self._store = store
        self._clock = clock
        self._settings = settings
        self._spool = spool
        self._leases = leases
        self._reconciler = (
            Reconciler(client, store, clock, spool=spool, settings=settings.execution, leases=leases)
            if reconcile
            else None
        )
        self.reconciled: dict[str, list[ReconcileReport]] = {}
        """By symbol: what the reconciliations of its last trading decision found."""
        self.executed = False
        """Whether an execution has started: from then on a command is not cut short
        (an entry on its way may fill, and is protected before tg stops)."""
        self._executions: dict[str, ExecutionResult] = {}

    async def snapshot(self, symbol: str) -> MarketSnapshot:
        return await build_market_snapshot(self._client, symbol, self._clock)

    @asynccontextmanager
    async def trading(self, symbol: str) -> AsyncIterator[None]:
        pair = await self._client.resolve_pair(symbol)
        lease = asset_lease(self._client.account, pair.base)
        if self._leases is not None:
            wait_s = self._settings.execution.lease_wait_s
            holder = await self._leases.acquire(
                lease, wait_s=wait_s, what=f"{pair.symbol} on this account", unless=self._stopping
            )
            if holder is not None and self._stopping is not None and self._stopping.is_set():
                raise BusyError(
                    f"stopping: no {pair.symbol} decision while tg process {holder.pid} on {holder.host} "
                    "is still trading it on this account"
                )
            if holder is not None:
                raise BusyError(
                    f"tg process {holder.pid} on {holder.host} is still trading {pair.symbol} on this account "
                    f"after {wait_s:g} s; try again when it is done (or raise execution.lease_wait_s)"
                )
        reports = self.reconciled[pair.symbol] = []
        self._executions.pop(pair.symbol, None)
        try:
            if self._reconciler is not None:
                reports.append(await self._reconciler.reconcile())
            yield
            execution = self._executions.get(pair.symbol)
            if self._reconciler is not None and execution is not None and execution.status in _RECONCILE_AFTER:
                reports.append(await self._reconciler.reconcile())
        finally:
            if self._leases is not None:
                self._leases.release(lease)

    async def risk_state(self, symbol: str, price: Decimal) -> RiskState:
        pair = await self._client.resolve_pair(symbol)
        return await read_risk_state(self._client, self._store, pair, price, now=self._clock.time())

    async def execute(self, proposal: TradeProposal, correlation_id: str) -> ExecutionResult:
        manager = OrderExecutionManager(
            self._client,
            self._store,
            clock=self._clock,
            settings=self._settings.execution,
            run_id=correlation_id,
            spool=self._spool,
        )
        self.executed = True
        result = self._executions[proposal.symbol] = await manager.execute_trade(proposal)
        return result


class TradeCycle:
    """Runs one cycle for one symbol through the coordinator; every step's output is stored."""

    def __init__(
        self,
        client: KrakenClient,
        store: Store,
        clock: Clock,
        settings: Settings,
        *,
        spool: PendingWrites | None = None,
        leases: LeaseKeeper | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._settings = settings
        self._venue = ExchangeVenue(client, store, clock, settings, spool=spool, leases=leases or LeaseKeeper(store))

    @property
    def executed(self) -> bool:
        """Whether the cycle's execution has started (ExchangeVenue.executed)."""
        return self._venue.executed

    async def run(self, symbol: str, *, manual: TradeProposal | None = None) -> CycleReport:
        """The cycle; with `manual`, the operator's proposal replaces the vote."""
        pair = await self._client.resolve_pair(symbol)
        run_id = new_run_id()
        journal = RunJournal.start(
            self._store, run_id, kind="trade", symbol=pair.symbol, params={"manual": manual is not None}
        )
        # Remote models wait out rate limits in real time, whatever clock the market runs on.
        models = build_models(self._settings)
        coordinator = CoordinatorAgent.from_models(
            models,
            self._venue,
            risk_engine=RiskManagementEngine(self._settings.risk),
            store=self._store,
            clock=self._clock,
            config=self._settings.coordinator,
        )
        with journal.interruptible(lambda: {"symbol": pair.symbol}):  # a cycle cut short is kept as such
            try:
                result = await coordinator.run_cycle(pair.symbol, correlation_id=run_id, manual=manual)
            finally:
                await coordinator.close()
                await models.aclose()
        report = CycleReport.from_result(run_id, result, self._store.location)
        for reconciled in self._venue.reconciled.get(pair.symbol, []):
            report.reconciled += reconciled.changes + [f"could not repair: {e}" for e in reconciled.errors]
            report.foreign = reconciled.foreign
            report.unrecorded += reconciled.unrecorded
        if report.execution is not None:
            report.unrecorded += report.execution.unrecorded
        try:
            journal.finish(report.status, report.to_dict())
        except StorageError as exc:
            report.storage_errors.append(f"the run's summary was not stored: {exc}")
        return report
