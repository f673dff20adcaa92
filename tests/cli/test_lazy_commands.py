"""tg's commands are built one at a time (cli.lazy): what a person sees must be what
Typer shows when it builds them all, and the help must build none."""

from __future__ import annotations

import copy

import pytest
import typer
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from cli.lazy import LazyGroup
from cli.main import app, commands


def eager_tg() -> typer.Typer:
    """tg as Typer builds it by itself: every command and the sim group up front."""
    eager = copy.copy(app)
    eager.info = copy.copy(app.info)
    eager.info.cls = TyperGroup
    eager.registered_commands = list(commands.registered_commands)
    eager.registered_groups = list(commands.registered_groups)
    return eager


@pytest.mark.parametrize(
    "args", [["--help"], [], ["trade", "--help"], ["sim", "--help"], ["sim", "fault", "--help"], ["trad"]]
)
def test_what_tg_shows_is_what_typer_shows_building_every_command(args: list[str]) -> None:
    runner = CliRunner()
    lazy, eager = runner.invoke(app, args), runner.invoke(eager_tg(), args)
    assert (lazy.exit_code, lazy.output) == (eager.exit_code, eager.output)
    assert lazy.output.strip()


def test_the_help_builds_no_command_and_a_command_builds_itself_only() -> None:
    group = get_command(app)
    assert isinstance(group, LazyGroup)
    with group.make_context("tg", ["trade", "BTC/USDT"]) as ctx:
        assert group.get_help(ctx).count("\n  trade ") == 1
        assert group.commands.built == {}  # type: ignore[attr-defined]
        assert group.get_command(ctx, "trade") is not None
        assert set(group.commands.built) == {"trade"}  # type: ignore[attr-defined]
        assert group.get_command(ctx, "nonsense") is None
        assert list(group.commands) == [*(c.name for c in commands.registered_commands), "sim"]
