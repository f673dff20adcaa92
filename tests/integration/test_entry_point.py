"""The console script itself (not Typer's test runner): usage errors are one line on
stderr and exit 2, never a traceback."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.tg_processes import tg_command

pytestmark = pytest.mark.integration


def tg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tg_command(*args), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trade"], "Missing argument 'SYMBOL'"),
        (["nonsense"], "No such command 'nonsense'"),
        (["trade", "BTC/USDT", "--bogus"], "No such option: --bogus"),
        (["simulate", "--runs", "0"], "Invalid value for '--runs'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = tg(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_help_and_version_exit_0() -> None:
    assert tg("--help").returncode == 0
    version = tg("--version")
    assert version.returncode == 0 and version.stdout.startswith("tg ")
