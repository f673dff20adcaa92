"""`tg simulate`: seeded trade cycles against a fault-injecting sandbox, each followed
by the market running until the position closes, a reconciliation, and the safety
invariants checked against the exchange's own state.

The exchange-side faults belong to the sandbox (installed through its control
plane); tg's own are here: `db-fail` (the database refuses writes after the exchange
accepted), `crash` (the process dies between two requests, after the exchange acted
on the first, and restarts), and `random` (a seeded mix of everything).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import random
import shutil
import socket
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.decision.coordinator import CoordinatorAgent
from core.decision.llm.factory import build_models
from core.decision.risk import RiskManagementEngine
from core.domain.clock import Clock, SkippableSystemClock
from core.domain.config import Settings
from core.domain.enums import OrderStatus, OrderType, PositionStatus, Side
from core.domain.errors import DatabaseWriteError, InputError
from core.exchange import Credentials, KrakenClient
from core.exchange.account import ExchangeTruth
from core.exchange.ratelimit import KrakenRateLimiter
from core.exchange.sandbox_control import SandboxControl
from core.execution.invariants import INVARIANTS, InvariantReport, check_invariants
from core.execution.leases import may_run
from core.execution.reconcile import Reconciler
from core.execution.spool import PendingWrites
from core.flows.campaign import KIND, RESULTS, WHOLE, Shard, campaign_id
from core.flows.heap import heap_frozen
from core.flows.journal import RunJournal
from core.flows.manual import manual_proposal
from core.flows.trade_cycle import ExchangeVenue, new_run_id
from core.storage.store import Store


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class DbFailOptions(_Options):
    probability: float = Field(0.5, gt=0, le=1)
    """The chance each write to orders or positions is refused while the trade runs."""
    spool: Literal["ok", "refuse"] = "ok"
    """refuse: the spool's disk is full too."""


class CrashOptions(_Options):
    after: int | None = Field(None, ge=0, le=100)
    """Die after this many private requests (default: a seeded number, 1 to 11)."""


class NoOptions(_Options):
    pass


TG_FAULTS: dict[str, tuple[type[_Options], str]] = {
    "db-fail": (DbFailOptions, "tg's database refuses writes after the exchange accepted"),
    "crash": (CrashOptions, "tg dies between two requests (after the exchange acted) and restarts"),
    "foreign": (NoOptions, "another client's orders and coins are on the account"),
}
"""tg's own faults (the sandbox's are simulator.faults.CATALOG): name -> options, summary."""
LAST_SEED = 2**63 - 1
"""The largest seed a sandbox takes (simulator.seed's range)."""


def check_seeds(seed: int, runs: int) -> None:
    """Refuse, before anything is made, a campaign whose last run (seed + runs - 1) has a
    seed the sandbox would refuse half-way through."""
    if seed + runs - 1 > LAST_SEED:
        raise InputError(f"--seed {seed} with --runs {runs} reaches seed {seed + runs - 1}; seeds go up to {LAST_SEED}")


RANDOM = "random"
RANDOM_SUMMARY = "a seeded mix of every fault, with seeded options, in a seeded order"


def parse_tg_fault(spec: str) -> _Options:
    """The options of one of tg's faults, `NAME` or `NAME:key=value,...`, checked."""
    name, _, rest = spec.strip().partition(":")
    model = NoOptions if name == RANDOM else TG_FAULTS[name][0]
    values: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"fault {spec!r}: {item!r} is not key=value")
        values[key.strip()] = value.strip()
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        option = ".".join(str(part) for part in error["loc"])
        takes = ", ".join(model.model_fields) or "no options"
        what = (
            f"unknown option {option!r}" if error["type"] == "extra_forbidden" else f"option {option}: {error['msg']}"
        )
        raise InputError(f"fault {spec!r}: {what}; {name} takes {takes}") from None


RANDOM_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "stop-fail": {},
    "stop-fail-once": {},
    "partial-fill": {"ratio": ("0.25", "0.5", "0.75")},
    "vanish": {"mode": ("dropped", "hidden"), "match": ("any", "entry", "stop_loss", "take_profit")},
    "ghost": {
        "variant": ("timeout", "internal-error", "html-5xx"),
        "match": ("any", "entry", "stop_loss", "take_profit"),
    },
    "rate-limit": {},
    "unavailable": {},
    "busy": {},
    "insufficient-funds": {},
    "latency": {"seconds": ("1", "5")},
    "invalid-nonce": {},
    "stale-visibility": {"seconds": ("5", "10", "30"), "match": ("any", "entry", "stop_loss", "take_profit")},
    "gap": {"beyond_pct": ("1", "5")},
    "db-fail": {"spool": ("ok", "refuse")},
    "crash": {"after": tuple(str(n) for n in range(1, 16))},
    "foreign": {},
}
"""What `random` draws from: every fault, and for each of its options every value worth
trying (the first is the default)."""
MARKET_STEP_S = 4 * 3600.0
SETTLE_S = 3600.0  # an order unseen this long after tg lost track of it is taken as never placed
MARKET_LIMIT_S = 14 * 24 * 3600.0


class SimulatedCrash(BaseException):
    """The process died. A BaseException so no `except Exception` in tg can swallow it."""


class Sandbox(Protocol):
    """What a run needs of a fresh sandbox exchange. Read-only: a run never sets them, and
    an embedded sandbox derives its keys and holds a narrower transport."""

    @property
    def base_url(self) -> str: ...

    @property
    def transport(self) -> httpx.AsyncBaseTransport: ...

    @property
    def api_key(self) -> str: ...

    @property
    def api_secret(self) -> str: ...

    @property
    def clock(self) -> Clock: ...

    def close(self) -> None:
        """The run is over: let the sandbox go."""


SandboxFactory = Callable[[int, Path], Sandbox]


class CrashingTransport(httpx.AsyncBaseTransport):
    """Lets `survive` requests through, then the next one reaches the exchange and the
    process dies before reading the answer: the worst moment to crash."""

    def __init__(self, inner: httpx.AsyncBaseTransport, survive: int) -> None:
        self._inner = inner
        self._left = survive

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if self._left == 0 and request.url.path.startswith("/0/private/"):
            raise SimulatedCrash(f"crashed after {request.url.path}")
        if request.url.path.startswith("/0/private/"):
            self._left -= 1
        return response


@dataclass
class DbFailGuard:
    """Refuses writes to orders and positions with a seeded probability while armed."""

    rng: random.Random
    probability: float = 0.5
    armed: bool = True
    refused: int = 0

    def __call__(self, table: str) -> None:
        if self.armed and table in ("orders", "positions") and self.rng.random() < self.probability:
            self.refused += 1
            raise DatabaseWriteError(f"injected: the database refused a write to {table}")


@dataclass
class RunResult:
    index: int
    seed: int
    faults: list[str]
    status: str
    alert_level: str | None
    injected: Counter[str]
    invariants: InvariantReport
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.invariants.ok


@dataclass
class SimulationReport:
    """The runs in their order, and their totals kept up as each is added: what a
    finished run costs to take in and to record does not grow with the runs before it."""

    run_id: str | None = None  # as tg's database has the campaign
    campaign: str | None = None  # what `tg campaign` merges the shards by
    shard: Shard = WHOLE
    runs: list[RunResult] = field(default_factory=list, init=False)
    _faults: set[str] = field(default_factory=set, init=False)
    _outcomes: Counter[str] = field(default_factory=Counter, init=False)
    _injected: Counter[str] = field(default_factory=Counter, init=False)
    _violations: Counter[str] = field(default_factory=Counter, init=False)
    _broken: int = field(default=0, init=False)

    @property
    def ok(self) -> bool:
        return not self._broken

    def add(self, run: RunResult) -> None:
        self.runs.append(run)
        self._faults.update(run.faults)
        self._outcomes[run.status] += 1
        self._injected.update(run.injected)
        self._violations.update({name: len(run.invariants.violations[name]) for name in INVARIANTS})
        self._broken += not run.ok

    def totals(self) -> dict[str, Any]:
        """The report without each run's detail (of bounded size: the faults, outcomes
        and injections there are)."""
        return {
            "run_id": self.run_id,
            "campaign": self.campaign,
            "shard": str(self.shard),
            "runs": len(self.runs),
            "faults": sorted(self._faults),
            "outcomes": dict(sorted(self._outcomes.items())),
            "injected": dict(sorted(self._injected.items())),
            "invariants": {name: self._violations[name] for name in INVARIANTS},
            "ok": self.ok,
        }

    def detail(self, run: RunResult) -> dict[str, Any]:
        return {
            "run": run.index,
            "run_id": f"{self.run_id}.{run.index}" if self.run_id else None,
            "seed": run.seed,
            "faults": run.faults,
            "status": run.status,
            "alert_level": run.alert_level,
            "injected": dict(run.injected),
            "violations": {k: v for k, v in run.invariants.violations.items() if v},
            "error": run.error,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.totals(), RESULTS: [self.detail(run) for run in self.runs]}


def take_in(report: SimulationReport, result: RunResult, journal: RunJournal | None) -> None:
    """A finished run into the report and, with a journal, into tg's database at once
    (a kill right after keeps it), at a cost that does not grow with the runs before.
    Nothing here awaits: a Ctrl-C (a cancellation at the next await) finds both done."""
    report.add(result)
    if journal is not None:
        journal.record(result.index, report.detail(result), report.totals())


def _catch_up(clock: Clock, lag: float) -> None:
    """A served sandbox jumped its clock ahead; tg's own clock (and the rate limiter
    reading it) jumps with it. In-process the two are one clock, so there is no lag."""
    if lag > 1.0 and isinstance(clock, SkippableSystemClock):
        clock.advance(lag)


def _crash_step(spec: str, rng: random.Random) -> int:
    """`crash` dies after a seeded number of private requests; `crash:after=N` after exactly N."""
    options = parse_tg_fault(spec)
    assert isinstance(options, CrashOptions)
    return options.after if options.after is not None else rng.randrange(1, 12)


FOREIGN_MARKET_BUY = Decimal("0.05")


async def _place_foreign_orders(sandbox: Sandbox, symbol: str) -> None:
    """Another client on the same account: a market buy (a holding that is not tg's) and
    two resting limits far from the market, one with a client order id of its own."""
    async with KrakenClient(
        sandbox.base_url,
        Credentials(api_key=sandbox.api_key, api_secret=sandbox.api_secret),
        transport=sandbox.transport,
        clock=sandbox.clock,
    ) as other:
        pair = await other.resolve_pair(symbol)
        price = (await other.ticker(symbol)).last
        await other.add_order(symbol, Side.BUY, OrderType.MARKET, FOREIGN_MARKET_BUY)
        await other.add_order(
            symbol,
            Side.BUY,
            OrderType.LIMIT,
            Decimal("0.02"),
            pair.round_price(price / 2),
            cl_ord_id=str(uuid.UUID(int=random.Random(symbol).getrandbits(128), version=4)),
        )
        await other.add_order(symbol, Side.SELL, OrderType.LIMIT, Decimal("0.03"), pair.round_price(price * 2))


def choose_faults(requested: Sequence[str], rng: random.Random, catalog: Sequence[str]) -> list[str]:
    """The faults of one run, in a seeded order (rules act in the order they are
    installed, so the order is part of what is tried): `random` draws one to three
    from everything there is, each with seeded options."""
    chosen = [f for f in requested if f != RANDOM]
    if RANDOM in requested:
        everything = [*catalog, *TG_FAULTS]
        for name in rng.sample(everything, k=rng.choice((1, 2, 3))):
            options = [f"{key}={rng.choice(values)}" for key, values in RANDOM_OPTIONS.get(name, {}).items()]
            chosen.append(name + (":" + ",".join(options) if options else ""))
    rng.shuffle(chosen)
    return chosen


class Simulation:
    def __init__(
        self,
        settings: Settings,
        open_sandbox: SandboxFactory,
        workdir: Path,
        *,
        catalog: Sequence[str],
        symbol: str = "BTC/USDT",
    ) -> None:
        self._settings = settings
        self._open_sandbox = open_sandbox
        self._workdir = workdir
        self._catalog = list(catalog)
        self._symbol = symbol
        self._blank_db: Path | None = None
        # By API key, as Kraken counts: a run's restarted client paces on what the first spent.
        self._limiters: dict[str, KrakenRateLimiter] = {}
        self._tier: str | None = None

    async def run(
        self,
        faults: Sequence[str],
        *,
        runs: int,
        seed: int,
        progress: Callable[[RunResult], Awaitable[None] | None] | None = None,
        record_in: Store | None = None,
        workers: int = 1,
        shard: Shard = WHOLE,
        campaign: str | None = None,
    ) -> SimulationReport:
        """The runs' report: of every run, or of `shard`'s share of them. With
        `record_in` the campaign is a run of that database: recorded before the first
        run (once the symbol proved to be one the exchange lists), each finished run at
        once, and kept as interrupted by a Ctrl-C. The record names the campaign (by
        default its digest, see core.flows.campaign) and the shard, which `tg campaign`
        merges by.

        With `workers` > 1 the runs are spread over that many processes (each run has
        its own seeded sandbox, database and folder, so none depends on another): the
        report is the one a single worker makes, the runs in their order. The sandbox
        factory must then be picklable (a served sandbox, shared by every run, is not
        to be driven by several processes at once)."""
        await self._check_symbol(seed)
        journal = None
        campaign = campaign or campaign_id(faults, runs=runs, seed=seed, symbol=self._symbol)
        if record_in is not None:
            params = {
                "faults": list(faults),
                "runs": runs,
                "seed": seed,
                "campaign": campaign,
                "shard": {"index": shard.index, "count": shard.count},
            }
            journal = RunJournal.start(record_in, new_run_id(), kind=KIND, symbol=self._symbol, params=params)
        report = SimulationReport(
            run_id=journal.run_id if journal is not None else None, campaign=campaign, shard=shard
        )
        recording = journal.interruptible(report.totals) if journal is not None else nullcontext()
        with recording:
            async for result in self._results(faults, runs=runs, seed=seed, workers=workers, shard=shard):
                take_in(report, result, journal)
                # nothing reads a finished run's folder (its databases, spool): a campaign's
                # scratch space stays one run's, not 150 KB more per run
                shutil.rmtree(self._folder(result.index), ignore_errors=True)
                if progress is not None:
                    outcome = progress(result)
                    if outcome is not None:
                        await outcome
        if journal is not None:
            journal.finish("ok" if report.ok else "violations", report.totals())
        return report

    async def _results(
        self, faults: Sequence[str], *, runs: int, seed: int, workers: int, shard: Shard
    ) -> AsyncIterator[RunResult]:
        """Each of the shard's runs' result, in the runs' order."""
        indices = [i for i in range(runs) if shard.owns(i)]
        if workers <= 1 or len(indices) <= 1:
            for index in indices:
                with heap_frozen():  # a run's full collections walk the run's objects alone
                    result = await self.run_once(index, seed + index, faults)
                yield result
            return
        loop = asyncio.get_running_loop()
        # spawn, not fork: a forked child would inherit this process's event loop, threads and open files
        with ProcessPoolExecutor(
            max_workers=min(workers, len(indices)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._settings, self._open_sandbox, self._workdir, self._catalog, self._symbol),
        ) as pool:
            pending = [
                loop.run_in_executor(pool, _run_in_worker, index, seed + index, list(faults)) for index in indices
            ]
            try:
                for future in pending:
                    yield await future
            finally:
                for future in pending:
                    future.cancel()

    async def _check_symbol(self, seed: int) -> None:
        """Bad input (a pair the exchange does not list) is refused before any run: it
        is not something a run of the sandbox found."""
        self._workdir.mkdir(parents=True, exist_ok=True)
        with TemporaryDirectory(dir=self._workdir) as folder:
            sandbox = self._open_sandbox(seed, Path(folder))
            try:
                async with KrakenClient(sandbox.base_url, transport=sandbox.transport, clock=sandbox.clock) as client:
                    pair = await client.resolve_pair(self._symbol)
            finally:
                sandbox.close()
        self._symbol = pair.symbol

    async def run_once(self, index: int, seed: int, requested: Sequence[str]) -> RunResult:
        rng = random.Random(seed)
        faults = choose_faults(requested, rng, self._catalog)
        folder = self._folder(index)
        folder.mkdir(parents=True, exist_ok=True)
        sandbox = self._open_sandbox(seed, folder)
        control = SandboxControl(sandbox.base_url, transport=sandbox.transport)
        await control.reset()  # a served sandbox is reused run after run: its counters start empty,
        self._limiters.pop(sandbox.api_key, None)  # and so does tg's model of them,
        limits = (await control.state(orders=False, prices=False))["rate_limits"]  # at the tier the sandbox enforces
        self._tier = None if limits is None else str(limits["tier"])
        await control.clear_faults()
        await control.seed_faults(seed)
        names = {f.partition(":")[0]: f for f in faults}
        if "foreign" in names:
            await _place_foreign_orders(sandbox, self._symbol)
        before = await control.truth()
        for fault in faults:
            if fault.partition(":")[0] not in TG_FAULTS:
                await control.add_fault(fault)
        db_fail = parse_tg_fault(names["db-fail"]) if "db-fail" in names else None
        assert db_fail is None or isinstance(db_fail, DbFailOptions)
        guard = DbFailGuard(rng, db_fail.probability) if db_fail is not None else None
        crash_after = _crash_step(names["crash"], rng) if "crash" in names else None
        injected: Counter[str] = Counter()
        db_path = folder / "tg.db"
        self._new_database(db_path)
        spool = PendingWrites(folder / "tg.pending.jsonl")
        if db_fail is not None and db_fail.spool == "refuse":
            (folder / "full-disk").write_text("")  # the spool's folder cannot be made: writes to it fail
            trade_spool = PendingWrites(folder / "full-disk" / "tg.pending.jsonl")
        else:
            trade_spool = spool
        status, alert, error = "FAILED", None, None
        unrecorded: list[dict[str, Any]] = []
        try:
            status, alert, unrecorded = await self._trade_and_run_market(
                sandbox, db_path, trade_spool, guard, crash_after
            )
        except SimulatedCrash:
            status = "CRASHED"
            injected["crash"] += 1
        except Exception as exc:  # noqa: BLE001 - the invariant "no unhandled exception" is exactly this
            status, error = "ERROR", f"{type(exc).__name__}: {exc}"
        if guard is not None:
            guard.armed = False
            if guard.refused:
                injected["db-fail"] += guard.refused
        if unrecorded:  # printed on stderr; the operator saves them where the next run reads them
            injected["unrecorded"] += len(unrecorded)
            spool.append_records(unrecorded)
        if "foreign" in names:
            injected["foreign"] += 1
        invariants = await self._restart_and_check(sandbox, db_path, spool, control, before)
        if error is not None:
            invariants.add("no_crash", error)
        for entry in await control.fault_log():
            injected[entry["fault"]] += 1
        await control.aclose()
        sandbox.close()
        self._limiters.pop(sandbox.api_key, None)  # the run's model of the sandbox's counters ends with it
        return RunResult(index, seed, faults, status, alert, injected, invariants, error)

    def _folder(self, index: int) -> Path:
        return self._workdir / f"run-{index}"

    def _new_database(self, path: Path) -> None:
        """A run's database starts as a copy of an empty one this process made once:
        creating tg's schema costs several times what copying the file does. The runs
        of a process share its install id (the namespace of tg's client order ids),
        which is harmless: no two runs share an exchange."""
        if self._blank_db is None:
            blank = self._workdir / f"blank-{os.getpid()}.db"  # each worker process its own
            Store.open(blank, scratch=True).close()
            self._blank_db = blank
        shutil.copyfile(self._blank_db, path)

    def _client(self, sandbox: Sandbox, crash_after: int | None = None) -> KrakenClient:
        transport = sandbox.transport if crash_after is None else CrashingTransport(sandbox.transport, crash_after)
        limiter = self._limiters.get(sandbox.api_key)
        if limiter is None and self._tier is not None:
            limits = self._settings.kraken.rate_limit.model_copy(update={"tier": self._tier})
            limiter = self._limiters[sandbox.api_key] = KrakenRateLimiter.from_settings(limits, clock=sandbox.clock)
        return KrakenClient(
            sandbox.base_url,
            Credentials(api_key=sandbox.api_key, api_secret=sandbox.api_secret),
            transport=transport,
            clock=sandbox.clock,
            rate_limiter=limiter,
        )

    async def _trade_and_run_market(
        self,
        sandbox: Sandbox,
        db_path: Path,
        spool: PendingWrites,
        guard: DbFailGuard | None,
        crash_after: int | None,
    ) -> tuple[str, str | None, list[dict[str, Any]]]:
        """The status and alert of the trade, and the records storage could not keep."""
        client = self._client(sandbox, crash_after)
        control = SandboxControl(sandbox.base_url, transport=sandbox.transport)
        models = build_models(self._settings)
        try:
            with Store.open(db_path, write_guard=guard, scratch=True) as store:
                # the path `tg trade --side buy` takes: the coordinator, its venue's critical
                # section (reconcile first), the risk engine, execution
                venue = ExchangeVenue(client, store, sandbox.clock, self._settings, spool=spool)
                coordinator = CoordinatorAgent.from_models(
                    models,
                    venue,
                    risk_engine=RiskManagementEngine(self._settings.risk),
                    store=store,
                    clock=sandbox.clock,
                    config=self._settings.coordinator,
                )
                try:
                    proposal = await manual_proposal(client, self._symbol, "buy", None)
                    result = await coordinator.run_cycle(
                        self._symbol, correlation_id=f"S-{db_path.parent.name}", manual=proposal
                    )
                finally:
                    await coordinator.close()
                if guard is not None:
                    guard.armed = False
                execution = result.execution
                if execution is None:
                    return ("REJECTED" if result.verdict is not None else "HOLD"), None, []
                await self._run_market(client, store, sandbox, control, spool)
                alert = execution.alert_level.value if execution.alert_level else None
                return execution.status.value, alert, execution.unrecorded
        finally:
            await models.aclose()
            await client.aclose()
            await control.aclose()

    async def _run_market(
        self, client: KrakenClient, store: Store, sandbox: Sandbox, control: SandboxControl, spool: PendingWrites
    ) -> None:
        """Let the market move until every position closed and no order's fate is
        unknown, reconciling at each step."""
        elapsed = 0.0
        while elapsed < MARKET_LIMIT_S:
            await Reconciler(client, store, sandbox.clock, spool=spool, settings=self._settings.execution).reconcile()
            now = sandbox.clock.time()
            unsettled = [
                o
                for o in store.orders(status=[OrderStatus.UNKNOWN, OrderStatus.INTENT])
                if now - o.updated_at < SETTLE_S
            ]
            if not store.positions(status=PositionStatus.OPEN) and not unsettled:
                return
            before = sandbox.clock.time()
            await control.step(MARKET_STEP_S)
            _catch_up(sandbox.clock, MARKET_STEP_S - (sandbox.clock.time() - before))
            elapsed += MARKET_STEP_S

    async def _restart_and_check(
        self,
        sandbox: Sandbox,
        db_path: Path,
        spool: PendingWrites,
        control: SandboxControl,
        before: ExchangeTruth,
    ) -> InvariantReport:
        """A new process: it reconciles and lets the market run as any run does, then the
        exchange's state is held against the database."""
        client = self._client(sandbox)
        try:
            with Store.open(db_path, scratch=True) as store:
                await self._run_market(client, store, sandbox, control, spool)
                report = await Reconciler(
                    client, store, sandbox.clock, spool=spool, settings=self._settings.execution
                ).reconcile()
                truth = await control.truth()
                pairs = {p.altname: p for p in (await client.asset_pairs()).values()}
                invariants = check_invariants(store, truth, pairs, before=before)
                for problem in report.errors:
                    invariants.add("protected", f"reconcile could not repair: {problem}")
                return invariants
        finally:
            await client.aclose()


SCRATCH_PREFIX = "tg-simulate-"
OWNER_FILE = "owner"
"""In a campaign's scratch folder: the machine and the pid of the process it is for."""


@contextmanager
def scratch_space(parent: Path | None = None) -> Iterator[Path]:
    """A campaign's scratch folder (its runs' databases and spools) in `parent` (the
    temporary directory), removed at its end. A campaign killed outright (SIGKILL, the
    OOM killer) cannot remove its own: this one removes those first, the folders of
    this user's campaigns on this machine whose process no longer runs."""
    parent = Path(parent or tempfile.gettempdir())
    here = socket.gethostname()
    for folder in parent.glob(f"{SCRATCH_PREFIX}*"):
        if _abandoned(folder, here):
            shutil.rmtree(folder, ignore_errors=True)
    with TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=parent) as made:
        (Path(made) / OWNER_FILE).write_text(f"{here} {os.getpid()}\n")
        yield Path(made)


def _abandoned(folder: Path, here: str) -> bool:
    """Whether `folder` is the scratch folder of a campaign of this user whose process
    is gone; one without an owner (not a campaign's, or still being made) never is."""
    try:
        if folder.stat().st_uid != os.getuid():
            return False
        host, pid = (folder / OWNER_FILE).read_text().split()
        return not may_run(host, int(pid), here)
    except (OSError, ValueError):
        return False


_worker: Simulation | None = None
"""A worker process's simulation, built once by its initializer."""


def _start_worker(
    settings: Settings,
    open_sandbox: SandboxFactory,
    workdir: Path,
    catalog: list[str],
    symbol: str,
) -> None:
    global _worker
    _exit_with_parent()
    _worker = Simulation(settings, open_sandbox, workdir, catalog=catalog, symbol=symbol)


def _exit_with_parent() -> None:
    """A worker whose `tg simulate` is killed outright (SIGKILL, the OOM killer) would
    wait for work forever, holding its memory and its run's files: every worker holds
    the task queue's write end too, so none ever reads an end of file. So a worker
    ends as soon as its parent does, which the parent's sentinel tells."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(1)  # nobody is left to read the status, nor to want the run it was on

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_in_worker(index: int, seed: int, faults: list[str]) -> RunResult:
    assert _worker is not None, "the worker's initializer did not run"
    with heap_frozen():
        return asyncio.run(_worker.run_once(index, seed, faults))
