"""The baseline of benchmarks/bench_startup.py: the least a Typer CLI costs to start, one
command on the same Typer, configured as `tg` is (no rich help, no pretty tracebacks)."""

import typer

app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)


@app.command()
def echo(symbol: str) -> None:
    """Print the symbol back."""
    typer.echo(symbol)


if __name__ == "__main__":
    app()
