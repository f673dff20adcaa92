"""The collector policy of a tg process (cli.collector): off while a command starts, on
with start-up frozen once its work begins, and untouched where the entry point did not
turn it off (a test runner calling the app in-process)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import collector


@pytest.fixture
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


def test_work_begins_turns_the_collector_on_with_start_up_frozen(collector_restored: None) -> None:
    gc.unfreeze()
    collector.for_startup()
    assert not gc.isenabled()
    collector.work_begins()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


def test_work_begins_leaves_a_collector_it_did_not_turn_off_alone(collector_restored: None) -> None:
    gc.unfreeze()
    gc.enable()
    collector.work_begins()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


_PROBE = """
import gc, json, sys
sys.argv = ["tg", *sys.argv[2:]]
try:
    from cli.main import main
    main()
finally:
    with open({out!r}, "w") as out:
        json.dump({{"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}, out)
"""


def collector_at_exit(*args: str, folder: Path) -> dict[str, object]:
    out = folder / "collector.json"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    environ |= {"XDG_DATA_HOME": str(folder / "data"), "HOME": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(out=str(out)), "tg", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(out.read_text())
    return result


def test_a_trade_works_with_the_collector_on_and_start_up_frozen(tmp_path: Path) -> None:
    state = collector_at_exit("trade", "BTC/USDT", "--db", str(tmp_path / "tg.db"), folder=tmp_path)
    assert state["enabled"] is True
    assert isinstance(state["frozen"], int) and state["frozen"] > 100_000  # what the imports built


def test_a_short_read_ends_with_the_collector_still_off(tmp_path: Path) -> None:
    state = collector_at_exit("config", folder=tmp_path)
    assert state == {"enabled": False, "frozen": 0}
