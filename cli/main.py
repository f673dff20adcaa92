"""The `tg` command line. Thin: it parses flags, calls core/ and simulator/, renders.

Heavy modules are imported inside the commands so that `tg --help` stays fast.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.exceptions import NoArgsIsHelpError
from typer.exceptions import TyperException

from cli.exit_codes import EPILOG, ExitCode
from cli.options import ConfigOption, DbOption, JsonOption, reports_errors, settings_from
from cli.replay import replay
from cli.run import run as run_command
from cli.sim import sim_app

if TYPE_CHECKING:
    from core.domain.config import Settings
    from core.execution.reconcile import ReconcileReport
from cli.stress import ratelimit_stress

app = typer.Typer(
    name="tg",
    help="A trading-safety toolkit: one LLM-assisted trade cycle against a sandbox Kraken.",
    no_args_is_help=True,
    epilog=EPILOG,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(sim_app, name="sim")
app.command()(replay)
app.command("run")(run_command)


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
) -> None:
    """tg: prove a trading system safe against a sandbox Kraken before real money is at stake."""


UrlOption = Annotated[str | None, typer.Option("--url", help="A served simulator (or Kraken with --live).")]
LiveOption = Annotated[bool, typer.Option("--live", help="Allow a non-loopback --url: real money.")]


@app.command()
@reports_errors
def trade(
    symbol: Annotated[str, typer.Argument(help="Pair to trade, e.g. BTC/USDT.")],
    side: Annotated[
        str | None, typer.Option("--side", help="buy|sell: skip the agents and send this proposal.")
    ] = None,
    volume: Annotated[str | None, typer.Option("--volume", help="Volume for --side (default: sized by risk).")] = None,
    url: UrlOption = None,
    live: LiveOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run one full trade cycle: snapshot, agents, vote, risk, orders, position."""
    from cli import render
    from cli.wiring import open_session
    from core.flows.manual import manual_proposal
    from core.flows.trade_cycle import TradeCycle

    if volume is not None and side is None:
        from core.domain.errors import InputError

        raise InputError("--volume needs --side buy|sell")
    settings = settings_from(db, config)

    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with open_session(settings, url=url, live=live) as session:
            manual = await manual_proposal(session.client, symbol, side, volume) if side else None
            report = await TradeCycle(
                session.client,
                session.store,
                session.clock,
                settings,
                spool=session.spool,
                leases=session.leases,
            ).run(symbol, manual=manual)
            return report.to_dict(), report.unrecorded

    summary, unrecorded = asyncio.run(run())
    render.trade_summary(summary, as_json=json_output)
    if unrecorded or not summary["stored"]:
        render.unrecorded(unrecorded)
        raise typer.Exit(ExitCode.ENVIRONMENT)
    if summary["status"] in NOT_DONE_STATUSES:
        raise typer.Exit(ExitCode.NOT_DONE)


@app.command()
@reports_errors
def runs(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs to list.")] = 20,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """List recent runs, newest first."""
    from cli import render
    from core.storage.store import Store

    settings = settings_from(db, config)
    with Store.open(settings.db_location) as store:
        render.runs_table(store.list_runs(limit), as_json=json_output)


@app.command()
@reports_errors
def show(
    run_id: Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.")],
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a stored run again."""
    from cli import render
    from core.domain.errors import InputError
    from core.storage.store import Store

    settings = settings_from(db, config)
    with Store.open(settings.db_location) as store:
        record = store.get_run(run_id)
        if record is None:
            raise InputError(f"no run {run_id!r} in {store.location}; `tg runs` lists them")
    render.stored_run(record, as_json=json_output)


@app.command()
@reports_errors
def simulate(
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help="A fault to inject (repeatable): a sandbox fault, db-fail, crash or random."),
    ] = None,
    runs: Annotated[int, typer.Option("--runs", min=1, help="How many seeded trade cycles.")] = 1,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the first run; run i uses seed + i.")] = 1,
    symbol: Annotated[str, typer.Option("--symbol", help="Pair to trade.")] = "BTC/USDT",
    url: Annotated[
        str | None, typer.Option("--url", help="A sandbox served by `tg sim serve` (keys from the environment).")
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
        typer.Option("--campaign", help="The campaign's id (default: a digest of the faults, runs, seed and symbol)."),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Trade cycles against the sandbox with seeded faults; check the safety invariants."""
    import tempfile
    from pathlib import Path

    from cli import render
    from cli.faults import check_faults
    from cli.wiring import fault_catalog, served_sandbox, simulation_sandbox
    from core.flows.campaign import WHOLE, Shard
    from core.flows.simulation import Simulation
    from core.storage.store import Store

    share = Shard.parse(shard) if shard is not None else WHOLE
    settings = settings_from(db, config)
    catalog = fault_catalog()
    faults = check_faults(fault or [], tg_faults=True)

    with (
        Store.open(settings.db_location) as store,
        tempfile.TemporaryDirectory(prefix="tg-simulate-") as workdir,
        render.simulation_progress(runs) as advance,
    ):
        sandboxes = served_sandbox(url) if url is not None else simulation_sandbox(settings)
        simulation = Simulation(settings, sandboxes, Path(workdir), catalog=catalog, symbol=symbol)
        report = asyncio.run(
            simulation.run(
                faults, runs=runs, seed=seed, progress=advance, record_in=store, shard=share, campaign=campaign
            )
        )
    summary = report.to_dict()
    render.simulation_report(summary, as_json=json_output)
    if not report.ok:
        raise typer.Exit(ExitCode.UNSAFE)


@app.command("campaign")
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
    with Store.open(settings.db_location) as store:
        summary = campaign_report(store, campaign_id)
    render.campaign_report(summary, as_json=json_output)
    if not summary["ok"]:
        raise typer.Exit(ExitCode.UNSAFE)
    if not summary["complete"]:
        raise typer.Exit(ExitCode.NOT_DONE)


@app.command()
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
    foreign orders and holdings on the account are listed and left alone."""
    from cli import render
    from cli.wiring import open_session
    from core.domain.ownership import parse_install_id
    from core.execution.reconcile import Reconciler

    namespaces = [parse_install_id(text) for text in adopt or []]
    settings = settings_from(db, config)

    async def run() -> dict[str, Any]:
        async with open_session(settings, url=url, live=live) as session:
            report = await Reconciler(
                session.client,
                session.store,
                session.clock,
                spool=session.spool,
                settings=settings.execution,
                adopt=namespaces,
                leases=session.leases,
            ).reconcile()
            return render.reconcile_outcome(report, session.store.install_id, session.store.location)

    outcome = asyncio.run(run())
    render.reconcile_report(outcome, as_json=json_output)
    if outcome["unrecorded"]:
        render.unrecorded(outcome["unrecorded"])
        raise typer.Exit(ExitCode.ENVIRONMENT)
    if outcome["errors"]:
        raise typer.Exit(ExitCode.NOT_DONE)


@app.command()
@reports_errors
def positions(
    status: Annotated[str | None, typer.Option("--status", help="open|closed (default: both).")] = None,
    url: UrlOption = None,
    live: LiveOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Positions, open and closed, with realized P&L (with --url: as the exchange has them now, read only)."""
    from cli import render
    from core.domain.errors import InputError
    from core.domain.models import PositionStatus
    from core.storage.store import Store

    try:
        wanted = PositionStatus(status) if status else None
    except ValueError:
        raise InputError(f"--status must be open or closed, not {status!r}") from None
    settings = settings_from(db, config)
    current = _exchange_view(settings, url, live)
    with Store.open(settings.db_location) as store:
        listed = [current.positions.get(p.id, p) if current else p for p in store.positions()]
    listed = [p for p in listed if wanted is None or p.status is wanted]
    render.positions_table(listed, as_json=json_output)
    if current is not None and not json_output:
        render.would_change(current)


@app.command()
@reports_errors
def orders(
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run's orders.")] = None,
    url: UrlOption = None,
    live: LiveOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Orders tg placed or adopted (with --url: the exchange's status now, read only)."""
    from cli import render
    from core.storage.store import Store

    settings = settings_from(db, config)
    current = _exchange_view(settings, url, live)
    with Store.open(settings.db_location) as store:
        listed = [current.orders.get(o.client_order_id, o) if current else o for o in store.orders(run_id=run_id)]
    render.orders_table(listed, as_json=json_output)
    if current is not None and not json_output:
        render.would_change(current)


app.command("ratelimit-stress")(ratelimit_stress)


@app.command("config")
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
    render.console().print(table)


def _exchange_view(settings: Settings, url: str | None, live: bool) -> ReconcileReport | None:
    """With an exchange's URL, what it says of tg's orders and positions now, read only:
    nothing is sent to the exchange and nothing written to the database."""
    if url is None:
        return None
    from cli.wiring import open_session
    from core.execution.reconcile import Reconciler

    async def run() -> ReconcileReport:
        async with open_session(settings, url=url, live=live) as session:
            return await Reconciler(
                session.client,
                session.store,
                session.clock,
                settings=settings.execution,
                repair=False,
                leases=session.leases,
            ).reconcile()

    return asyncio.run(run())


def main() -> None:
    """Console entry point: usage errors become one line and exit code 2; `tg` alone
    shows the help."""
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as asked:  # `tg` or `tg sim` alone: the help is the answer
        typer.echo(asked.format_message())
        sys.exit(ExitCode.OK)
    except TyperException as exc:  # typer's own usage errors: bad flags, missing arguments
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(getattr(exc, "exit_code", ExitCode.USAGE))
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
