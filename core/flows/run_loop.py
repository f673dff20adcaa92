"""`tg run`: the trade cycle, continuously, on the coordinator's schedule, for several
symbols, with the safety invariants checked after every cycle.

The coordinator's schedule makes a trading decision for each symbol every `every`
seconds (through the same venue, lease, reconciliation, risk and execution as `tg
trade`). Between decisions a supervisor reconciles (under its own lease, so never in
the middle of an execution) and holds the account against the invariants; a live view
follows the bus. Stopping (the end of `--for`, or SIGINT/SIGTERM) lets an execution in
flight finish: a position never ends up without its stop because tg was told to stop.
On the embedded sandbox time is simulated (a fast-forwarding loop), so days run in
seconds; against a served sandbox or Kraken it is the wall clock's.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.decision.bus import Message, MessageTopic
from core.decision.coordinator import CoordinatorAgent
from core.decision.llm.factory import build_models
from core.decision.risk import RiskManagementEngine
from core.domain.clock import Clock
from core.domain.config import CoordinatorConfig, Settings, TaskSeconds
from core.domain.durations import format_duration
from core.domain.enums import PositionStatus
from core.domain.errors import ExchangeError
from core.domain.serialize import position_json
from core.exchange import KrakenClient
from core.exchange.account import ExchangeTruth
from core.execution.invariants import INVARIANTS, reconcile_and_check
from core.execution.leases import LeaseKeeper
from core.execution.reconcile import Reconciler
from core.execution.spool import PendingWrites
from core.flows.journal import RunJournal
from core.flows.trade_cycle import ExchangeVenue, new_run_id
from core.storage.store import Store

TruthSource = Callable[[], Awaitable[ExchangeTruth]]
FaultLog = Callable[[], Awaitable[list[dict[str, Any]]]]

PROGRESS_EVERY_S = 5.0
"""How often (wall-clock seconds) a run records its progress: a kill loses at most this much."""
RANDOM_RATE = 0.03
"""Under `--fault random`, the chance each fault has to hit each call it could hit."""
RANDOM_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "partial-fill": {"ratio": ("0.25", "0.5")},
    "vanish": {"mode": ("dropped", "hidden")},
    "ghost": {"variant": ("timeout", "internal-error", "html-5xx")},
    "latency": {"seconds": ("1", "5")},
    "stale-visibility": {"seconds": ("5", "30")},
}


def random_faults(catalog: list[str], seed: int) -> list[str]:
    """Every fault of the catalog as a standing rule that hits now and then, with
    seeded options: a month of a bad exchange."""
    rng = random.Random(seed)
    specs = []
    for name in catalog:
        options = [f"{key}={rng.choice(values)}" for key, values in RANDOM_OPTIONS.get(name, {}).items()]
        specs.append(":".join([name, ",".join([f"probability={RANDOM_RATE}", "times=100000", *options])]))
    return specs


@dataclass
class SymbolView:
    action: str = "-"
    status: str = "-"
    at: float | None = None


@dataclass
class RunState:
    """What the live view shows, kept up to date by the bus and the supervisor."""

    symbols: dict[str, SymbolView]
    started_at: float
    now: float
    simulated: bool
    cycles: int = 0
    trades: int = 0
    alerts: list[str] = field(default_factory=list)
    degradation: str = "normal"
    checks: int = 0
    violations: Counter[str] = field(default_factory=Counter)
    violation_log: list[dict[str, Any]] = field(default_factory=list)
    """The first SHOWN_VIOLATIONS broken invariants, each with what broke and when."""
    injected: Counter[str] = field(default_factory=Counter)
    open_positions: list[dict[str, Any]] = field(default_factory=list)
    unjudged: Counter[str] = field(default_factory=Counter)
    """Asset -> how many checks left it to an execution in flight on it (this run's own
    decision, or another tg's): the check after the run's end judges every one of this run's."""


SHOWN_VIOLATIONS = 50


class RunView:
    """A bus subscriber: the run's decisions, trades, alerts and degradation, as they happen."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    async def attach(self, coordinator: CoordinatorAgent) -> None:
        bus = coordinator.message_bus
        await bus.subscribe("run-view", MessageTopic.TRADING_SIGNALS, self._decision)
        await bus.subscribe("run-view", MessageTopic.RISK_ALERTS, self._risk)
        await bus.subscribe("run-view", MessageTopic.EXECUTION_EVENTS, self._execution)
        await bus.subscribe("run-view", MessageTopic.SYSTEM_EVENTS, self._system)

    def _symbol(self, message: Message, key: str = "symbol") -> SymbolView:
        return self.state.symbols.setdefault(str(message.payload.get(key)), SymbolView())

    async def _decision(self, message: Message) -> None:
        view = self._symbol(message)
        view.action, view.status, view.at = str(message.payload["action"]), "decided", message.timestamp
        self.state.cycles += 1

    async def _risk(self, message: Message) -> None:
        if message.payload.get("event") == "verdict":
            proposal = message.payload.get("proposal") or {}
            view = self.state.symbols.setdefault(str(proposal.get("symbol")), SymbolView())
            view.status = str(message.payload.get("status"))

    async def _execution(self, message: Message) -> None:
        view = self._symbol(message)
        view.status, view.at = str(message.payload["status"]), message.timestamp
        self.state.trades += 1
        level = message.payload.get("alert_level")
        if level:
            self.state.alerts.append(f"{level} {message.payload['symbol']}: {message.payload.get('error_message')}")

    async def _system(self, message: Message) -> None:
        if message.payload.get("event") == "degradation":
            self.state.degradation = str(message.payload["to"])
            self.state.alerts.append(f"degradation {message.payload['from']} -> {message.payload['to']}")


@dataclass
class RunSummary:
    run_id: str
    symbols: list[str]
    simulated: bool
    started_at: float
    ended_at: float
    stopped_by: str
    cycles: int
    trades: int
    realized_pnl: Decimal
    open_positions: list[dict[str, Any]]
    alerts: list[str]
    degradation: str
    checks: int
    invariants: dict[str, int]
    violations: list[dict[str, Any]]
    injected: dict[str, int]
    reconcile_errors: list[str]
    unjudged: dict[str, int]

    @property
    def ok(self) -> bool:
        return not any(self.invariants.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "symbols": self.symbols,
            "simulated": self.simulated,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.ended_at - self.started_at,
            "stopped_by": self.stopped_by,
            "cycles": self.cycles,
            "trades": self.trades,
            "realized_pnl": str(self.realized_pnl),
            "open_positions": self.open_positions,
            "alerts": self.alerts,
            "degradation": self.degradation,
            "checks": self.checks,
            "invariants": self.invariants,
            "violations": self.violations,
            "injected": self.injected,
            "reconcile_errors": self.reconcile_errors,
            "unjudged": self.unjudged,
            "ok": self.ok,
        }


class ContinuousRun:
    def __init__(
        self,
        settings: Settings,
        client: KrakenClient,
        store: Store,
        clock: Clock,
        *,
        spool: PendingWrites,
        simulated: bool,
        truth: TruthSource,
        fault_log: FaultLog | None = None,
        on_update: Callable[[RunState], None] | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._store = store
        self._clock = clock
        self._spool = spool
        self._simulated = simulated
        self._truth = truth
        self._fault_log = fault_log
        self._on_update = on_update
        self._on_start = on_start

    async def run(
        self,
        symbols: list[str],
        *,
        every_s: float,
        for_s: float | None,
        stop: asyncio.Event,
        stop_reason: Callable[[], str] = lambda: "stopped",
    ) -> RunSummary:
        pairs = [await self._client.resolve_pair(s) for s in symbols]
        names = list(dict.fromkeys(p.symbol for p in pairs))  # BTC/USD,btc/usd,XBT/USD: one pair, traded once
        run_id = new_run_id()
        started = self._clock.time()
        journal = RunJournal.start(
            self._store,
            run_id,
            kind="run",
            symbol=",".join(names),
            params={"symbols": names, "every_s": every_s, "for_s": for_s, "simulated": self._simulated},
            every_s=PROGRESS_EVERY_S,
        )
        if self._on_start is not None:
            self._on_start(
                f"tg run {run_id} started: {', '.join(names)} every {format_duration(every_s)}"
                + (f" for {format_duration(for_s)}" if for_s is not None else " until stopped")
                + (" of simulated time" if self._simulated else "")
            )
        state = RunState({n: SymbolView() for n in names}, started, started, self._simulated)
        before = await self._truth()
        models = build_models(self._settings)
        config = self._schedule(names, every_s)
        ending = asyncio.Event()  # set once the run stops: a decision waiting for a lease gives up
        venue = ExchangeVenue(
            self._client,
            self._store,
            self._clock,
            self._settings,
            spool=self._spool,
            leases=LeaseKeeper(self._store),
            stopping=ending,
        )
        coordinator = CoordinatorAgent.from_models(
            models,
            venue,
            risk_engine=RiskManagementEngine(self._settings.risk),
            store=self._store,
            clock=self._clock,
            config=config,
        )
        supervisor = Reconciler(
            self._client,
            self._store,
            self._clock,
            spool=self._spool,
            settings=self._settings.execution,
            leases=LeaseKeeper(self._store),
        )
        errors: list[str] = []
        await RunView(state).attach(coordinator)
        reason = "end"
        try:
            await coordinator.start()
            wait = every_s / 2  # between decisions: a check sees each cycle's outcome
            while True:
                remaining = None if for_s is None else started + for_s - self._clock.time()
                if remaining is not None and remaining <= 0:
                    break
                if await self._wait(min(wait, remaining) if remaining is not None else wait, stop):
                    reason = stop_reason()
                    break
                wait = every_s
                await self._check(supervisor, state, before, pairs, errors)
                journal.progress(
                    lambda: self._summary(
                        run_id, names, started, "still running", state, coordinator.degradation_level, errors
                    ).to_dict()
                )
        finally:
            ending.set()
            await coordinator.stop()  # an execution in flight is seen through
            await models.aclose()
        await self._check(supervisor, state, before, pairs, errors)
        summary = self._summary(run_id, names, started, reason, state, coordinator.degradation_level, errors)
        journal.finish("ok" if summary.ok else "violations", summary.to_dict())
        return summary

    def _summary(
        self,
        run_id: str,
        names: list[str],
        started: float,
        reason: str,
        state: RunState,
        degradation: str,
        errors: list[str],
    ) -> RunSummary:
        return RunSummary(
            run_id=run_id,
            symbols=names,
            simulated=self._simulated,
            started_at=started,
            ended_at=self._clock.time(),
            stopped_by=reason,
            cycles=state.cycles,
            trades=state.trades,
            realized_pnl=sum(
                (
                    p.realized_pnl or Decimal(0)
                    for p in self._store.positions(status=PositionStatus.CLOSED)
                    if p.closed_at is not None and p.closed_at >= started
                ),
                Decimal(0),
            ),
            open_positions=state.open_positions,
            alerts=state.alerts,
            degradation=degradation,
            checks=state.checks,
            invariants={name: state.violations[name] for name in INVARIANTS},
            violations=state.violation_log,
            injected=dict(state.injected),
            reconcile_errors=errors,
            unjudged=dict(state.unjudged),
        )

    def _schedule(self, symbols: list[str], every_s: float) -> CoordinatorConfig:
        """The configured coordinator, deciding for `symbols` every `every_s` (a trading
        decision runs its own analysis, so only it is scheduled)."""
        base = self._settings.coordinator
        intervals = TaskSeconds(technical_analysis=every_s, regime_detection=every_s, trading_decision=every_s)
        return base.model_copy(update={"symbols": symbols, "scheduled": ["trading_decision"], "intervals_s": intervals})

    async def _wait(self, seconds: float, stop: asyncio.Event) -> bool:
        """Sleep on the run's clock; True when told to stop meanwhile."""
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()
        return stop.is_set()

    async def _check(
        self, supervisor: Reconciler, state: RunState, before: ExchangeTruth, pairs: list[Any], errors: list[str]
    ) -> None:
        """Reconcile and judge; an exchange that does not answer makes this check a
        failed one (said so in the summary), never the end of the run."""
        try:
            await self._judge(supervisor, state, before, errors)
        except ExchangeError as exc:
            errors.append(f"check at {self._clock.time():.0f}: {exc}")
        if self._on_update is not None:
            self._on_update(state)

    async def _judge(self, supervisor: Reconciler, state: RunState, before: ExchangeTruth, errors: list[str]) -> None:
        every_pair = {p.altname: p for p in (await self._client.asset_pairs()).values()}
        report, found = await reconcile_and_check(supervisor, self._store, self._truth, every_pair, before=before)
        errors.extend(report.errors)
        state.checks += 1
        state.unjudged.update(found.unjudged)
        state.violations.update({name: len(v) for name, v in found.violations.items() if v})
        for name, messages in found.violations.items():
            for message in messages[: max(0, SHOWN_VIOLATIONS - len(state.violation_log))]:
                state.violation_log.append({"invariant": name, "message": message, "time": self._clock.time()})
        state.now = self._clock.time()
        state.open_positions = [position_json(p) for p in self._store.positions(status=PositionStatus.OPEN)]
        if self._fault_log is not None:
            state.injected = Counter(entry["fault"] for entry in await self._fault_log())
