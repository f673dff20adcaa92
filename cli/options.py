"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.exceptions import TyperException

if TYPE_CHECKING:
    from core.domain.config import Settings

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH|URL",
        help="SQLite file for results, or postgresql://user@host:port/dbname of a shared server "
        "(default: $TG_DB or the data directory).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", metavar="FILE", help="TOML settings file (default: $TG_CONFIG or ./tg.toml).", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]

F = TypeVar("F", bound=Callable[..., Any])


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@dataclass
class Output:
    """How much this process says on stderr; set once by the root options."""

    quiet: bool = False
    level_before: int | None = None
    """The root log level before a command set one, to go back to."""


OUTPUT = Output()


def configure_output(*, quiet: bool, verbose: int, level: LogLevel | None) -> None:
    """Logs go to stderr (stdout is the command's answer): warnings by default, errors
    only with -q, what tg does with -v, everything with -vv."""
    import logging

    if level is None and (quiet or verbose):
        level = LogLevel.error if quiet else [LogLevel.info, LogLevel.debug][min(verbose, 2) - 1]
    OUTPUT.quiet = level is LogLevel.error
    root = logging.getLogger()
    if level is not None:  # else logging's own default: warnings and worse
        if OUTPUT.level_before is None:
            OUTPUT.level_before = root.level
        root.setLevel(level.value.upper())
    elif OUTPUT.level_before is not None:
        # a command without -v after one with it, in one process (a test runner's): the level from before
        root.setLevel(OUTPUT.level_before)
        OUTPUT.level_before = None
    if not any(isinstance(getattr(handler, "stream", None), _Stderr) for handler in root.handlers):
        handler = logging.StreamHandler(_Stderr())
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


class _Stderr:
    """Whatever sys.stderr is when a record comes (a test runner swaps it): the stream of
    tg's log handler. Not a StreamHandler subclass, so that importing the CLI does not
    import logging before a command runs."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def reports_errors(command: F) -> F:
    """Errors become one line on stderr and the exit status that means them (cli.exit_codes),
    never a traceback. The error classes are imported when the command runs, not when it
    is decorated: `tg --help` imports every command's module and should pay for none."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from cli.exit_codes import ExitCode
        from core.domain.errors import (
            AuthenticationError,
            BusyError,
            ConfigError,
            ConnectionLostError,
            ExchangeTimeoutError,
            InputError,
            ServiceUnavailableError,
            StorageError,
            TgError,
        )
        from simulator.exceptions import SandboxInUse, SandboxStateError

        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException):  # already an exit status or a usage error
            raise
        except (InputError, ConfigError, AuthenticationError) as exc:
            _fail(str(exc), ExitCode.USAGE)
        except (StorageError, BusyError, ConnectionLostError, ExchangeTimeoutError, ServiceUnavailableError) as exc:
            _fail(str(exc), ExitCode.ENVIRONMENT)
        except (SandboxStateError, SandboxInUse) as exc:
            _fail(str(exc), ExitCode.ENVIRONMENT)
        except TgError as exc:
            _fail(str(exc), ExitCode.NOT_DONE)
        except BrokenPipeError:  # the reader went away (`tg orders --json | head`): say nothing more
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(ExitCode.NOT_DONE) from None
        except OSError as exc:  # the machine itself: a full disk, a missing directory
            _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), ExitCode.ENVIRONMENT)
        except KeyboardInterrupt:
            _fail("interrupted; what had finished is kept (`tg runs` lists it)", ExitCode.INTERRUPTED)
        except Exception as exc:  # a bug: one line, and the traceback for whoever asks for it
            import logging

            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            _fail(
                f"internal error {type(exc).__name__}: {exc}; this is a bug in tg: rerun with -vv for the "
                "traceback and report it",
                ExitCode.NOT_DONE,
            )

    return wrapper  # type: ignore[return-value]


def checked_url(url: str | None) -> str | None:
    """A URL tg can send to: http(s), a host, a port that exists; else one clear line."""
    if url is None:
        return None
    from urllib.parse import urlsplit

    from core.domain.errors import InputError

    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [IPv6 bracket
        raise InputError(f"--url {url!r} is not an http(s) address, e.g. http://127.0.0.1:8765") from None
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"--url {url!r} has no valid port: give a number from 1 to 65535") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--url {url!r} is not an http(s) address, e.g. http://127.0.0.1:8765")
    if port is not None and not 0 < port < 65_536:
        raise InputError(f"--url {url!r}: port {port} is out of range; give one from 1 to 65535")
    return url


def settings_from(db: str | None, config: Path | None) -> Settings:
    from core.domain.config import load_settings

    return load_settings(config, db=db)
