"""`tg run`: trade continuously on the coordinator's schedule, with a live view."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli import collector
from cli.exit_codes import ExitCode
from cli.options import ConfigOption, DbOption, JsonOption, checked_url, reports_errors, settings_from

if TYPE_CHECKING:
    from core.flows.run_loop import RunState, RunSummary

SIMULATED_DEFAULT_FOR = "24h"
_EXIT_BY_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


@reports_errors
def run(
    symbols: Annotated[
        str,
        typer.Option("--symbols", metavar="SYMBOLS", help="Pairs to trade, comma-separated, e.g. BTC/USDT,ETH/USD."),
    ] = "BTC/USDT",
    every: Annotated[
        str,
        typer.Option("--every", metavar="DURATION", help="A trading decision per symbol this often: 15m, 1h, 4h..."),
    ] = "1h",
    for_: Annotated[
        str | None,
        typer.Option(
            "--for",
            metavar="DURATION",
            help=f"How long to run (default: {SIMULATED_DEFAULT_FOR} simulated; until stopped on the wall clock).",
        ),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="NAME[:key=value,...]",
            help="A sandbox fault for the whole run (repeatable), or `random`: every fault now and then.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", metavar="N", min=0, help="Seed of the faults.")] = 1,
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="URL", help="A served sandbox (or Kraken with --live): wall-clock time."),
    ] = None,
    live: Annotated[bool, typer.Option("--live", help="Allow a non-loopback --url: real money.")] = False,
    realtime: Annotated[
        bool, typer.Option("--realtime", help="On the embedded sandbox, run on the wall clock.")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Trade continuously: a decision per symbol every --every, the invariants checked
    after every cycle, a live view, a summary at the end.

    On the embedded sandbox time is simulated, so `--for 7d` takes seconds. Ctrl-C or
    SIGTERM stop it gracefully: an execution in flight finishes, the summary prints,
    and tg exits 130 (SIGINT) or 143 (SIGTERM)."""
    import asyncio

    from cli.wiring import is_loopback
    from core.domain.durations import parse_duration
    from core.domain.errors import InputError

    names = [s.strip() for s in symbols.split(",") if s.strip()]
    if not names:
        raise InputError("--symbols needs at least one pair, e.g. BTC/USDT")
    every_s = parse_duration(every)
    if every_s <= 0:
        raise InputError("--every must be at least 1s")
    simulated = url is None and not realtime
    duration = for_ if for_ is not None else (SIMULATED_DEFAULT_FOR if simulated else None)
    for_s = parse_duration(duration) if duration is not None else None
    from cli.faults import check_faults

    faults = check_faults([f for f in fault or [] if f != "random"], tg_faults=False) + [
        f for f in fault or [] if f == "random"
    ]
    url = checked_url(url)
    if faults and url is not None and not is_loopback(url):
        raise InputError("--fault needs a sandbox: Kraken itself takes no faults")
    settings = settings_from(db, config)
    received: list[str] = []

    async def main() -> RunSummary:
        from cli.wiring import notice, open_session
        from core.exchange.sandbox_control import SandboxControl
        from core.flows.run_loop import ContinuousRun

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            name = signal.Signals(signum).name
            notice(
                f"{name}: {'still ' if received else ''}stopping: an execution under way finishes, "
                "then the last check and the summary"
            )
            received.append(name)
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        async with open_session(settings, url=url, live=live, simulated_time=simulated) as session:
            sandbox_url = session.client.base_url if url is None or is_loopback(url) else None  # has /_sandbox/
            transport = session.sandbox.transport if session.sandbox is not None else None
            control = SandboxControl(sandbox_url, transport=transport) if sandbox_url is not None else None
            try:
                if control is not None:
                    for spec in await _fault_specs(control, faults, seed):
                        await control.add_fault(spec)
                with _live_view(enabled=not json_output) as update:
                    return await ContinuousRun(
                        settings,
                        session.client,
                        session.store,
                        session.clock,
                        spool=session.spool,
                        simulated=simulated,
                        truth=control.truth if control is not None else _account_truth(session.client),
                        fault_log=control.fault_log if control is not None else None,
                        on_update=update,
                        on_start=notice,
                    ).run(
                        names,
                        every_s=every_s,
                        for_s=for_s,
                        stop=stop,
                        stop_reason=lambda: received[0] if received else "stopped",  # the first one asked
                    )
            finally:
                if control is not None:
                    await control.aclose()

    collector.work_begins()
    if simulated:
        import looptime

        with asyncio.Runner(loop_factory=lambda: looptime.new_event_loop(start=0, idle_timeout=5.0)) as runner:
            summary = runner.run(main())
    else:
        summary = asyncio.run(main())
    from cli.render import run_summary

    run_summary(summary.to_dict(), as_json=json_output)
    if not summary.ok:
        raise typer.Exit(ExitCode.UNSAFE)
    if summary.stopped_by in _EXIT_BY_SIGNAL:
        raise typer.Exit(_EXIT_BY_SIGNAL[summary.stopped_by])


async def _fault_specs(control: Any, faults: list[str], seed: int) -> list[str]:
    """The rules to install: `random` stands for every fault, now and then."""
    from cli.wiring import fault_catalog
    from core.flows.run_loop import random_faults

    if "random" not in faults:
        return faults
    return [f for f in faults if f != "random"] + random_faults(fault_catalog(), seed)


def _account_truth(client: Any) -> Callable[[], Any]:
    """Kraken itself has no control plane: the truth is what its API shows."""
    from core.exchange.account import ExchangeTruth

    async def truth() -> ExchangeTruth:
        orders = {**await client.closed_orders(), **await client.open_orders()}
        return ExchangeTruth(orders=orders, balances=await client.balance())

    return truth


@contextmanager
def _live_view(*, enabled: bool) -> Iterator[Callable[[RunState], None] | None]:
    """A live table on a terminal; nothing when not on one, or with --json."""
    if not enabled or not sys.stdout.isatty():
        yield None
        return
    from rich.live import Live

    with Live(auto_refresh=False, transient=True) as live:
        yield lambda state: live.update(_state_table(state), refresh=True)


def _state_table(state: RunState) -> Any:
    from rich.console import Group
    from rich.table import Table

    from cli.render import when

    symbols = Table("symbol", "last decision", "status", "at", title=_clock_title(state))
    for name, view in state.symbols.items():
        symbols.add_row(name, view.action, view.status, when(view.at, simulated=state.simulated))
    positions = Table("position", "symbol", "size", "entry", "stop", "target", title="open positions")
    for p in state.open_positions:
        positions.add_row(p["id"], p["symbol"], p["size"], p["entry_price"], p["stop_loss"], p["take_profit"])
    footer = (
        f"cycles {state.cycles}  trades {state.trades}  checks {state.checks}  "
        f"violations {sum(state.violations.values())}  degradation {state.degradation}  "
        f"faults injected {sum(state.injected.values())}"
    )
    alerts = "\n".join(state.alerts[-5:])
    return Group(symbols, positions, footer, alerts)


def _clock_title(state: RunState) -> str:
    from cli.render import when

    kind = "simulated" if state.simulated else "wall clock"
    return f"tg run, {kind} time {when(state.now, simulated=state.simulated)}"
