"""A Typer group that builds a command only when the command line names it.

Typer builds every command of a group before it runs one: each parameter's type hints
evaluated, each option made. For thirteen commands that is most of what `tg --help`
costs beyond importing Typer, and `tg trade` would pay it too. A LazyGroup keeps its
commands registered on a plain Typer (its `registry`), builds the one asked for, and
lists the others from what they were registered with: their docstrings and flags.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, MutableMapping
from typing import Any, ClassVar

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_command_name, get_group_from_info, solve_typer_info_defaults
from typer.models import CommandInfo, TyperInfo

Entry = CommandInfo | TyperInfo


class LazyGroup(TyperGroup):
    """Give a subclass naming its `registry` as `typer.Typer(cls=...)`."""

    registry: ClassVar[typer.Typer]
    """Where the group's commands and sub-groups are registered, unbuilt."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self, built=dict(self.commands))

    def entries(self) -> dict[str, Entry]:
        """Each command and sub-group of the registry by its name, in its order."""
        entries: dict[str, Entry] = {}
        for command in self.registry.registered_commands:
            assert command.callback is not None, "a command needs a function"
            entries[command.name or get_command_name(command.callback.__name__)] = command
        for group in self.registry.registered_groups:
            name = solve_typer_info_defaults(group).name
            assert name, "a sub-group of a LazyGroup needs a name"
            entries[name] = group
        return entries

    def build(self, entry: Entry) -> _click.Command:
        if isinstance(entry, CommandInfo):
            return get_command_from_info(
                entry,
                pretty_exceptions_short=self.registry.pretty_exceptions_short,
                rich_markup_mode=self.rich_markup_mode,
            )
        return get_group_from_info(
            entry,
            pretty_exceptions_short=self.registry.pretty_exceptions_short,
            suggest_commands=self.suggest_commands,
            rich_markup_mode=self.rich_markup_mode,
        )

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """TyperGroup's listing, of stand-ins for the commands not built yet."""
        commands = self.commands
        assert isinstance(commands, _Commands)
        try:
            self.commands = {
                name: commands.built[name] if name in commands.built else _stand_in(name, entry)
                for name, entry in commands.entries
            }
            super().format_commands(ctx, formatter)
        finally:
            self.commands = commands


class _Commands(MutableMapping[str, _click.Command]):
    """The group's commands by name: every registered name is there, built on first lookup."""

    def __init__(self, group: LazyGroup, built: dict[str, _click.Command]) -> None:
        self._group = group
        self.built = built

    @property
    def entries(self) -> Iterator[tuple[str, Entry]]:
        return iter(self._group.entries().items())

    def __contains__(self, name: object) -> bool:
        return name in self.built or name in self._group.entries()

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self.built:
            self.built[name] = self._group.build(self._group.entries()[name])
        return self.built[name]

    def __setitem__(self, name: str, command: _click.Command) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"{name}: a registered command cannot be taken out of a LazyGroup")

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._group.entries()), **dict.fromkeys(self.built)})

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _stand_in(name: str, entry: Entry) -> _click.Command:
    """A command with the help and flags of `entry` and no parameters: enough to list it."""
    if isinstance(entry, TyperInfo):
        solved = solve_typer_info_defaults(entry)
        return TyperCommand(
            name, help=solved.help, short_help=solved.short_help, hidden=solved.hidden, deprecated=solved.deprecated
        )
    text = inspect.cleandoc(entry.help) if entry.help is not None else inspect.getdoc(entry.callback)
    return TyperCommand(name, help=text, short_help=entry.short_help, hidden=entry.hidden, deprecated=entry.deprecated)
