"""Reading a sandbox state file back whole, for tests that check nothing saved is lost:
the state an exchange opened on the file answers for (its live orders loaded, the
settled past read from the file)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from core.domain.clock import VirtualClock
from simulator.exchange import Exchange
from simulator.history import LedgerQuery
from simulator.models import ExchangeState, LedgerEntry, Order, Trade
from simulator.store import StateFile


def save(path: Path, state: ExchangeState) -> None:
    file = StateFile(path)
    try:
        file.save(state)
    finally:
        file.close()


def read_back(path: Path) -> ExchangeState:
    """The whole state saved at `path`, each account's orders in the order they were placed."""
    file = StateFile(path)
    try:
        state = file.load()
        assert state is not None
        assert all(order.is_live for order in state.orders.values())  # the past stays in the file
        assert not state.trades and not state.ledger
        exchange = Exchange(state, VirtualClock(state.processed_until), history=file)
        orders: dict[str, Order] = {}
        trades: list[Trade] = []
        entries: list[LedgerEntry] = []
        for account in state.accounts:
            orders |= {o.txid: o for o in exchange.query_orders(account, None)}
            trades += _every_trade(exchange, account)
            entries += _every_entry(exchange, account)
        return dataclasses.replace(
            state, orders=orders, trades={t.id: t for t in trades}, ledger={e.id: e for e in entries}
        )
    finally:
        file.close()


def _every_trade(exchange: Exchange, account: str) -> list[Trade]:
    trades: list[Trade] = []
    while True:
        page, count = exchange.trades_history(account, offset=len(trades))
        trades += page
        if len(trades) >= count:
            return trades


def _every_entry(exchange: Exchange, account: str) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    while True:
        page, count = exchange.ledger_entries(account, LedgerQuery(offset=len(entries)))
        entries += page
        if len(entries) >= count:
            return entries
