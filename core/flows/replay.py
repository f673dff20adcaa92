"""`tg replay`: recorded candles through the whole trade cycle.

The sandbox's market is the recording (simulator.candle_path documents what happens
inside a candle) and its clock is stepped one candle at a time through the control
plane. Every `every` candles the coordinator decides with the configured models
(offline by default) exactly as in `tg trade`: snapshot, analysis, vote, conflicts,
risk, then entry, stop-loss and take-profit through the execution manager. Between
decisions tg does only what a live tg does: it reconciles whenever there is something
to reconcile (the exchange's open orders, as the step's brief from the control plane
lists them, differ from the database's live ones, e.g. a stop or a target filled and
its sibling must be cancelled; a position lacks its stop; an order's fate is
unknown), and when the coordinator has halted after repeated
failures, its analysis keeps running so that successes can bring trading back.

A decision at a candle's open time sees the candles closed before it and the forming
one (flat, as Kraken shows it); its market entry fills at that open. Decisions begin
once WARMUP_MINUTES of history lie before them. Faults are installed through the
control plane, as in `tg simulate`; the safety invariants are checked against the
exchange's own state after each reconciliation or decision that changed something,
and at the end. Positions still open at the end stay open, valued at the last price.

The replay keeps its own database (orders, fills, positions, votes, agent outputs and
the equity curve, all under its run id): its exchange is not the one `tg trade` and
`tg reconcile` talk to, and sharing a database would have reconciliation ask one
exchange about the other's orders.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.decision.agents.technical_analysis import MIN_CANDLES
from core.decision.coordinator import CoordinatorAgent, DegradationLevel, TaskName, TaskResult, TaskStatus
from core.decision.llm.factory import ModelSet, build_models
from core.decision.market import DEFAULT_INTERVALS, HISTORY_CANDLES
from core.decision.risk import RiskManagementEngine
from core.domain.clock import Clock
from core.domain.config import Settings
from core.domain.enums import OrderStatus, PositionSide, PositionStatus
from core.domain.errors import ExchangeError, InputError, TgError
from core.domain.models import Candle, Fill, MarketSnapshot, ModelDecision, Position, RiskVerdict
from core.domain.serialize import position_json, to_jsonable
from core.exchange import Credentials, KrakenClient, PairInfo
from core.exchange.ratelimit import KrakenRateLimiter
from core.exchange.sandbox_control import SandboxControl
from core.execution.invariants import INVARIANTS, InvariantReport, check_invariants
from core.execution.reconcile import Reconciler, ReconcileReport
from core.execution.spool import PendingWrites
from core.flows.candles import CandleSeries, RecordedCandle
from core.flows.heap import heap_frozen
from core.flows.journal import RunJournal
from core.flows.performance import (
    EquityPoint,
    Performance,
    performance,
    tally_rejections,
    tally_votes,
)
from core.flows.simulation import SETTLE_S, Sandbox
from core.flows.trade_cycle import CycleReport, ExchangeVenue, new_run_id
from core.storage.store import Store

WARMUP_MINUTES = MIN_CANDLES * min(DEFAULT_INTERVALS)
"""History a decision needs: enough candles of the snapshot's shortest interval for the indicators."""
CURVE_SAMPLES = 240
"""Points of the equity curve kept in the run's summary, for drawing it again."""
COMMIT_EVERY = 48
"""Candles per database transaction: committing each write alone would cost the run most of its time."""
PROGRESS_EVERY_S = 5.0
"""How often (wall-clock seconds) a replay records its progress in tg's database."""
SHOWN_ISSUES = 50
RECHECKS = 3
"""Reconciliations a violation must outlast to count (see _Run._check)."""
EQUITY_QUANTUM = Decimal("0.00000001")


@dataclass(frozen=True)
class ReplayMarket:
    """What the sandbox of a replay is built from."""

    symbol: str
    interval_minutes: int
    candles: Sequence[RecordedCandle]
    start: float  # the sandbox opens here: the first decision's time
    seed: int
    state_path: Path


ReplaySandboxFactory = Callable[[ReplayMarket], Sandbox]


@dataclass(frozen=True)
class ReplayOptions:
    symbol: str = "BTC/USD"
    every: int = 4
    start: int | None = None  # --from: the first decision no earlier than this
    end: int | None = None  # --to: the market stops here
    faults: tuple[str, ...] = ()
    seed: int = 42


@dataclass(frozen=True)
class DecisionRecord:
    time: float
    status: str
    note: str = ""
    level: str = DegradationLevel.NORMAL.value  # the coordinator's degradation level it ran at


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str
    time: float


@dataclass
class ReplayResult:
    run_id: str
    symbol: str
    options: ReplayOptions
    series: CandleSeries
    warmup_candles: int
    points: list[EquityPoint]
    figures: Performance
    decisions: list[DecisionRecord]
    votes: dict[str, dict[str, int]]
    rejections: dict[str, int]
    violations: list[Violation]
    injected: dict[str, int]
    open_positions: list[dict[str, Any]]
    db_path: Path
    elapsed_s: float
    checks: int = 0
    exchange_errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        """The report as one JSON-safe object: what --json prints and the run stores."""
        f = self.figures
        series = self.series
        candles = len(self.points) - 1
        summary: dict[str, Any] = to_jsonable(
            {
                "run_id": self.run_id,
                "kind": "replay",
                "symbol": self.symbol,
                "source": series.source,
                "format": series.format,
                "interval_minutes": series.interval_minutes,
                "every": self.options.every,
                "seed": self.options.seed,
                "faults": list(self.options.faults),
                "span": {
                    "start": _iso(f.start),
                    "end": _iso(f.end),
                    "candles": candles,
                    "warmup_candles": self.warmup_candles,
                    "decisions": len(self.decisions),
                },
                "data": _data_issues(series),
                "strategy": f.strategy,
                "buy_and_hold": f.buy_and_hold,
                "trades": f.trades,
                "fees": f.fees,
                "time_in_market": f.time_in_market,
                "decisions": dict(sorted(Counter(d.status for d in self.decisions).items())),
                "degradation": {
                    level.value: n
                    for level in DegradationLevel
                    if (n := sum(1 for d in self.decisions if d.level == level.value))
                },
                "decision_errors": [
                    {"time": _iso(d.time), "status": d.status, "note": d.note}
                    for d in self.decisions
                    if d.status in ("ERROR", "CRASH")
                ][:SHOWN_ISSUES],
                "votes": self.votes,
                "rejections": self.rejections,
                "open_positions": self.open_positions,
                "invariants": {name: sum(1 for v in self.violations if v.invariant == name) for name in INVARIANTS},
                "invariant_checks": self.checks,
                "exchange_errors": self.exchange_errors[:SHOWN_ISSUES],
                "violations": [
                    {"invariant": v.invariant, "message": v.message, "time": _iso(v.time)}
                    for v in self.violations[:SHOWN_ISSUES]
                ],
                "injected": self.injected,
                "ok": self.ok,
                "equity_curve": [[p.time, p.equity, p.price] for p in sample_curve(self.points, CURVE_SAMPLES)],
                "db_path": self.db_path,
                "timing": {
                    "seconds": round(self.elapsed_s, 3),
                    "candles_per_second": round(candles / self.elapsed_s, 1) if self.elapsed_s > 0 else None,
                },
            }
        )
        return summary


def sample_curve(points: Sequence[EquityPoint], count: int) -> list[EquityPoint]:
    """At most `count` points, evenly spaced, the first and the last always among them."""
    if len(points) <= count:
        return list(points)
    step = (len(points) - 1) / (count - 1)
    return [points[round(i * step)] for i in range(count)]


def replay_database(folder: Path, run_id: str) -> Path:
    return folder / f"{run_id}.db"


def trading_span(series: CandleSeries, options: ReplayOptions) -> tuple[list[RecordedCandle], int, int, int]:
    """The candles the market is built from, the first decision's time, the end of the
    market, and how many candles of warm-up precede the first decision.

    Raises InputError when the span holds no candle to trade after the warm-up.
    """
    if options.every < 1:
        raise InputError(f"--every must be at least 1 candle, not {options.every}")
    step = series.step
    market = [c for c in series.candles if options.end is None or c.time < options.end]
    if not market:
        raise InputError(f"{series.source} has no candle before --to {_iso(options.end or 0)}")
    first_history = market[0].time
    wanted = options.start if options.start is not None else first_history
    earliest = first_history + WARMUP_MINUTES * 60
    start = max(wanted, earliest)
    start = -(-start // step) * step  # a decision happens at a candle's open
    end = market[-1].time + step
    if options.end is not None:
        end = min(end, options.end)
    if start >= end:
        warmup_hours = WARMUP_MINUTES // 60
        if wanted >= end:
            advice = f"--from {_iso(wanted)} is not before the candles end; give an earlier --from"
        elif options.end is not None and options.end <= earliest:
            advice = f"the first decision needs {warmup_hours} hours of candles before it; give a later --to"
        else:
            advice = f"the first decision needs {warmup_hours} hours of candles before it; give a file of more candles"
        raise InputError(f"{series.source}: nothing to replay between {_iso(start)} and {_iso(end)}; {advice}")
    warmup = sum(1 for c in market if c.time < start)
    return market, start, end, warmup


class PollingVenue(ExchangeVenue):
    """The coordinator's venue for a replay: `tg trade`'s, except that it keeps the
    closed candles it has read and asks only for newer ones (Kraken's `since`
    polling), as a bot that runs for a year would. Closed candles never change, so
    the snapshot the agents see is the one a fresh read would give."""

    def __init__(
        self,
        client: KrakenClient,
        store: Store,
        clock: Clock,
        settings: Settings,
        *,
        spool: PendingWrites,
    ) -> None:
        super().__init__(client, store, clock, settings, spool=spool, reconcile=False)  # each step reconciles
        self._closed: dict[tuple[str, int], list[Candle]] = {}

    async def snapshot(self, symbol: str) -> MarketSnapshot:
        pair = await self._client.resolve_pair(symbol)
        now = self._clock.time()
        ticker, series = await asyncio.gather(
            self._client.ticker(pair.symbol),
            asyncio.gather(*(self._candles(pair.symbol, iv, now) for iv in DEFAULT_INTERVALS)),
        )
        return MarketSnapshot(
            symbol=pair.symbol, timestamp=now, ticker=ticker, candles=dict(zip(DEFAULT_INTERVALS, series, strict=True))
        )

    async def _candles(self, symbol: str, interval: int, now: float) -> list[Candle]:
        step = interval * 60
        held = self._closed.get((symbol, interval), [])
        since = held[-1].time if held else int(now) - HISTORY_CANDLES * step
        fresh = await self._client.ohlc(symbol, interval, since=since)
        newest = held[-1].time if held else -1
        candles = [*held, *(c for c in fresh if c.time > newest)][-HISTORY_CANDLES:]
        closed = len(candles)  # oldest first: only the last ones can still be forming
        while closed and candles[closed - 1].time + step > now:
            closed -= 1
        self._closed[(symbol, interval)] = candles[:closed]
        return candles


class Replay:
    """Runs replays: each on a fresh sandbox (`open_sandbox`) with its own database in
    `folder`. `models` builds the model set of each run (default: from the settings)."""

    def __init__(
        self,
        settings: Settings,
        open_sandbox: ReplaySandboxFactory,
        folder: Path,
        *,
        catalog: Sequence[str],
        models: Callable[[], ModelSet] | None = None,
    ) -> None:
        self._settings = settings
        self._open_sandbox = open_sandbox
        self._folder = folder
        self._catalog = list(catalog)
        self._models = models or (lambda: build_models(settings))

    def faults_for(self, requested: Sequence[str], seed: int) -> list[str]:
        """The fault rules to install: `random` draws one or two of the catalog, seeded."""
        chosen = [f for f in requested if f != "random"]
        unknown = [f for f in chosen if f.partition(":")[0] not in self._catalog]
        if unknown:
            raise InputError(
                f"unknown fault {unknown[0]!r} for a replay; known: {', '.join([*self._catalog, 'random'])}"
            )
        if "random" in requested:
            rng = random.Random(seed)
            chosen += rng.sample(self._catalog, k=rng.choice((1, 2)))
        return chosen

    async def run(
        self,
        series: CandleSeries,
        options: ReplayOptions,
        progress: Callable[[int, int], None] | None = None,
        record_in: Store | None = None,
    ) -> ReplayResult:
        """The replay's result. With `record_in` (tg's database) the replay is a run
        there from before its first candle, with its progress, and a Ctrl-C keeps it
        (as interrupted, with the decisions made and where its own database is)."""
        faults = self.faults_for(options.faults, options.seed)
        options = dataclasses.replace(options, faults=tuple(faults))
        market, start, end, warmup = trading_span(series, options)
        run_id = new_run_id()
        self._folder.mkdir(parents=True, exist_ok=True)
        db_path = replay_database(self._folder, run_id)
        sandbox = self._open_sandbox(
            ReplayMarket(
                options.symbol,
                series.interval_minutes,
                market,
                float(start),
                options.seed,
                self._folder / f"{run_id}.sandbox.db",
            )
        )
        limits = self._settings.kraken.rate_limit.model_copy(update={"tier": self._settings.simulator.tier})
        client = KrakenClient(
            sandbox.base_url,
            Credentials(api_key=sandbox.api_key, api_secret=sandbox.api_secret),
            transport=sandbox.transport,
            clock=sandbox.clock,
            rate_limiter=KrakenRateLimiter.from_settings(limits, clock=sandbox.clock),
        )
        control = SandboxControl(sandbox.base_url, transport=sandbox.transport)
        try:
            pair = await client.resolve_pair(options.symbol)  # the pair list is read once, before any fault
            await control.seed_faults(options.seed)
            for fault in faults:
                await control.add_fault(fault)
            params = {
                "source": series.source,
                "interval_minutes": series.interval_minutes,
                "every": options.every,
                "seed": options.seed,
                "faults": faults,
                "from": _iso(start),
                "to": _iso(end),
            }
            journal = None
            if record_in is not None:
                journal = RunJournal.start(
                    record_in, run_id, kind="replay", symbol=pair.symbol, params=params, every_s=PROGRESS_EVERY_S
                )
            with Store.open(db_path) as store:
                store.start_run(run_id, kind="replay", symbol=pair.symbol, started_at=time.time(), params=params)
                run = _Run(
                    run_id,
                    self._settings,
                    client,
                    control,
                    store,
                    sandbox.clock,
                    pair,
                    PendingWrites(db_path.with_suffix(".pending.jsonl")),
                )
                began = time.perf_counter()

                def advance(done: int, total: int) -> None:
                    if progress is not None:
                        progress(done, total)
                    if journal is not None:
                        journal.progress(lambda: run.progress(db_path))

                recording = journal.interruptible(lambda: run.progress(db_path)) if journal else nullcontext()
                with recording, heap_frozen():
                    await run.replay(self._models(), start, end, series.step, options.every, advance)
                result = ReplayResult(
                    run_id=run_id,
                    symbol=pair.symbol,
                    options=options,
                    series=series,
                    warmup_candles=warmup,
                    points=run.points,
                    figures=performance(run.points, *run.trading_record()),
                    decisions=run.decisions,
                    votes=tally_votes(run.votes),
                    rejections=tally_rejections(run.verdicts),
                    violations=run.violations,
                    injected=await _injected(control),
                    open_positions=run.open_positions(),
                    db_path=db_path,
                    elapsed_s=time.perf_counter() - began,
                    checks=run.checks,
                    exchange_errors=run.exchange_errors,
                )
                store_result(store, result)
                if record_in is not None:
                    store_result(record_in, result)
                return result
        finally:
            await client.aclose()
            await control.aclose()
            sandbox.close()


def store_result(store: Store, result: ReplayResult) -> None:
    """The run's end and its whole equity curve, under its run id (the run must be started)."""
    store.add_agent_output(
        result.run_id,
        agent="equity_curve",
        symbol=result.symbol,
        payload={"points": [[p.time, p.equity, p.price, p.held] for p in result.points]},
        created_at=result.points[-1].time,
    )
    store.finish_run(
        result.run_id, status="ok" if result.ok else "violations", finished_at=time.time(), summary=result.to_dict()
    )


async def _injected(control: SandboxControl) -> dict[str, int]:
    counts = Counter(entry["fault"] for entry in await control.fault_log())
    return dict(sorted(counts.items()))


class _Run:
    """One replay in progress: the loop over candles and what it keeps."""

    def __init__(
        self,
        run_id: str,
        settings: Settings,
        client: KrakenClient,
        control: SandboxControl,
        store: Store,
        clock: Clock,
        pair: PairInfo,
        spool: PendingWrites,
    ) -> None:
        self.run_id = run_id
        self._settings = settings
        self._client = client
        self._control = control
        self._store = store
        self._clock = clock
        self._pair = pair
        self._spool = spool
        self.points: list[EquityPoint] = []
        self.decisions: list[DecisionRecord] = []
        self.votes: list[ModelDecision] = []
        self.verdicts: list[RiskVerdict] = []
        self.violations: list[Violation] = []
        self.exchange_errors: list[str] = []  # what kept tg's bookkeeping from the exchange, at the time
        self.checks = 0
        self.candles_done = self.candles_total = 0
        self._seen: set[tuple[str, str]] = set()
        self._live: set[str] = set()
        self._holding = False  # an open position in the database
        self._unsettled_until = 0.0
        self._state: dict[str, Any] = {}  # the sandbox's brief state at the last step
        self._acted = False  # tg traded or reconciled since that step

    def progress(self, db_path: Path) -> dict[str, Any]:
        """What a replay that has not ended has to show: how far it came, what it decided,
        and its own database (every order and position so far)."""
        return {
            "run_id": self.run_id,
            "symbol": self._pair.symbol,
            "progress": {"candles": self.candles_done, "of": self.candles_total},
            "decisions": len(self.decisions),
            "violations": len(self.violations),
            "db_path": str(db_path),
        }

    async def replay(
        self,
        models: ModelSet,
        start: int,
        end: int,
        step: int,
        every: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        coordinator = CoordinatorAgent.from_models(
            models,
            PollingVenue(self._client, self._store, self._clock, self._settings, spool=self._spool),
            risk_engine=RiskManagementEngine(self._settings.risk),
            store=self._store,
            clock=self._clock,
            config=self._settings.coordinator,
        )
        total = self.candles_total = (end - start) // step
        try:
            with ExitStack() as batch:
                for index in range(total):
                    if index % COMMIT_EVERY == 0:
                        batch.close()
                        batch.enter_context(self._store.transaction())
                    await self._step_to(start + index * step)
                    await self._keep_in_step()
                    if index % every == 0:
                        await self._decide(coordinator, index)
                    await self._mark()
                    self.candles_done = index + 1
                    if progress is not None:
                        progress(index + 1, total)
                await self._step_to(end)
                await self._keep_in_step(final=True)
                await self._mark()
        finally:
            await coordinator.close()
            await models.aclose()
        await self.record_fills()

    async def _step_to(self, moment: float) -> None:
        """Move the market to `moment` (faults may have moved the clock past it)."""
        self._state = await self._control.advance(max(0.0, moment - self._clock.time()), brief_for=self._pair.key)
        self._acted = False

    async def _mark(self) -> None:
        """Value the account as tg left it at this candle's open: the point begins the
        candle's period (read anew if tg traded or reconciled since the market moved)."""
        state = self._state
        if self._acted:
            state = await self._control.advance(0.0, brief_for=self._pair.key)
        [account] = state["accounts"].values()
        balances = account["balances"]
        price = Decimal(str(state["prices"][self._pair.key]))
        held = Decimal(str(balances.get(self._pair.base, "0")))
        quote = Decimal(str(balances.get(self._pair.quote, "0")))
        equity = (quote + held * price).quantize(EQUITY_QUANTUM)
        self.points.append(EquityPoint(float(state["time"]), equity, price, held))

    async def _keep_in_step(self, *, final: bool = False) -> None:
        """Reconcile when there is something to reconcile (`final`: always), then check
        the invariants if that changed anything. Which orders are open the step's brief
        says, as the exchange holds them: the harness judges from the exchange's truth,
        and asking tg's client each candle cost a request the sandbox's brief already
        answers. An exchange that fails to answer reconcile is noted and asked again at
        the next candle, as a running tg would."""
        now = self._clock.time()
        due = final or self._spool.pending() or now < self._unsettled_until
        if not due and (self._live or self._holding):
            [account] = self._state["accounts"].values()
            due = set(account["open_ids"]) != self._live or (self._holding and not self._live)
        if not due:
            return
        try:
            report = await self._reconcile()
        except ExchangeError as exc:
            self._exchange_error("reconciling", exc)
            return
        if final:
            for problem in report.errors:
                self._violate("protected", f"reconcile could not repair: {problem}")
        if report.changed or final:
            await self._check()

    async def _reconcile(self) -> ReconcileReport:
        report = await Reconciler(
            self._client, self._store, self._clock, spool=self._spool, settings=self._settings.execution
        ).reconcile()
        self._acted = True
        self.exchange_errors.extend(f"{_iso(self._clock.time())} reconciling: {problem}" for problem in report.errors)
        self._remember_orders()
        return report

    async def _decide(self, coordinator: CoordinatorAgent, index: int) -> None:
        decision_id = f"{self.run_id}-{index:06d}"
        moment = self._clock.time()
        if coordinator.degradation_level is DegradationLevel.HALTED:
            await coordinator.run_all([self._pair.symbol], TaskName.TECHNICAL_ANALYSIS)
        try:
            result = await coordinator.run_cycle(self._pair.symbol, correlation_id=decision_id)
        except TgError as exc:
            self.decisions.append(DecisionRecord(moment, "ERROR", f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # noqa: BLE001 - the invariant "no unhandled exception" is exactly this
            self.decisions.append(DecisionRecord(moment, "CRASH", f"{type(exc).__name__}: {exc}"))
            self._violate("no_crash", f"decision {decision_id}: {type(exc).__name__}: {exc}")
        else:
            self._record(result, moment)
            if result.execution is not None and any(
                o.external_id or o.status is OrderStatus.UNKNOWN for o in result.execution.orders
            ):
                self._acted = True
                await self._check()
            if result.verdict is None or not result.verdict.is_approved():
                return  # nothing went to the exchange, so the orders stored are the ones remembered
        self._remember_orders()

    def _record(self, result: TaskResult, moment: float) -> None:
        if result.decision is not None:
            self.votes.extend(result.decision.model_decisions)
        if result.verdict is not None:
            self.verdicts.append(result.verdict)
        level = result.level.value
        if result.status is not TaskStatus.COMPLETED:
            self.decisions.append(DecisionRecord(moment, result.status.value.upper(), result.note, level))
            return
        report = CycleReport.from_result(result.correlation_id, result, self._store.location)
        error = report.execution.error_message if report.execution is not None else None
        self.decisions.append(DecisionRecord(moment, report.status, error or "", level))

    def _remember_orders(self) -> None:
        """What the next candles must watch: the live orders and open positions stored."""
        self._live = {
            o.external_id for o in self._store.orders(status=[OrderStatus.PENDING, OrderStatus.OPEN]) if o.external_id
        }
        self._holding = bool(self._store.positions(status=PositionStatus.OPEN))
        unsettled = self._store.orders(status=[OrderStatus.UNKNOWN, OrderStatus.INTENT])
        self._unsettled_until = max((o.updated_at + SETTLE_S for o in unsettled), default=0.0)

    async def _check(self) -> None:
        """Check the invariants. A violation counts when it outlasts RECHECKS more
        reconciliations: the market moves on while tg reconciles (its requests take
        time, its rate limiter waits), and an order that filled in between is tg
        catching up, not a broken invariant."""
        report = await self._invariants()
        for _ in range(RECHECKS):
            if report.ok:
                return
            try:
                await self._reconcile()
            except ExchangeError as exc:
                self._exchange_error("reconciling", exc)
            report = await self._invariants()
        for name, messages in report.violations.items():
            for message in messages:
                self._violate(name, message)

    async def _invariants(self) -> InvariantReport:
        truth = await self._control.truth()
        pairs = {p.altname: p for p in (await self._client.asset_pairs()).values() if p.symbol == self._pair.symbol}
        self.checks += 1
        return check_invariants(self._store, truth, pairs)

    def _exchange_error(self, doing: str, error: ExchangeError) -> None:
        self.exchange_errors.append(f"{_iso(self._clock.time())} {doing}: {error}")

    def _violate(self, invariant: str, message: str) -> None:
        """Record a violation once, at the first time it was seen."""
        if (invariant, message) not in self._seen:
            self._seen.add((invariant, message))
            self.violations.append(Violation(invariant, message, self._clock.time()))

    async def record_fills(self) -> None:
        """One fill per filled order, read from the exchange once, at the end. The
        sandbox's fill model fills an order in one trade; an order filled in several
        is recorded as one fill at its average price, under its first trade id."""
        filled = [o for o in self._store.orders() if o.external_id and o.filled_volume > 0]
        try:
            found = await self._client.query_orders([o.external_id for o in filled if o.external_id], trades=True)
        except ExchangeError as exc:
            self._exchange_error("reading the fills", exc)
            return
        with self._store.transaction():
            for order in filled:
                exchange_order = found.get(order.external_id or "")
                if exchange_order is None or not exchange_order.trades:
                    continue
                self._store.add_fill(
                    Fill(
                        trade_id=exchange_order.trades[0],
                        order_external_id=exchange_order.txid,
                        symbol=order.symbol,
                        side=order.side,
                        price=exchange_order.avg_price,
                        volume=exchange_order.volume_executed,
                        fee=exchange_order.fee,
                        time=exchange_order.closetm or exchange_order.opentm,
                    ),
                    run_id=order.run_id,
                )

    def trading_record(self) -> tuple[list[Position], Decimal]:
        """The closed positions and every fee the orders paid."""
        fees = sum((o.fee for o in self._store.orders()), Decimal(0))
        return self._store.positions(status=PositionStatus.CLOSED), fees

    def open_positions(self) -> list[dict[str, Any]]:
        """Positions still open at the last candle, valued at its close."""
        price = self.points[-1].price
        return [
            {
                **position_json(p),
                "unrealized_pnl": to_jsonable(
                    (price - p.entry_price) * p.size * (1 if p.side is PositionSide.LONG else -1)
                ),
            }
            for p in self._store.positions(status=PositionStatus.OPEN)
        ]


def _data_issues(series: CandleSeries) -> dict[str, Any]:
    return {
        "rows_used": len(series.candles),
        "rows_skipped": len(series.problems),
        "problem_counts": dict(sorted(Counter(p.kind.value for p in series.problems).items())),
        "problems": [{"line": p.line, "kind": p.kind, "message": p.message} for p in series.problems[:SHOWN_ISSUES]],
        "gaps": len(series.gaps),
        "missing_candles": sum(g.missing for g in series.gaps),
        "gap_list": [
            {"after": _iso(g.after), "resumes": _iso(g.resumes), "missing": g.missing}
            for g in series.gaps[:SHOWN_ISSUES]
        ],
        "notes": series.notes,
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
