"""tg sent SIGINT or SIGTERM (not SIGKILL) for real at private-request boundaries,
then `tg reconcile` once, and the account judged through ccxt.

How: the kill test's rig (test_kill_at_request_boundaries.py: a served sandbox on a
still clock, the counting proxy, ccxt on its own key, a foreign resting limit buy and a
foreign market buy). At private request N the proxy holds the request unsent
("before") or holds the exchange's answer ("after"); tg is signalled there. Once tg
has said it heard the signal (a `note:` line), or has ended, the proxy lets the world
go on: the held request reaches the exchange, or its answer reaches tg. tg must then
end as the README says (130 for SIGINT, 143 for SIGTERM, one clear line, no traceback);
having cut itself short before sending anything, or seen its execution or repair
through (the account covered as tg left it, before any reconcile); and one `tg
reconcile` must leave the account as the kill test's judge wants it.

Cases: `tg trade BTC/USD --side buy --volume 0.01` at the boundaries that matter (the
last before the entry, the entry's AddOrder and confirmation, the stop's AddOrder;
SIGNAL_MATRIX=full: all 20) under each signal, and signalled twice; `tg reconcile`
repairing an entry a SIGKILLed trade left bare, before and during its repair, once and
twice; `tg run --url` in its first cycle, once and twice, and again during its last
check; a trade waiting for another's lease. 27 cases, 15 s of test time (-n 0).

Found (fixed since): tg trade and tg reconcile died of SIGTERM (exit -15) and were cut
short by Ctrl-C mid-execution or mid-repair, leaving a filled entry without its stop
until the next reconcile; tg run said nothing on a signal and exited for the last one
it got; a trade cut short was listed by `tg runs` as died.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import wait

import pytest

from tests.integration import test_kill_at_request_boundaries as kill_test
from tests.integration.ccxt_judge import cover, look_through_ccxt, net
from tests.integration.kill_proxy import When
from tests.integration.test_kill_at_request_boundaries import FAULTS, SAFETY_S, VOLUME, Fault, Rig, violations
from tests.integration.tg_processes import Finished

pytestmark = pytest.mark.integration
bench, folder, rig_for = kill_test.bench, kill_test.folder, kill_test.rig_for  # the kill test's rig, as fixtures

SYMBOL = "BTC/USD"
CENSUS = FAULTS["none"].census
EXIT_BY_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


CHOSEN = [(4, "after"), (5, "before"), (5, "after"), (6, "after"), (7, "before"), (7, "after")]
"""The boundaries that matter: the last before the entry (the signal stops tg at once),
the entry's AddOrder and its confirmation (a signal there must wait for the stop), and
the stop's AddOrder. SIGNAL_MATRIX=full signals at every boundary of the cycle."""


def boundaries() -> list[object]:
    points = (
        [(i, w) for i in range(1, len(CENSUS) + 1) for w in ("before", "after")]
        if os.environ.get("SIGNAL_MATRIX") == "full"
        else CHOSEN
    )
    return [
        pytest.param(index, when, signum, id=f"{index:02d}-{CENSUS[index - 1]}-{when}-{signum.name}")
        for index, when in points
        for signum in (signal.SIGINT, signal.SIGTERM)
    ]


def said(finished: Finished) -> list[str]:
    return [line for line in finished.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(("index", "when", "signum"), boundaries())
def test_signalled_trade_ends_protected(
    rig_for: Callable[[Fault], Rig], index: int, when: When, signum: signal.Signals
) -> None:
    """One signal at a boundary: before the entry tg stops at once and places nothing;
    from the entry on it finishes protecting what it bought, then exits."""
    signalled_and_judged(rig_for(FAULTS["none"]), index, when, [signum])


@pytest.mark.parametrize("signals", [[signal.SIGINT, signal.SIGINT], [signal.SIGTERM, signal.SIGINT]], ids=str)
def test_a_second_signal_while_the_first_is_handled_changes_nothing(
    rig_for: Callable[[Fault], Rig], signals: list[signal.Signals]
) -> None:
    """Ctrl-C again while tg finishes the stop-loss of an entry that filled: it says it
    is still finishing, finishes, and exits for the first signal."""
    signalled_and_judged(rig_for(FAULTS["none"]), 5, "after", signals)


def signalled_and_judged(rig: Rig, index: int, when: When, signals: list[signal.Signals]) -> None:
    """`tg trade` signalled (each of `signals`, each once tg has said it heard the one
    before) while the proxy holds request `index`; the world let go on; then the exit,
    the account as tg left it, one `tg reconcile`, and the account again."""
    trap = rig.proxy.arm(index, when)
    cycle = rig.tg("trade", SYMBOL, "--side", "buy", "--volume", str(VOLUME), "--url", rig.proxy.url, "--db", rig.db)
    if trap.fileno() not in wait([trap.fileno(), cycle.process.sentinel], timeout=SAFETY_S):
        ended = cycle.wait(SAFETY_S)
        pytest.fail(f"tg ended (exit {ended.exitcode}) before request {index}:\n" + "\n".join(rig.proxy.sequence()))
    for count, signum in enumerate(signals, 1):
        os.kill(cycle.pid, signum)
        cycle.wait_for_stderr(f"note: {signum.name}" if count == 1 else f"note: {signum.name}: still", SAFETY_S)
    rig.proxy.go_on()
    finished = cycle.wait(SAFETY_S)
    executing = index >= CENSUS.index("AddOrder.market") + 1
    problems = ending_problems(finished, signals[0])
    left = look_through_ccxt(rig.bench.judge)  # what tg left, before any reconcile
    mine = [o for o in left.orders.values() if o.cl_ord_id]
    problems += [f"as tg left it: {p}" for p in cover("tg", net(mine), mine)]
    if not executing and mine:
        problems.append(f"stopped before its entry, tg placed {len(mine)} order(s)")
    if not executing:
        [listed] = json.loads(rig.tg_here("runs", "--db", rig.db, "--json").stdout)
        if listed["status"] != "interrupted":
            problems.append(f"`tg runs` lists the trade cut short as {listed['status']}")
    problems += judged_after_one_reconcile(rig, must_be_quiet=executing)
    assert not problems, "\n".join([*problems, f"tg trade's stderr: {finished.stderr[-1500:]}", *rig.proxy.sequence()])


def ending_problems(finished: Finished, first: signal.Signals) -> list[str]:
    """How the signalled command ended, against the README: its code, one clear line."""
    problems = []
    if finished.exitcode != EXIT_BY_SIGNAL[first]:
        problems.append(f"exit {finished.exitcode}, not {EXIT_BY_SIGNAL[first]}")
    if "Traceback" in finished.stderr:
        problems.append("a traceback")
    errors = [line for line in said(finished) if not line.startswith("note: ")]
    if len(errors) != 1 or not errors[0].startswith("error: "):
        problems.append(f"not one clear line: {errors}")
    return problems


def judged_after_one_reconcile(rig: Rig, *, must_be_quiet: bool) -> list[str]:
    """One `tg reconcile`, then the kill test's judge; `must_be_quiet`: the signalled
    command finished its work itself, so the reconcile has nothing to change."""
    reconciled = rig.tg_here("reconcile", "--url", rig.bench.server.url, "--db", rig.db, "--json")
    outcome = json.loads(reconciled.stdout) if reconciled.stdout.strip() else {}
    problems = []
    if reconciled.exitcode != 0 or "install_id" not in outcome:
        return [f"reconcile exit {reconciled.exitcode}: {reconciled.stderr}"]
    if must_be_quiet and outcome.get("changes"):
        problems.append(f"left reconcile something to do: {outcome['changes']}")
    listed = json.loads(rig.tg_here("orders", "--db", rig.db, "--json").stdout)
    account = look_through_ccxt(rig.bench.judge)
    problems += violations(rig, account, outcome["install_id"], listed)
    if problems:
        problems += [f"reconcile: {outcome.get('changes')} {outcome.get('errors')}"]
        problems += [o.line() for o in account.orders.values()]
    return problems


def left_unprotected(rig: Rig) -> None:
    """A trade SIGKILLed as its stop-loss was about to leave: tg's entry filled, no stop."""
    trap = rig.proxy.arm(CENSUS.index("AddOrder.stop-loss") + 1, "before")
    cycle = rig.tg("trade", SYMBOL, "--side", "buy", "--volume", str(VOLUME), "--url", rig.proxy.url, "--db", rig.db)
    assert trap.fileno() in wait([trap.fileno(), cycle.process.sentinel], timeout=SAFETY_S)
    os.kill(cycle.pid, signal.SIGKILL)
    cycle.wait(SAFETY_S)
    rig.proxy.release()


RECONCILE_CENSUS = (
    "ClosedOrders",
    "OpenOrders",
    "Balance",
    "AddOrder.stop-loss",
    "QueryOrders",
    "AddOrder.take-profit",
)
"""The private requests of `tg reconcile` repairing the entry `left_unprotected` leaves."""


@pytest.mark.parametrize(
    ("index", "when", "signals"),
    [
        (3, "after", [signal.SIGTERM]),
        (4, "before", [signal.SIGINT]),
        (4, "after", [signal.SIGTERM]),
        (4, "after", [signal.SIGINT, signal.SIGINT]),
        (5, "after", [signal.SIGTERM, signal.SIGINT]),
    ],
    ids=lambda value: "-".join(s.name for s in value) if isinstance(value, list) else str(value),
)
def test_signalled_reconcile_finishes_its_repair(
    rig_for: Callable[[Fault], Rig], index: int, when: When, signals: list[signal.Signals]
) -> None:
    """`tg reconcile` repairing an entry left without its stop, signalled (once, or
    again while it handles the first) before it sends anything (it stops at once) or
    once its stop-loss is on its way (it places it, and the rest of the repair, first)."""
    rig = rig_for(FAULTS["none"])
    left_unprotected(rig)
    trap = rig.proxy.arm(index, when)
    repair = rig.tg("reconcile", "--url", rig.proxy.url, "--db", rig.db)
    assert trap.fileno() in wait([trap.fileno(), repair.process.sentinel], timeout=SAFETY_S)
    for count, signum in enumerate(signals, 1):
        os.kill(repair.pid, signum)
        repair.wait_for_stderr(f"note: {signum.name}" if count == 1 else f"note: {signum.name}: still", SAFETY_S)
    rig.proxy.go_on()
    finished = repair.wait(SAFETY_S)
    labels = tuple(entry.label for entry in rig.proxy.log[:index])
    assert labels == RECONCILE_CENSUS[:index], "\n".join(rig.proxy.sequence())
    problems = ending_problems(finished, signals[0])
    acting = index >= RECONCILE_CENSUS.index("AddOrder.stop-loss") + 1
    left = look_through_ccxt(rig.bench.judge)  # as the interrupted reconcile left it
    mine = [o for o in left.orders.values() if o.cl_ord_id]
    if acting:
        problems += [f"as reconcile left it: {p}" for p in cover("tg", net(mine), mine)]
    elif len(mine) != 1:
        problems.append(f"stopped before it sent anything, reconcile placed {len(mine) - 1} order(s)")
    problems += judged_after_one_reconcile(rig, must_be_quiet=acting)
    assert not problems, "\n".join(
        [*problems, f"tg reconcile's stderr: {finished.stderr[-1500:]}", *rig.proxy.sequence()]
    )


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT], [signal.SIGTERM, signal.SIGINT]],
    ids=lambda value: "-".join(s.name for s in value),
)
def test_signalled_run_stops_gracefully_for_the_first_signal(
    rig_for: Callable[[Fault], Rig], signals: list[signal.Signals]
) -> None:
    """`tg run --url` signalled in its first cycle (its reconcile's OpenOrders answered
    but held), once or twice in a row: it finishes the cycle, checks, prints its
    summary and exits for the first signal (a SIGTERM then a Ctrl-C is still 143)."""
    rig = rig_for(FAULTS["none"])
    trap = rig.proxy.arm(2, "after")
    run = rig.tg("run", "--symbols", SYMBOL, "--every", "1h", "--url", rig.proxy.url, "--db", rig.db, "--json")
    assert trap.fileno() in wait([trap.fileno(), run.process.sentinel], timeout=SAFETY_S)
    for count, signum in enumerate(signals, 1):
        os.kill(run.pid, signum)
        run.wait_for_stderr(f"note: {signum.name}" if count == 1 else f"note: {signum.name}: still", SAFETY_S)
    rig.proxy.go_on()
    finished = run.wait(SAFETY_S)
    problems = []
    if finished.exitcode != EXIT_BY_SIGNAL[signals[0]]:
        problems.append(f"exit {finished.exitcode}, not {EXIT_BY_SIGNAL[signals[0]]}")
    if "Traceback" in finished.stderr or any(not line.startswith("note: ") for line in said(finished)):
        problems.append("stderr is more than notes")
    summary = json.loads(finished.stdout) if finished.stdout.strip() else {}
    if summary.get("stopped_by") != signals[0].name or not summary.get("ok"):
        problems.append(f"the summary: stopped by {summary.get('stopped_by')}, ok {summary.get('ok')}")
    problems += judged_after_one_reconcile(rig, must_be_quiet=True)
    assert not problems, "\n".join([*problems, f"tg run's stderr: {finished.stderr[-1500:]}", *rig.proxy.sequence()])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_trade_waiting_for_the_lease_stops_at_once(rig_for: Callable[[Fault], Rig], signum: signal.Signals) -> None:
    """A second `tg trade` waiting for the lease another one holds (held at its stop's
    AddOrder) is signalled: it stops at once, having placed nothing; the first, let go
    on, finishes, and the account is sound."""
    rig = rig_for(FAULTS["none"])
    trap = rig.proxy.arm(CENSUS.index("AddOrder.stop-loss") + 1, "before")
    first = rig.tg("trade", SYMBOL, "--side", "buy", "--volume", str(VOLUME), "--url", rig.proxy.url, "--db", rig.db)
    assert trap.fileno() in wait([trap.fileno(), first.process.sentinel], timeout=SAFETY_S)
    second = rig.tg("trade", SYMBOL, "--side", "buy", "--volume", str(VOLUME), "--url", rig.proxy.url, "--db", rig.db)
    second.wait_for_stderr("note: ", SAFETY_S)  # it says it waits for the first
    os.kill(second.pid, signum)
    stopped = second.wait(SAFETY_S)
    rig.proxy.go_on()
    done = first.wait(SAFETY_S)
    problems = ending_problems(stopped, signum)
    if "waiting" not in stopped.stderr:
        problems.append("the second trade did not say it waited for the lease")
    if done.exitcode != 0:
        problems.append(f"the first trade ended {done.exitcode}: {done.stderr}")
    if len([e for e in rig.proxy.log if e.label == "AddOrder.market"]) != 1:
        problems.append("the second trade sent an entry")
    problems += judged_after_one_reconcile(rig, must_be_quiet=True)
    assert not problems, "\n".join([*problems, f"the second's stderr: {stopped.stderr}", *rig.proxy.sequence()])


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_during_the_last_check_of_a_run(rig_for: Callable[[Fault], Rig], second: signal.Signals) -> None:
    """`tg run --url` told to stop in its first cycle, then signalled again while its
    last check's reconcile waits for the exchange: once the exchange answers, the check
    ends, the summary prints, and the run exits for the first signal."""
    rig = rig_for(FAULTS["none"])
    trap = rig.proxy.arm(2, "after")
    run = rig.tg("run", "--symbols", SYMBOL, "--every", "1h", "--url", rig.proxy.url, "--db", rig.db, "--json")
    assert trap.fileno() in wait([trap.fileno(), run.process.sentinel], timeout=SAFETY_S)
    os.kill(run.pid, signal.SIGINT)
    run.wait_for_stderr("note: SIGINT", SAFETY_S)
    # the cycle's reconcile has one request to go (Balance); the last check's first is next
    check = rig.proxy.go_on_and_arm(2, "before")
    assert check.fileno() in wait([check.fileno(), run.process.sentinel], timeout=SAFETY_S)
    os.kill(run.pid, second)
    run.wait_for_stderr(f"note: {second.name}: still", SAFETY_S)
    rig.proxy.go_on()
    finished = run.wait(SAFETY_S)
    problems = []
    if finished.exitcode != EXIT_BY_SIGNAL[signal.SIGINT]:
        problems.append(f"exit {finished.exitcode}, not 130")
    if "Traceback" in finished.stderr or any(not line.startswith("note: ") for line in said(finished)):
        problems.append("stderr is more than notes")
    summary = json.loads(finished.stdout) if finished.stdout.strip() else {}
    if summary.get("stopped_by") != "SIGINT" or not summary.get("ok") or summary.get("checks", 0) < 1:
        problems.append(f"the summary: {summary}")
    problems += judged_after_one_reconcile(rig, must_be_quiet=True)
    assert not problems, "\n".join([*problems, f"tg run's stderr: {finished.stderr[-1500:]}", *rig.proxy.sequence()])
