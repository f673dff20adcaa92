"""The collector policy of a tg process (cli.collector): off while a command starts, on
with start-up frozen once its work begins, and untouched where the entry point did not
turn it off (a test runner calling the app in-process)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import collector
from tests.integration.tg_processes import at_exit


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


def test_a_trade_works_with_the_collector_on_and_start_up_frozen(tmp_path: Path) -> None:
    state = at_exit("collector", "trade", "BTC/USDT", "--db", str(tmp_path / "tg.db"), folder=tmp_path)
    assert state["enabled"] is True
    assert isinstance(state["frozen"], int) and state["frozen"] > 100_000  # what the imports built


def test_a_short_read_ends_with_the_collector_still_off(tmp_path: Path) -> None:
    state = at_exit("collector", "config", folder=tmp_path)
    assert state == {"enabled": False, "frozen": 0}
