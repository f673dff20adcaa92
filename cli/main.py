"""The `tg` command line. Thin: it parses flags, calls core/ and simulator/, renders.

Heavy modules are imported inside the commands so that `tg --help` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.exceptions import NoArgsIsHelpError
from typer.exceptions import TyperException

from cli import collector
from cli.exit_codes import EPILOG, ExitCode
from cli.lazy import LazyGroup
from cli.options import ConfigOption, DbOption, JsonOption, LogLevel, configure_output, reports_errors, settings_from
from cli.replay import replay
from cli.run import run as run_command
from cli.sim import sim_app

if TYPE_CHECKING:
    from core.domain.config import Settings
    from core.execution.reconcile import ReconcileReport
from cli.stress import ratelimit_stress
from core.domain.enums import PositionStatus, Side

commands = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)
"""tg's commands and the `sim` group, registered at the end of this module and built one
at a time: the one the command line names (cli.lazy)."""


class _Commands(LazyGroup):
    registry = commands


app = typer.Typer(
    name="tg",
    cls=_Commands,
    help="A trading-safety toolkit: one LLM-assisted trade cycle against a sandbox Kraken.",
    no_args_is_help=True,
    epilog=EPILOG,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


NOT_DONE_STATUSES = frozenset({"FAILED", "UNKNOWN", "CLOSED"})
"""A trade that did not complete as intended: refused, of unknown outcome, or closed at
once because its stop-loss failed."""


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"tg {version('tg')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr: no notes, no progress.")] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More on stderr: -v what tg does, -vv every detail.")
    ] = 0,
    log_level: Annotated[
        LogLevel | None, typer.Option("--log-level", help="The log level outright (overrides -q and -v).")
    ] = None,
) -> None:
    """tg: prove a trading system safe against a sandbox Kraken before real money is at stake."""
    configure_output(quiet=quiet, verbose=verbose, level=log_level)


UrlOption = Annotated[
    str | None, typer.Option("--url", metavar="URL", help="A served simulator (or Kraken with --live).")
]
LiveOption = Annotated[bool, typer.Option("--live", help="Allow a non-loopback --url: real money.")]


@reports_errors
def trade(
    symbol: Annotated[str, typer.Argument(metavar="SYMBOL", help="Pair to trade, e.g. BTC/USDT.")],
    side: Annotated[
        Side | None,
        typer.Option("--side", help="Skip the agents and send this proposal (a 2% stop, a 4% target)."),
    ] = None,
    volume: Annotated[
        str | None, typer.Option("--volume", metavar="AMOUNT", help="Volume for --side (default: sized by risk).")
    ] = None,
    url: UrlOption = None,
    live: LiveOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run one full trade cycle: snapshot, agents, vote, risk, orders, position.

    Ctrl-C or SIGTERM stop it at once before the entry is sent; after, the execution is
    finished first (what filled gets its stop-loss), then tg exits 130 or 143."""
    import asyncio

    from cli import render
    from cli.interruption import Interruption
    from cli.wiring import open_session
    from core.flows.manual import manual_proposal, parse_volume
    from core.flows.trade_cycle import TradeCycle

    if volume is not None and side is None:
        from core.domain.errors import InputError

        raise InputError("--volume needs --side buy|sell")
    if volume is not None:
        parse_volume(volume)  # refused before the exchange is opened
    settings = settings_from(db, config)
    cycles: list[TradeCycle] = []
    interruption = Interruption(lambda: any(cycle.executed for cycle in cycles))

    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with open_session(settings, url=url, live=live) as session:
            manual = await manual_proposal(session.client, symbol, side.value, volume) if side else None
            cycle = TradeCycle(
                session.client,
                session.store,
                session.clock,
                settings,
                spool=session.spool,
                leases=session.leases,
            )
            cycles.append(cycle)
            report = await cycle.run(symbol, manual=manual)
            return report.to_dict(), report.unrecorded

    collector.work_begins()
    try:
        summary, unrecorded = interruption.run(run())
    except asyncio.CancelledError:
        if not interruption.cut_short:
            raise
        typer.echo(
            f"error: {interruption.said()} before the trade's entry was sent: no order of it was placed", err=True
        )
        raise typer.Exit(interruption.exit_code()) from None
    render.trade_summary(summary, as_json=json_output)
    if unrecorded or not summary["stored"]:
        render.unrecorded(unrecorded)
        raise typer.Exit(ExitCode.ENVIRONMENT)
    if interruption.received is not None:
        typer.echo(
            f"error: {interruption.said()} during the execution, which was seen through first: {summary['status']}",
            err=True,
        )
        raise typer.Exit(interruption.exit_code())
    if summary["status"] in NOT_DONE_STATUSES:
        raise typer.Exit(ExitCode.NOT_DONE)


@reports_errors
def runs(
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, help="How many runs to list.")] = 20,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """List recent runs, newest first."""
    from cli import render
    from core.flows.journal import as_listed
    from core.storage.store import Store

    settings = settings_from(db, config)
    with Store.open(settings.db_location, create=False) as store:
        render.runs_table(as_listed(store, store.list_runs(limit)), as_json=json_output)


@reports_errors
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="A run id, or a unique prefix of one.")],
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a stored run again."""
    from cli import render
    from core.domain.errors import InputError
    from core.flows.campaign import recorded_run
    from core.storage.store import Store

    settings = settings_from(db, config)
    with Store.open(settings.db_location, create=False) as store:
        record = recorded_run(store, run_id)
        if record is None:
            raise InputError(f"no run {run_id!r} in {store.location}; `tg runs` lists them")
    render.stored_run(record, as_json=json_output)


@reports_errors
def simulate(
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="NAME[:key=value,...]",
            help="A fault to inject (repeatable): a sandbox fault, db-fail, crash or random.",
        ),
    ] = None,
    runs: Annotated[int, typer.Option("--runs", metavar="N", min=1, help="How many seeded trade cycles.")] = 1,
    seed: Annotated[
        int, typer.Option("--seed", metavar="N", min=0, help="Seed of the first run; run i uses seed + i.")
    ] = 1,
    symbol: Annotated[str, typer.Option("--symbol", metavar="SYMBOL", help="Pair to trade.")] = "BTC/USDT",
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="URL", help="A sandbox served by `tg sim serve` (keys from the environment)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            help="Processes to spread the runs over (default: the core count; 1 with --url). "
            "The results are those of one worker.",
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="I/N",
            help="Run only shard I of N of the runs (every N-th seed), to split a campaign across machines "
            "sharing one database; `tg campaign ID` merges the shards.",
        ),
    ] = None,
    campaign: Annotated[
        str | None,
        typer.Option(
            "--campaign",
            metavar="ID",
            help="The campaign's id (default: a digest of the faults, runs, seed and symbol).",
        ),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Trade cycles against the sandbox with seeded faults; check the safety invariants."""
    import asyncio
    import os

    from cli import render
    from cli.faults import check_faults
    from cli.wiring import fault_catalog, served_sandbox, simulation_sandbox
    from core.flows.campaign import WHOLE, Shard
    from core.flows.simulation import Simulation, check_seeds, scratch_space
    from core.storage.store import Store

    share = Shard.parse(shard) if shard is not None else WHOLE
    check_seeds(seed, runs)
    settings = settings_from(db, config)
    catalog = fault_catalog()
    faults = check_faults(fault or [], tg_faults=True)
    if url is not None and workers not in (None, 1):
        from core.domain.errors import InputError

        raise InputError("--workers needs the embedded sandbox: the runs on a served one (--url) go one at a time")
    if workers is None:
        workers = 1 if url is not None else os.cpu_count() or 1
    sandboxes = served_sandbox(url) if url is not None else simulation_sandbox(settings)  # its keys, before the store

    with (
        Store.open(settings.db_location) as store,
        scratch_space() as workdir,
        render.simulation_progress(sum(1 for i in range(runs) if share.owns(i))) as advance,
    ):
        simulation = Simulation(settings, sandboxes, workdir, catalog=catalog, symbol=symbol)
        collector.work_begins()
        report = asyncio.run(
            simulation.run(
                faults,
                runs=runs,
                seed=seed,
                progress=advance,
                record_in=store,
                workers=workers,
                shard=share,
                campaign=campaign,
            )
        )
    summary = report.to_dict()
    render.simulation_report(summary, as_json=json_output)
    if not report.ok:
        raise typer.Exit(ExitCode.UNSAFE)


@reports_errors
def campaign_command(
    campaign_id: Annotated[str, typer.Argument(help="The campaign id `tg simulate` printed.")],
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """One report over a campaign's shards (`tg simulate --shard I/N`), from the shared database.

    Exit 3 if an invariant broke in any shard, 1 if a shard is missing or unfinished."""
    from cli import render
    from core.flows.campaign import campaign_report
    from core.storage.store import Store

    settings = settings_from(db, config)
    with Store.open(settings.db_location, create=False) as store:
        summary = campaign_report(store, campaign_id)
    render.campaign_report(summary, as_json=json_output)
    if not summary["ok"]:
        raise typer.Exit(ExitCode.UNSAFE)
    if not summary["complete"]:
        raise typer.Exit(ExitCode.NOT_DONE)


@reports_errors
def reconcile(
    adopt: Annotated[
        list[str] | None,
        typer.Option(
            "--adopt",
            metavar="INSTALL_ID",
            help="Take over the orders of another tg database's namespace (a lost database); repeatable.",
        ),
    ] = None,
    url: UrlOption = None,
    live: LiveOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Bring the database in line with the exchange and repair tg's unprotected positions.

    Only tg's own orders are touched (those of this database's install id, shown here);
    foreign orders and holdings on the account are listed and left alone. Ctrl-C or
    SIGTERM stop it at once before it sends anything; after, the repair is finished
    first, then tg exits 130 or 143."""
    import asyncio

    from cli import render
    from cli.interruption import Interruption
    from cli.wiring import open_session
    from core.domain.ownership import parse_install_id
    from core.execution.reconcile import Reconciler

    namespaces = [parse_install_id(text) for text in adopt or []]
    settings = settings_from(db, config)
    reconcilers: list[Reconciler] = []
    interruption = Interruption(lambda: any(reconciler.acted for reconciler in reconcilers))

    async def run() -> dict[str, Any]:
        async with open_session(settings, url=url, live=live) as session:
            reconciler = Reconciler(
                session.client,
                session.store,
                session.clock,
                spool=session.spool,
                settings=settings.execution,
                adopt=namespaces,
                leases=session.leases,
            )
            reconcilers.append(reconciler)
            report = await reconciler.reconcile()
            return render.reconcile_outcome(report, session.store.install_id, session.store.location)

    collector.work_begins()
    try:
        outcome = interruption.run(run())
    except asyncio.CancelledError:
        if not interruption.cut_short:
            raise
        typer.echo(f"error: {interruption.said()} before reconcile sent anything to the exchange", err=True)
        raise typer.Exit(interruption.exit_code()) from None
    render.reconcile_report(outcome, as_json=json_output)
    if outcome["unrecorded"]:
        render.unrecorded(outcome["unrecorded"])
        raise typer.Exit(ExitCode.ENVIRONMENT)
    if interruption.received is not None:
        typer.echo(f"error: {interruption.said()} during the repair, which was seen through first", err=True)
        raise typer.Exit(interruption.exit_code())
    if outcome["errors"]:
        raise typer.Exit(ExitCode.NOT_DONE)


@reports_errors
def positions(
    status: Annotated[
        PositionStatus | None,
        typer.Option("--status", help="Only these (default: both)."),
    ] = None,
    url: UrlOption = None,
    live: LiveOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Positions, open and closed, with realized P&L, as the exchange has them now (read only).

    A target or stop that filled since the last reconcile shows the position closed;
    what `tg reconcile` would change is said below the table."""
    from cli import render
    from core.storage.store import Store

    settings = settings_from(db, config)
    current = _exchange_view(settings, url, live)
    with Store.open(settings.db_location, create=False) as store:
        listed = [current.positions.get(p.id, p) if current else p for p in store.positions()]
    listed = [p for p in listed if status is None or p.status is status]
    render.positions_table(listed, as_json=json_output)
    if current is not None and not json_output:
        render.would_change(current)


@reports_errors
def orders(
    run_id: Annotated[str | None, typer.Option("--run", metavar="RUN_ID", help="Only this run's orders.")] = None,
    url: UrlOption = None,
    live: LiveOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Orders tg placed or adopted, with the exchange's status now (read only)."""
    from cli import render
    from core.storage.store import Store

    settings = settings_from(db, config)
    current = _exchange_view(settings, url, live)
    with Store.open(settings.db_location, create=False) as store:
        listed = [current.orders.get(o.client_order_id, o) if current else o for o in store.orders(run_id=run_id)]
    render.orders_table(listed, as_json=json_output)
    if current is not None and not json_output:
        render.would_change(current)


@reports_errors
def show_config(db: DbOption = None, config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """The settings in effect, and where each came from: default, the TOML file, a TG_*
    variable or a flag. Keys and tokens are not settings and never show here."""
    from cli import render
    from core.domain.config import describe

    rows = [{"key": key, "value": value, "source": source} for key, value, source in describe(config, db=db)]
    if json_output:
        render.print_json(rows)
        return
    table = render.table("setting", "value", "from", title="settings")
    for row in rows:
        table.add_row(row["key"], "-" if row["value"] is None else str(row["value"]), row["source"])
    render.show_table(render.console(), table)


_EXAMPLES = {
    "trade": ["tg trade BTC/USDT", "tg trade ETH/USD --side buy --volume 0.5 --json"],
    "run": ["tg run --symbols BTC/USDT,ETH/USD --every 1h --for 7d", "tg run --for 30d --fault random"],
    "simulate": [
        "tg simulate --fault stop-fail --runs 20",
        "tg simulate --fault random --runs 1000 --seed 7 --json",
        "tg simulate --fault random --runs 1000 --shard 2/4 --db postgresql://tg@db.example/tg",
    ],
    "campaign": ["tg campaign C-0123456789ab --db postgresql://tg@db.example/tg"],
    "replay": ["tg replay examples/btc_usd_1h.csv --every 4", "tg replay FILE --from 2025-03-01 --fault ghost"],
    "ratelimit-stress": ["tg ratelimit-stress --requests 1000 --tier starter --mix mixed"],
    "reconcile": ["tg reconcile", "tg reconcile --adopt 0123456789ab"],
    "positions": ["tg positions --status open", "tg positions --url http://127.0.0.1:8765"],
    "orders": ["tg orders --run R-0123456789ab --json"],
    "runs": ["tg runs --limit 5"],
    "show": ["tg show R-0123", "tg show R-0123 --json"],
    "config": ["tg config", "TG_RISK__MIN_CONFIDENCE=0.7 tg config --json"],
}
"""Shown at the end of each command's help."""


def _epilog(name: str) -> str:
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in _EXAMPLES[name])


_COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("trade", trade),
    ("run", run_command),
    ("simulate", simulate),
    ("campaign", campaign_command),
    ("replay", replay),
    ("ratelimit-stress", ratelimit_stress),
    ("reconcile", reconcile),
    ("positions", positions),
    ("orders", orders),
    ("runs", runs),
    ("show", show),
    ("config", show_config),
]
"""In the order `tg --help` lists them: trading, proving, looking."""
for _name, _command in _COMMANDS:
    commands.command(_name, epilog=_epilog(_name))(_command)
commands.add_typer(sim_app, name="sim")


def _exchange_view(settings: Settings, url: str | None, live: bool) -> ReconcileReport | None:
    """What the exchange says of tg's orders and positions now, read only: nothing is sent
    to the exchange and nothing written to the database. The embedded sandbox is asked too
    (a target that filled there shows closed); None when there is nothing to ask yet."""
    import asyncio

    from cli.wiring import sandbox_path

    embedded = url is None and settings.kraken.url is None
    if embedded and not (settings.db_path.exists() and sandbox_path(settings.db_path).exists()):
        return None
    from cli.wiring import open_session
    from core.execution.reconcile import Reconciler

    async def run() -> ReconcileReport:
        async with open_session(settings, url=url, live=live, reading=True) as session:
            return await Reconciler(
                session.client,
                session.store,
                session.clock,
                settings=settings.execution,
                repair=False,
                leases=session.leases,
            ).reconcile()

    collector.work_begins()
    return asyncio.run(run())


def main() -> None:
    """Console entry point: usage errors become one line and exit code 2; `tg` alone
    shows the help."""
    collector.for_startup()
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as asked:  # `tg` or `tg sim` alone: the help is the answer
        try:
            typer.echo(asked.format_message())
        except OSError as exc:
            _unwritable(exc)
        sys.exit(ExitCode.OK)
    except OSError as exc:  # the help or the version, which print before any command runs
        _unwritable(exc)
    except TyperException as exc:  # typer's own usage errors: bad flags, missing arguments
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {exc.format_message().replace('Value error, ', '')}{hint}", err=True)
        sys.exit(getattr(exc, "exit_code", ExitCode.USAGE))
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _unwritable(exc: OSError) -> None:
    """stdout refused the help or the version: a reader gone (`tg --help | head`) says
    nothing more, a full disk says so; stdout then goes nowhere, so that Python's last
    flush of it at exit raises nothing."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if isinstance(exc, BrokenPipeError):
        sys.exit(ExitCode.NOT_DONE)
    typer.echo(f"error: cannot write tg's output: {exc.strerror or exc}", err=True)
    sys.exit(ExitCode.ENVIRONMENT)
