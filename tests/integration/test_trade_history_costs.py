"""A `tg trade` asks the exchange no more on a database with a history of closed
trades than on a fresh one: settled orders are final, so reconciling never asks about
them again, however far back the exchange's closed-orders page has let them fall."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.domain.enums import OrderStatus
from core.storage.store import Store
from tests.integration.trade_history import build, trade

pytestmark = pytest.mark.integration

HISTORY = 17
"""Three orders a trade: 51 settled orders, past the 50 of one ClosedOrders page."""


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("history")
    build(folder, HISTORY)
    return folder


def test_a_trade_after_a_history_sends_the_requests_a_fresh_one_does(history: Path, tmp_path: Path) -> None:
    with Store.open(history / "tg.db") as store:
        settled = store.orders(status=[OrderStatus.CLOSED, OrderStatus.CANCELED])
        assert len(settled) >= 3 * HISTORY
    fresh = trade(tmp_path / "fresh")
    shutil.copytree(history, tmp_path / "old")
    old = trade(tmp_path / "old")

    assert fresh.summary["status"] == old.summary["status"] == "FILLED"
    assert old.requests == fresh.requests
    assert old.requests["/0/private/QueryOrders"] == fresh.requests["/0/private/QueryOrders"] > 0
