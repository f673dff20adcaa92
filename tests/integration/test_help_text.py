"""Every command's --help, walked from the app itself, so a new command or option is
checked the day it is added: it exits 0, says what the command is for, and names each
option's value (URL, DURATION...) rather than Python's type of it."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(["tg", *p]))
def test_help_names_every_option_value(path: list[str]) -> None:
    done = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    usage, _, description = done.stdout.partition("\n\n")
    assert usage.startswith("Usage: tg") and description.strip()
    assert not re.findall(r"--[a-z-]+ <(?:str|int|float|int range|float range|path)>", done.stdout), done.stdout
