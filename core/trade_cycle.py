"""One trade cycle: snapshot, agents, vote, risk, execution, all stored under one run id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from core.agents import (
    RegimeDetectionAgent,
    TechnicalAnalysisAgent,
    TradingDecisionAgent,
    create_trade_proposal,
)
from core.clock import Clock, SystemClock
from core.config import Settings
from core.exchange import KrakenClient, PairInfo
from core.execution import OrderExecutionManager
from core.market import build_market_snapshot
from core.models import (
    Action,
    ExecutionResult,
    PositionStatus,
    RegimeOutput,
    RiskState,
    RiskVerdict,
    TAOutput,
    TradeProposal,
    TradingDecisionOutput,
)
from core.serialize import to_jsonable
from core.risk import RiskManagementEngine
from core.storage import Store


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
                "orders": [
                    {
                        "role": o.role,
                        "txid": o.external_id,
                        "client_order_id": o.client_order_id,
                        "type": o.order_type,
                        "side": o.side,
                        "volume": o.volume,
                        "filled_volume": o.filled_volume,
                        "price": o.price if o.price is not None else o.avg_fill_price,
                        "status": o.status,
                    }
                    for o in (execution.orders if execution else [])
                ],
                "position": None
                if position is None
                else {
                    "id": position.id,
                    "status": position.status,
                    "side": position.side,
                    "size": position.size,
                    "entry_price": position.entry_price,
                    "stop_loss": position.stop_loss,
                    "take_profit": position.take_profit,
                },
                "db_path": self.db_path,
            }
        )


async def read_risk_state(client: KrakenClient, store: Store, pair: PairInfo, price: Decimal) -> RiskState:
    """The account as the exchange reports it, valued in the pair's quote currency."""
    balances = await client.balance()
    quote = balances.get(pair.quote, Decimal("0"))
    base = balances.get(pair.base, Decimal("0"))
    open_positions = store.positions(status=PositionStatus.OPEN)
    exposure = sum((p.size * p.entry_price for p in open_positions if p.symbol == pair.symbol), Decimal("0"))
    return RiskState(
        equity=quote + base * price,
        available_quote=quote,
        open_positions=len(open_positions),
        open_exposure=exposure,
    )


class TradeCycle:
    """Runs one cycle for one symbol; every step's output is stored."""

    def __init__(self, client: KrakenClient, store: Store, clock: Clock, settings: Settings) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._settings = settings
        self._risk = RiskManagementEngine(settings.risk)
        self._wall = SystemClock()  # runs are listed by when a person ran them, not by market time

    async def run(self, symbol: str, *, manual: TradeProposal | None = None) -> CycleReport:
        """Run the cycle; with `manual`, skip the agents and take the operator's proposal."""
        pair = await self._client.resolve_pair(symbol)
        run_id = new_run_id()
        self._store.start_run(
            run_id, kind="trade", symbol=pair.symbol, started_at=self._wall.time(),
            params={"manual": manual is not None},
        )
        snapshot = await build_market_snapshot(self._client, pair.symbol, self._clock)
        ta = await TechnicalAnalysisAgent().process(snapshot)
        regime = await RegimeDetectionAgent().process(snapshot, ta)
        now = self._clock.time()
        self._store.add_agent_output(run_id, agent="technical_analysis", symbol=pair.symbol, payload=to_jsonable(ta), created_at=now)
        self._store.add_agent_output(run_id, agent="regime_detection", symbol=pair.symbol, payload=to_jsonable(regime), created_at=now)

        decision: TradingDecisionOutput | None = None
        if manual is None:
            decision = await TradingDecisionAgent().process(snapshot, ta, regime)
            self._store.add_votes(run_id, symbol=pair.symbol, decisions=decision.model_decisions, created_at=now)
            proposal = create_trade_proposal(decision, regime)
        else:
            proposal = replace(manual, symbol=pair.symbol)

        verdict: RiskVerdict | None = None
        execution: ExecutionResult | None = None
        if proposal is not None:
            state = await read_risk_state(self._client, self._store, pair, snapshot.price)
            verdict = self._risk.validate_trade(proposal, state)
            self._store.add_agent_output(run_id, agent="risk", symbol=pair.symbol, payload=to_jsonable(verdict), created_at=now)
            if verdict.is_approved():
                manager = OrderExecutionManager(
                    self._client, self._store, clock=self._clock,
                    settings=self._settings.execution, run_id=run_id,
                )
                execution = await manager.execute_trade(verdict.proposal)
                if execution.alert_level is not None:
                    self._store.add_alert(
                        run_id, level=execution.alert_level.value,
                        message=execution.error_message or "; ".join(execution.warnings),
                        created_at=self._clock.time(),
                    )

        report = CycleReport(
            run_id=run_id, symbol=pair.symbol, price=snapshot.price, ta=ta, regime=regime,
            decision=decision, proposal=proposal, verdict=verdict, execution=execution,
            db_path=str(self._store.path),
        )
        self._store.finish_run(run_id, status=report.status, finished_at=self._wall.time(), summary=report.to_dict())
        return report
