"""`tg sim`: the sandbox Kraken, embedded or served."""

from __future__ import annotations

import typer

from cli.options import ConfigOption, DbOption, reports_errors, settings_from

sim_app = typer.Typer(help="The sandbox Kraken: reset, advance, status, serve.", no_args_is_help=True)


@sim_app.command("reset")
@reports_errors
def sim_reset(db: DbOption = None, config: ConfigOption = None) -> None:
    """Start the embedded exchange afresh: new balances, no orders."""
    from cli.wiring import sandbox_path
    from simulator.embedded import EmbeddedExchange

    settings = settings_from(db, config)
    sandbox = EmbeddedExchange.open(sandbox_path(settings.db_path), seed=settings.simulator.seed)
    sandbox.reset()
    sandbox.save()
    typer.echo(f"sandbox exchange reset: {sandbox_path(settings.db_path)}")
