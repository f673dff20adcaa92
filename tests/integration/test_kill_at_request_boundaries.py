"""`tg trade` SIGKILLed for real at a private-request boundary, `tg reconcile` run
after it, and the account judged through ccxt, a client that shares no code with tg.

How: a sandbox is served in this process; `tg trade BTC/USDT --side buy --volume 0.01`
runs as its own process (forked from a server that has tg imported) against a counting
proxy (kill_proxy.py). At private request N the proxy holds the request unsent
("before") or holds the exchange's answer ("after"); tg is SIGKILLed there and the
held request dropped. `tg reconcile` then runs until a pass changes nothing (moving the
exchange's clock past the hiding between passes when the fault hides orders), and ccxt,
on its own key of the same account, reads the balance and every order. Before the
trade a foreign resting limit buy and a foreign market buy are placed with ccxt.

The judge: what tg holds (the BTC balance less what the foreign orders bought) is what
tg's orders net, is covered exactly by tg's live stop-losses, and is what tg's database
has in open positions; no take-profit sells more than that; tg has at most one entry on
the exchange; no client order id was accepted twice; every order of tg's on the
exchange is listed by `tg orders` with the exchange's status; the foreign limit rests
as placed and the foreign purchase is still held; the last reconcile pass changes
nothing, exit 0.

Set-up: the exchange's clock stands still (moved by the test, and under stale-visibility
by TICK_S per request tg sends), so what the crash left is what reconcile finds, on a
loaded machine as on an idle one; the sandbox has no rate limits (the judge's calls
would only add noise); the commands after the crash run in this process (CliRunner).

Matrix (the kill points are the requests each fault's uninterrupted cycle makes,
counted by test_a_cycle_makes_the_requests_the_matrix_kills_at, which also judges that
cycle): no fault, 10 requests; stale-visibility 13; ghost on the entry
(internal-error) 12, on the stop-loss (html-5xx) 11, on the take-profit (internal-error)
11; partial-fill 12. The default run kills at every boundary of the no-fault cycle,
before and after (20), and for each fault at its own request (after) plus 2 boundaries
drawn with a fixed seed from the fault's request on (15); before that request a faulted
cycle is the no-fault one. 35 kill points and 6 uninterrupted cycles: 33-47 s on this
2-core machine while other test runs kept its load average at 2-4. KILL_MATRIX=full
runs all 86 kill points (75-86 s). The ghost `timeout` variant is left out: over TCP it
holds the connection for tg's 10 s client timeout, and tg takes it for the same lost
answer as the other two.

Found: no violation, in the default run or the full matrix. Two things noticed on the
way were fixed in tg since: a protective order a reconcile sends again is read back at
once (it stayed "pending" until a second reconcile), and `execution.keep_unfilled_remainder`
now reaches reconciliation.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import ccxt
import pytest
from typer.testing import CliRunner

from cli.main import app
from core.domain.clock import SkippableSystemClock
from core.domain.enums import PositionStatus
from core.domain.ownership import OrderNamespace
from core.storage.store import Store
from simulator.control import Sandbox
from simulator.server import SandboxServer, serving
from tests.integration.ccxt_judge import (
    KEYS,
    TG_KEY,
    TG_SECRET,
    Account,
    cover,
    judge_client,
    look_through_ccxt,
    net,
    repeated_client_ids,
)
from tests.integration.kill_proxy import KillProxy, When
from tests.integration.tg_processes import Finished, TgProcess, scratch_folder

pytestmark = pytest.mark.integration
runner = CliRunner()

TG_ENV = {"TG_KRAKEN_API_KEY": TG_KEY, "TG_KRAKEN_API_SECRET": TG_SECRET}
SYMBOL = "BTC/USDT"
VOLUME = Decimal("0.01")
FOREIGN_LIMIT = (Decimal("0.001"), Decimal(30000))  # volume, price: far below the market, it rests
FOREIGN_MARKET = Decimal("0.002")
SAFETY_S = 60.0
"""Only a safety net: every wait ends on an event or a process's exit long before."""
TICK_S = 0.2
"""Exchange time per private request tg sends, under a fault that hides orders: the
exchange's clock moves with tg's requests, never with the wall clock, so what a
request finds hidden is the same on a loaded machine as on an idle one."""
HIDDEN_S = 0.3
"""How long stale-visibility hides a new order: tg's look right after placing it
misses it (one tick later), the look after that finds it (two ticks)."""
MAX_PASSES = 4


class StillClock(SkippableSystemClock):
    """The sandbox's clock: it stands still, and moves only when advanced (by the
    proxy's ticks and the test), so the exchange stays exactly as the crash left it:
    hidden orders stay hidden, a partial fill's rest stays open. A SkippableSystemClock,
    so the control plane may advance it; `start` puts it at the wall clock's time (never
    back), so tg's clock and the exchange's do not drift apart over the module."""

    def __init__(self) -> None:
        super().__init__()
        self._at = time.time()
        self._monotonic = time.monotonic()

    def start(self) -> None:
        self.advance(max(0.0, time.time() - self._at))

    def time(self) -> float:
        return self._at

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._at += seconds
        self._monotonic += seconds

    def tick(self) -> None:
        self.advance(TICK_S)


@dataclass(frozen=True)
class Fault:
    specs: tuple[str, ...]
    census: tuple[str, ...]
    """The private requests of one uninterrupted cycle under this fault, as the proxy
    labels them: the kill points. test_a_cycle_makes_the_requests_the_matrix_kills_at
    checks it against a dry run."""
    faulted: int | None = None
    """The request the fault hits, always among the sampled kill points."""
    ticks: bool = False
    """The exchange's clock moves TICK_S with each private request tg sends (for the
    orders it hides to show again while tg waits); otherwise it stands still."""
    reconcile_env: Mapping[str, str] = field(default_factory=dict)


_START = ("ClosedOrders", "OpenOrders", "Balance", "Balance")
"""The reconcile a cycle opens with, then the balance the risk engine sizes with."""
FAULTS: dict[str, Fault] = {
    "none": Fault(
        (),
        (
            *_START,
            "AddOrder.market",
            "QueryOrders",
            "AddOrder.stop-loss",
            "QueryOrders",
            "AddOrder.take-profit",
            "QueryOrders",
        ),
    ),
    "stale": Fault(
        (f"stale-visibility:seconds={HIDDEN_S}",),
        (
            *_START,
            "AddOrder.market",
            "QueryOrders",
            "QueryOrders",
            "AddOrder.stop-loss",
            "QueryOrders",
            "QueryOrders",
            "AddOrder.take-profit",
            "QueryOrders",
            "QueryOrders",
        ),
        faulted=5,
        ticks=True,
        # A reconcile's requests do not tick, so what it places stays hidden until the
        # test advances the clock: tg's confirm would wait out 15.5 s of real time.
        reconcile_env={"TG_EXECUTION__CONFIRM_ATTEMPTS": "1"},
    ),
    "ghost-entry": Fault(
        ("ghost:match=entry,variant=internal-error",),
        (
            *_START,
            "AddOrder.market",
            "OpenOrders.by-client-id",
            "ClosedOrders.by-client-id",
            "QueryOrders",
            "AddOrder.stop-loss",
            "QueryOrders",
            "AddOrder.take-profit",
            "QueryOrders",
        ),
        faulted=5,
    ),
    "ghost-stop": Fault(
        ("ghost:match=stop_loss,variant=html-5xx",),
        (
            *_START,
            "AddOrder.market",
            "QueryOrders",
            "AddOrder.stop-loss",
            "OpenOrders.by-client-id",
            "QueryOrders",
            "AddOrder.take-profit",
            "QueryOrders",
        ),
        faulted=7,
    ),
    "ghost-target": Fault(
        ("ghost:match=take_profit,variant=internal-error",),
        (
            *_START,
            "AddOrder.market",
            "QueryOrders",
            "AddOrder.stop-loss",
            "QueryOrders",
            "AddOrder.take-profit",
            "OpenOrders.by-client-id",
            "QueryOrders",
        ),
        faulted=9,
    ),
    "partial": Fault(
        ("partial-fill",),
        (
            *_START,
            "AddOrder.market",
            "QueryOrders",
            "CancelOrder",
            "QueryOrders",
            "AddOrder.stop-loss",
            "QueryOrders",
            "AddOrder.take-profit",
            "QueryOrders",
        ),
        faulted=5,
    ),
}
SAMPLED = None if os.environ.get("KILL_MATRIX") == "full" else 2
"""Kill points per faulted cycle besides the fault's own request, drawn with a fixed
seed (every one of the no-fault cycle runs): the whole matrix takes over a minute.
KILL_MATRIX=full runs all of them."""


def kill_points() -> Iterator[Any]:
    for name, fault in FAULTS.items():
        points = [(index, when) for index in range(1, len(fault.census) + 1) for when in ("before", "after")]
        if fault.faulted is not None:
            # Before the fault's request a cycle is the no-fault one, killed there already.
            chosen = {(fault.faulted, "after")}
            rest = sorted({(i, w) for i, w in points if i >= fault.faulted} - chosen)
            chosen |= set(rest if SAMPLED is None else random.Random(f"kill-points:{name}").sample(rest, SAMPLED))
            points = sorted(chosen)
        for index, when in points:
            label = fault.census[index - 1]
            yield pytest.param(name, index, when, id=f"{name}-{index:02d}-{label}-{when}")


# --- the rig -----------------------------------------------------------------------


@dataclass
class Bench:
    """One sandbox, its proxy and the judge for the whole module; each case starts it
    over (Sandbox.reset) rather than serving a new one, which costs a shutdown."""

    server: SandboxServer
    clock: StillClock
    proxy: KillProxy
    judge: ccxt.kraken

    @property
    def sandbox(self) -> Sandbox:
        assert self.server.sandbox is not None
        return self.server.sandbox


@dataclass
class Rig:
    bench: Bench
    folder: Path
    foreign: tuple[str, str]
    """The foreign resting limit buy and the foreign market buy, by txid."""

    @property
    def db(self) -> str:
        return str(self.folder / "tg.db")

    @property
    def proxy(self) -> KillProxy:
        return self.bench.proxy

    @property
    def env(self) -> dict[str, str]:
        """tg's keys, and its data folder (the nonce files) in the case's folder."""
        return {**TG_ENV, "TG_DATA_DIR": str(self.folder)}

    def tg(self, *argv: str, env: Mapping[str, str] | None = None) -> TgProcess:
        """`tg ARGV` as a process of its own: the one to kill."""
        return TgProcess(argv, {**self.env, **(env or {})}, self.folder)

    def tg_here(self, *argv: str, env: Mapping[str, str] | None = None) -> Finished:
        """`tg ARGV` in this process, through Typer's runner: the commands that run
        after the crash, at half a process's cost. No TG_* variable of the caller's leaks
        in, and no ./tg.toml is read."""
        config = self.folder / "empty.toml"
        config.touch()
        clean: dict[str, str | None] = {name: None for name in os.environ if name.startswith("TG_")}
        started = time.monotonic()
        result = runner.invoke(app, list(argv), env={**clean, **self.env, "TG_CONFIG": str(config), **(env or {})})
        return Finished(list(argv), result.exit_code, result.stdout, result.stderr, time.monotonic() - started)


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    clock = StillClock()
    with serving(keys=KEYS, tier=None, clock=clock) as server, KillProxy(server.url) as proxy:
        judge = judge_client(server.url)
        judge.load_markets()
        yield Bench(server, clock, proxy, judge)
        judge.session.close()


@pytest.fixture
def folder() -> Iterator[Path]:
    with scratch_folder("tg-kill-") as path:
        yield path


@pytest.fixture
def rig_for(bench: Bench, folder: Path) -> Callable[[Fault], Rig]:
    def open_rig(fault: Fault) -> Rig:
        bench.clock.start()
        bench.proxy.on_forward = bench.clock.tick if fault.ticks else None
        bench.sandbox.faults.clear()
        bench.sandbox.reset()
        judge = bench.judge
        resting = judge.create_order(SYMBOL, "limit", "buy", float(FOREIGN_LIMIT[0]), float(FOREIGN_LIMIT[1]))
        bought = judge.create_order(SYMBOL, "market", "buy", float(FOREIGN_MARKET))
        for spec in fault.specs:  # after the foreign orders, which the faults must not hit
            bench.sandbox.add_faults(spec)
        return Rig(bench, folder, (resting["id"], bought["id"]))

    return open_rig


# --- the judge -----------------------------------------------------------------------


def violations(rig: Rig, account: Account, install_id: str, listed: list[dict[str, Any]]) -> list[str]:
    """What tg's guarantees say cannot be, as the account shows it."""
    namespace = OrderNamespace.of(install_id)
    mine = [o for o in account.orders.values() if namespace.owns(o.cl_ord_id)]
    foreign = [o for o in account.orders.values() if not namespace.owns(o.cl_ord_id)]
    found: list[str] = []
    held = account.btc - net(foreign)  # the account started with no BTC
    if held != net(mine):
        found.append(
            f"the account holds {account.btc} BTC: {net(foreign)} the foreign orders bought leaves "
            f"{held}, but tg's orders net {net(mine)}"
        )
    found += cover("tg", held, mine)
    entries = [o for o in mine if o.side == "buy"]  # a long trade's only buy is its entry
    if len(entries) > 1 or sum(1 for o in entries if o.filled > 0) > 1:
        found.append(f"{len(entries)} entries of tg's for one trade: " + "; ".join(o.line() for o in entries))
    found += repeated_client_ids(account)
    recorded = {row["txid"]: row for row in listed if row["txid"]}  # `tg orders --json` says txid
    for order in mine:
        row = recorded.get(order.txid)
        if row is None:
            found.append(f"tg's order {order.line()} is not listed by `tg orders`")
        elif row["status"] != order.status:
            found.append(f"`tg orders` says {order.txid} is {row['status']}, the exchange says {order.status}")
    resting, bought = (account.orders.get(txid) for txid in rig.foreign)
    if (
        resting is None
        or not resting.live
        or (resting.volume, resting.price, resting.filled) != (FOREIGN_LIMIT[0], FOREIGN_LIMIT[1], Decimal(0))
    ):
        found.append(f"the foreign limit buy is not resting as placed: {resting and resting.line()}")
    if bought is None or bought.status == "canceled":
        found.append(f"the foreign market buy was cancelled or is gone: {bought and bought.line()}")
    with Store.open(Path(rig.db)) as store:
        tracked = sum((p.size for p in store.positions(status=PositionStatus.OPEN)), Decimal(0))
    if tracked != held:
        found.append(f"tg's database has {tracked} BTC in open positions, tg holds {held}")
    return found


# --- the runs --------------------------------------------------------------------------


def reconcile_until_quiet(rig: Rig, fault: Fault) -> list[tuple[Finished, dict[str, Any]]]:
    """`tg reconcile` until a pass changes nothing. When the fault hides orders, the
    first pass runs while the crash's last orders are still hidden and the clock is
    moved past the hiding before each next one."""
    passes: list[tuple[Finished, dict[str, Any]]] = []
    while len(passes) < MAX_PASSES:
        finished = rig.tg_here(
            "reconcile", "--url", rig.bench.server.url, "--db", rig.db, "--json", env=fault.reconcile_env
        )
        outcome = json.loads(finished.stdout) if finished.stdout.strip() else {}
        passes.append((finished, outcome))
        if fault.ticks:
            rig.bench.sandbox.advance(2 * HIDDEN_S)
        quiet = not outcome.get("changes") and not outcome.get("errors") and finished.exitcode == 0
        if quiet and (len(passes) > 1 or not fault.ticks):
            break
    return passes


def describe(rig: Rig, passes: list[tuple[Finished, dict[str, Any]]], account: Account) -> str:
    """The case as a report: tg's requests, what each reconcile pass did, the account."""
    lines = ["tg trade's private requests:", *(f"  {line}" for line in rig.proxy.sequence())]
    for number, (finished, outcome) in enumerate(passes, 1):
        lines.append(f"reconcile pass {number} (exit {finished.exitcode}):")
        for key in ("changes", "errors", "pending"):
            lines += [f"  {key}: {item}" for item in outcome.get(key, [])]
        if not outcome:
            lines.append(f"  stderr: {finished.stderr.strip()[-400:]}")
    lines.append(f"the account: {account.btc} BTC")
    lines += [f"  {order.line()}" for order in account.orders.values()]
    return "\n".join(lines)


def judge_after(rig: Rig, passes: list[tuple[Finished, dict[str, Any]]]) -> None:
    """Fail with the whole story if the account breaks any of tg's guarantees."""
    last, outcome = passes[-1]
    listed = json.loads(rig.tg_here("orders", "--db", rig.db, "--json").stdout)
    account = look_through_ccxt(rig.bench.judge)
    found = violations(rig, account, outcome["install_id"], listed)
    if outcome.get("changes") or outcome.get("errors") or last.exitcode != 0:
        found.append(f"reconcile did not settle in {len(passes)} passes")
    assert not found, "\n".join(["violations:", *found, describe(rig, passes, account)])


@pytest.mark.parametrize("fault_name", list(FAULTS))
def test_a_cycle_makes_the_requests_the_matrix_kills_at(rig_for: Callable[[Fault], Rig], fault_name: str) -> None:
    """The fault's uninterrupted cycle, counted: the kill points are its requests (and
    the table they are parametrized from must still be right); with no kill at all the
    account must already be in order."""
    fault = FAULTS[fault_name]
    rig = rig_for(fault)
    rig.proxy.arm(None)
    finished = rig.tg(
        "trade", SYMBOL, "--side", "buy", "--volume", str(VOLUME), "--url", rig.proxy.url, "--db", rig.db, "--json"
    ).wait(SAFETY_S)
    assert finished.exitcode == 0, finished.stderr
    labels = tuple(entry.label for entry in rig.proxy.log)
    assert labels == fault.census, "the cycle's requests changed:\n" + "\n".join(rig.proxy.sequence())
    judge_after(rig, reconcile_until_quiet(rig, fault))


@pytest.mark.parametrize(("fault_name", "index", "when"), list(kill_points()))
def test_killed_cycle_reconciles_to_a_sound_account(
    rig_for: Callable[[Fault], Rig], fault_name: str, index: int, when: When
) -> None:
    """SIGKILL between two private requests (before request N reaches the exchange,
    or after the exchange answered it but before tg heard), then reconcile: tg holds
    exactly what its stops cover, placed one entry, orphans nothing, records every
    order of its own, and leaves the foreign orders and holdings alone."""
    fault = FAULTS[fault_name]
    rig = rig_for(fault)
    trap = rig.proxy.arm(index, when)
    cycle = rig.tg(
        "trade", SYMBOL, "--side", "buy", "--volume", str(VOLUME), "--url", rig.proxy.url, "--db", rig.db, "--json"
    )
    if trap.fileno() not in wait([trap.fileno(), cycle.process.sentinel], timeout=SAFETY_S):
        ended = cycle.wait(SAFETY_S)
        pytest.fail(f"tg ended (exit {ended.exitcode}) before request {index}:\n" + "\n".join(rig.proxy.sequence()))
    os.kill(cycle.pid, signal.SIGKILL)
    killed = cycle.wait(SAFETY_S)
    rig.proxy.release()
    assert killed.exitcode == -signal.SIGKILL
    seen = tuple(entry.label for entry in rig.proxy.log[:index])
    assert seen == fault.census[:index], "the cycle went another way:\n" + "\n".join(rig.proxy.sequence())
    judge_after(rig, reconcile_until_quiet(rig, fault))
