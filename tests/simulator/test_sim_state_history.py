"""An exchange opened on its state file keeps only its live orders in memory and reads
its settled past (orders, trades, ledger entries) from the file when asked
(simulator.history): that changes what opening costs, never what any request
answers. Two exchanges walk the same seeded placements, cancels, fills and time, one
all in memory, the other saved and reopened now and then (or saved and kept running,
as the embedded sandbox does): after every step they answer alike."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from simulator.exchange import Exchange
from simulator.history import LedgerQuery
from simulator.models import LedgerType
from simulator.store import StateFile
from tests.simulator.test_sim_history_index import ACCOUNTS, OTHER, step

BALANCES = {"USDT": Decimal(5_000_000), "XXBT": Decimal(50)}


def answers(exchange: Exchange) -> list[object]:
    """What the requests that read the past answer, on both accounts."""
    exchange.sync()
    seen: list[object] = []
    for account in ACCOUNTS:
        everything = exchange.query_orders(account, None)
        seen += [everything, exchange.open_orders(account), exchange.holds(account), exchange.balance(account)]
        for offset in (0, 7, 60):
            seen.append(exchange.closed_orders(account, offset=offset))
            seen.append(exchange.trades_history(account, offset=offset))
            seen.append(exchange.ledger_entries(account, LedgerQuery(offset=offset)))
        if everything:
            middle = everything[len(everything) // 2].opentm
            for closetime in ("open", "close", "both"):
                seen.append(exchange.closed_orders(account, start=middle, closetime=closetime))
                seen.append(exchange.closed_orders(account, end=middle, closetime=closetime))
            seen.append(exchange.trades_history(account, start=middle))
            seen.append(exchange.trades_history(account, end=middle))
            seen.append(exchange.ledger_entries(account, LedgerQuery(start=middle, assets=("XXBT",))))
            seen.append(exchange.ledger_entries(account, LedgerQuery(end=middle, type=LedgerType.TRADE)))
            seen.append([exchange.order(o.txid) for o in everything])
            trade_ids = [t for o in everything for t in o.trades][:20]
            seen.append(exchange.query_trades(account, trade_ids))
            seen.append([exchange.trade(t) for t in trade_ids])
    return seen


def test_an_exchange_on_its_state_file_answers_as_one_all_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    whole_clock, filed_clock = VirtualClock(SANDBOX_EPOCH), VirtualClock(SANDBOX_EPOCH)
    whole = Exchange.create(whole_clock, seed=7, balances=BALANCES, fixed_ids=True)
    filed = Exchange.create(filed_clock, seed=7, balances=BALANCES, fixed_ids=True)
    whole.create_api_key(OTHER)
    filed.create_api_key(OTHER)
    file = StateFile(path)
    whole_rng, filed_rng = random.Random(7), random.Random(7)
    for n in range(160):
        step(whole, whole_clock, whole_rng)
        step(filed, filed_clock, filed_rng)
        assert answers(filed) == answers(whole), n
        if n % 40 == 19:  # saved, and the process goes on (the embedded sandbox's save)
            file.save(filed.state)
            filed.keep_history_in(file)
            assert all(order.is_live for order in filed.state.orders.values())
        elif n % 40 == 39:  # the next process opens the file
            file.save(filed.state)
            file.close()
            file = StateFile(path)
            state = file.load()
            assert state is not None
            assert all(order.is_live for order in state.orders.values()) and not state.trades
            filed = Exchange(state, filed_clock, history=file)
        assert answers(filed) == answers(whole), n
    file.close()
    assert len(whole.state.trades) > 30 and len(filed.state.trades) < len(whole.state.trades)
    assert {t.fee for t in filed.state.trades.values()} <= {t.fee for t in whole.state.trades.values()}


def test_a_reset_leaves_none_of_the_files_past(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    clock = VirtualClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock, seed=7, balances=BALANCES, fixed_ids=True)
    exchange.create_api_key(OTHER)
    rng = random.Random(3)
    for _ in range(30):
        step(exchange, clock, rng)
    file = StateFile(path)
    file.save(exchange.state)
    exchange.keep_history_in(file)
    assert exchange.trades_history(ACCOUNTS[0])[1] > 0
    exchange.reset()
    assert exchange.trades_history(ACCOUNTS[0]) == ([], 0)
    assert exchange.closed_orders(ACCOUNTS[0]) == ([], 0)
    file.save(exchange.state)
    file.close()
    file = StateFile(path)
    state = file.load()
    assert state is not None
    reopened = Exchange(state, clock, history=file)
    assert reopened.trades_history(ACCOUNTS[0]) == ([], 0)
    assert reopened.closed_orders(ACCOUNTS[0]) == ([], 0)
    assert len(reopened.ledger_entries(ACCOUNTS[0], LedgerQuery())[0]) == len(BALANCES)  # the opening deposits
    file.close()
