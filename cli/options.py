"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from core.domain.config import Settings

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="SQLite file for results (default: $TG_DB or the data directory).", show_default=False),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (default: $TG_CONFIG or ./tg.toml).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def reports_errors(command: F) -> F:
    """tg's own errors become one line on stderr and a non-zero exit, never a traceback."""
    from core.domain.errors import ConfigError, InputError, TgError

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (InputError, ConfigError) as exc:
            _fail(str(exc), 2)
        except TgError as exc:
            _fail(str(exc), 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


def settings_from(db: Path | None, config: Path | None) -> Settings:
    from core.domain.config import load_settings

    return load_settings(config, db=db)
