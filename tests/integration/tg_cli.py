"""tg's commands in-process, through Typer's runner: what a user types, without a process
each (tg_processes.py runs them as real processes)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def tg(*args: str, env: Mapping[str, str | None] | None = None) -> tuple[int, str, str]:
    """`tg ARGS`: its exit code, stdout and stderr."""
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def tg_json(*args: str, env: Mapping[str, str | None] | None = None) -> Any:
    """`tg ARGS --json`, which must succeed: what it printed, parsed."""
    code, out, err = tg(*args, "--json", env=env)
    assert code == 0, out + err
    return json.loads(out)
