"""`tg trade` sent SIGINT or SIGTERM (not SIGKILL) for real at a private-request
boundary, then `tg reconcile` once, and the account judged through ccxt.

How: the kill test's rig (test_kill_at_request_boundaries.py: a served sandbox on a
still clock, the counting proxy, ccxt on its own key, a foreign resting limit buy and a
foreign market buy). At private request N the proxy holds the request unsent
("before") or holds the exchange's answer ("after"); tg is signalled there. Once tg
has said it got the signal (or has ended), the proxy lets the world go on: the held
request reaches the exchange, or its answer reaches tg. Then tg must end as the README
says (130 for SIGINT, 143 for SIGTERM, one clear line, no traceback), having finished
protecting what it bought once its entry was on its way, and one `tg reconcile` must
leave the account as the kill test's judge wants it.
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
    problems: list[str] = []
    expected = EXIT_BY_SIGNAL[signals[0]]
    if finished.exitcode != expected:
        problems.append(f"exit {finished.exitcode}, not {expected}")
    if "Traceback" in finished.stderr:
        problems.append("a traceback")
    errors = [line for line in said(finished) if not line.startswith("note: ")]
    if len(errors) != 1 or not errors[0].startswith("error: "):
        problems.append(f"not one clear line: {errors}")
    before = look_through_ccxt(rig.bench.judge)  # what tg left, before any reconcile
    mine = [o for o in before.orders.values() if o.cl_ord_id]
    problems += [f"as tg left it: {p}" for p in cover("tg", net(mine), mine)]
    if not executing and mine:
        problems.append(f"stopped before its entry, tg placed {len(mine)} order(s)")
    reconciled = rig.tg_here("reconcile", "--url", rig.bench.server.url, "--db", rig.db, "--json")
    outcome = json.loads(reconciled.stdout) if reconciled.stdout.strip() else {}
    if outcome.get("changes"):
        problems.append(f"tg left reconcile something to do: {outcome['changes']}")
    listed = json.loads(rig.tg_here("orders", "--db", rig.db, "--json").stdout)
    account = look_through_ccxt(rig.bench.judge)
    problems += violations(rig, account, outcome["install_id"], listed)
    if reconciled.exitcode != 0:
        problems.append(f"reconcile exit {reconciled.exitcode}: {reconciled.stderr}")
    assert not problems, "\n".join(
        [
            *problems,
            f"tg trade's stderr: {finished.stderr[-1500:]}",
            *rig.proxy.sequence(),
            f"reconcile: {outcome.get('changes')} {outcome.get('errors')}",
            *(o.line() for o in account.orders.values()),
        ]
    )
