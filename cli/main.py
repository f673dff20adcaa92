"""The `tg` command line. Thin: it parses flags, calls core/ and simulator/, renders.

Heavy modules are imported inside the commands so that `tg --help` stays fast.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import click
import typer

from cli.options import ConfigOption, DbOption, JsonOption, reports_errors, settings_from
from cli.sim import sim_app

app = typer.Typer(
    name="tg",
    help="A trading-safety toolkit: one LLM-assisted trade cycle against a sandbox Kraken.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(sim_app, name="sim")


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


@app.command()
@reports_errors
def trade(
    symbol: Annotated[str, typer.Argument(help="Pair to trade, e.g. BTC/USDT.")],
    side: Annotated[
        str | None, typer.Option("--side", help="buy|sell: skip the agents and send this proposal.")
    ] = None,
    volume: Annotated[str | None, typer.Option("--volume", help="Volume for --side (default: sized by risk).")] = None,
    url: Annotated[str | None, typer.Option("--url", help="A served simulator (or Kraken with --live).")] = None,
    live: Annotated[bool, typer.Option("--live", help="Allow a non-loopback --url: real money.")] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run one full trade cycle: snapshot, agents, vote, risk, orders, position."""
    from cli import render
    from cli.wiring import open_session
    from core.manual import manual_proposal
    from core.trade_cycle import TradeCycle

    if volume is not None and side is None:
        from core.errors import InputError

        raise InputError("--volume needs --side buy|sell")
    settings = settings_from(db, config)

    async def run() -> dict[str, Any]:
        async with open_session(settings, url=url, live=live) as session:
            manual = await manual_proposal(session.client, symbol, side, volume) if side else None
            report = await TradeCycle(session.client, session.store, session.clock, settings).run(
                symbol, manual=manual
            )
            return report.to_dict()

    summary = asyncio.run(run())
    render.trade_summary(summary, as_json=json_output)


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
    from core.storage import Store

    settings = settings_from(db, config)
    with Store.open(settings.db_path) as store:
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
    from core.errors import InputError
    from core.storage import Store

    settings = settings_from(db, config)
    with Store.open(settings.db_path) as store:
        record = store.get_run(run_id)
        if record is None:
            raise InputError(f"no run {run_id!r} in {settings.db_path}; `tg runs` lists them")
        render.trade_summary(record.summary, as_json=json_output)


def main() -> None:
    """Console entry point: usage errors become one line and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
