"""The checker itself: for each invariant, a state that breaks it, built by hand, and
the report naming it. A checker that says "every invariant held" to everything must
fail here."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from core.domain.enums import OrderRole, OrderStatus, OrderType, PositionSide, PositionStatus, Side
from core.domain.models import Order, Position
from core.exchange import ExchangeOrder
from core.exchange.account import ExchangeTruth
from core.execution.invariants import INVARIANTS, check_invariants
from core.storage.store import Store
from tests.exchange.kraken_fakes import BTC_USDT, order_wire

PAIRS = {"XBTUSDT": BTC_USDT}
SIZE = Decimal("0.1")


def wire(
    txid: str,
    *,
    side: str = "buy",
    ordertype: str = "market",
    vol: Decimal = SIZE,
    vol_exec: Decimal = SIZE,
    status: str = "closed",
    cl_ord_id: str | None = None,
    price: str = "0",
    reason: str | None = None,
) -> ExchangeOrder:
    raw = order_wire(
        status,
        pair="XBTUSDT",
        side=side,
        ordertype=ordertype,
        price=price,
        vol=str(vol),
        vol_exec=str(vol_exec),
        cost="0",
        fee="0",
        avg_price="0",
        cl_ord_id=cl_ord_id,
        reason=reason,
    )
    return ExchangeOrder.from_wire(txid, raw)


def protection_wire(
    txid: str, cl_ord_id: str, *, ordertype: str = "stop-loss", status: str = "open", price: str = "0"
) -> ExchangeOrder:
    """A sell stop or target of tg's as Kraken lists it: unfilled, `status`."""
    return wire(
        txid, side="sell", ordertype=ordertype, vol_exec=Decimal(0), status=status, cl_ord_id=cl_ord_id, price=price
    )


def entry_order(client_order_id: str, external_id: str) -> Order:
    """A filled market entry of run R-1's, as tg records it."""
    return Order(
        client_order_id=client_order_id,
        symbol="BTC/USDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        volume=SIZE,
        role=OrderRole.ENTRY,
        external_id=external_id,
        status=OrderStatus.CLOSED,
        filled_volume=SIZE,
        run_id="R-1",
    )


class Account:
    """A protected long of tg's, consistent in the database and on the exchange; tests
    break one thing of it at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        ids = store.namespace()
        self.entry_id = ids.new_client_order_id(OrderRole.ENTRY)
        self.stop_id = ids.new_client_order_id(OrderRole.STOP_LOSS)
        self.position = Position(
            id="P-1",
            symbol="BTC/USDT",
            side=PositionSide.LONG,
            size=SIZE,
            entry_price=Decimal("60000"),
            stop_loss=Decimal("58800"),
            take_profit=Decimal("62400"),
            run_id="R-1",
        )
        self.entry = entry_order(self.entry_id, "OENTRY-AAAAA-AAAAAA")
        self.stop = Order(
            client_order_id=self.stop_id,
            symbol="BTC/USDT",
            side=Side.SELL,
            order_type=OrderType.STOP_LOSS,
            volume=SIZE,
            role=OrderRole.STOP_LOSS,
            price=Decimal("58800"),
            external_id="OSTOPP-AAAAA-AAAAAA",
            status=OrderStatus.OPEN,
            run_id="R-1",
        )
        store.record_protected_position(self.position, [self.entry, self.stop])
        self.orders = {
            "OENTRY-AAAAA-AAAAAA": wire("OENTRY-AAAAA-AAAAAA", cl_ord_id=self.entry_id),
            "OSTOPP-AAAAA-AAAAAA": protection_wire("OSTOPP-AAAAA-AAAAAA", self.stop_id, price="58800"),
        }
        self.balances = {"XXBT": SIZE, "USDT": Decimal("94000")}

    def truth(self) -> ExchangeTruth:
        return ExchangeTruth(orders=dict(self.orders), balances=dict(self.balances))

    def check(self, before: ExchangeTruth | None = None) -> dict[str, list[str]]:
        report = check_invariants(self.store, self.truth(), PAIRS, before=before)
        return {name: found for name, found in report.violations.items() if found}


@pytest.fixture
def account(store: Store) -> Account:
    return Account(store)


def test_the_consistent_account_breaks_nothing(account: Account) -> None:
    assert account.check() == {}
    assert account.check(before=account.truth()) == {}


def test_a_holding_without_a_live_stop_is_unprotected(account: Account) -> None:
    account.orders["OSTOPP-AAAAA-AAAAAA"] = protection_wire("OSTOPP-AAAAA-AAAAAA", account.stop_id, status="canceled")
    found = account.check()
    assert any("live stops cover only 0" in m for m in found["protected"])
    assert any("position P-1" in m for m in found["protected"])


def test_a_second_live_stop_is_over_coverage(account: Account) -> None:
    other = account.store.namespace().new_client_order_id(OrderRole.STOP_LOSS)
    account.orders["OSTOP2-AAAAA-AAAAAA"] = protection_wire("OSTOP2-AAAAA-AAAAAA", other)
    found = account.check()
    assert "no_over_coverage" in found
    assert "OSTOP2-AAAAA-AAAAAA" in " ".join(found["no_orphan_protection"])  # and it protects nothing of record


def test_a_live_stop_of_a_closed_position_is_an_orphan(account: Account) -> None:
    account.position.status = PositionStatus.CLOSED
    account.store.upsert_position(account.position)
    account.orders["OENTRY-AAAAA-AAAAAA"] = wire("OENTRY-AAAAA-AAAAAA", cl_ord_id=account.entry_id)
    account.orders["OCLOSE-AAAAA-AAAAAA"] = wire(
        "OCLOSE-AAAAA-AAAAAA", side="sell", cl_ord_id=account.store.namespace().new_client_order_id(OrderRole.CLOSE)
    )
    account.store.upsert_order(
        Order(
            client_order_id=account.orders["OCLOSE-AAAAA-AAAAAA"].cl_ord_id or "",
            symbol="BTC/USDT",
            side=Side.SELL,
            order_type=OrderType.MARKET,
            volume=SIZE,
            role=OrderRole.CLOSE,
            external_id="OCLOSE-AAAAA-AAAAAA",
            status=OrderStatus.CLOSED,
            filled_volume=SIZE,
            position_id="P-1",
        )
    )
    account.balances["XXBT"] = Decimal(0)
    found = account.check()
    assert list(found) == ["no_over_coverage", "no_orphan_protection"]
    assert "protects no open position" in found["no_orphan_protection"][0]


def test_two_entries_for_one_proposal_are_duplicates(account: Account) -> None:
    second = entry_order(account.store.namespace().new_client_order_id(OrderRole.ENTRY), "OENTR2-AAAAA-AAAAAA")
    account.store.upsert_order(second)
    assert "run R-1 sent 2 entries" in " ".join(account.check()["no_duplicates"])


def test_a_client_order_id_accepted_twice_is_a_duplicate(account: Account) -> None:
    account.orders["OAGAIN-AAAAA-AAAAAA"] = wire(
        "OAGAIN-AAAAA-AAAAAA", cl_ord_id=account.entry_id, vol_exec=Decimal(0), status="canceled"
    )
    assert "accepted 2 times" in " ".join(account.check()["no_duplicates"])


def test_an_order_of_tgs_missing_from_the_database_is_unrecorded(account: Account) -> None:
    mine = account.store.namespace().new_client_order_id(OrderRole.TAKE_PROFIT)
    account.orders["OTARGT-AAAAA-AAAAAA"] = protection_wire(
        "OTARGT-AAAAA-AAAAAA", mine, ordertype="take-profit", status="canceled"
    )
    assert "is tg's but not in the database" in " ".join(account.check()["recorded"])


def test_a_status_the_database_got_wrong_is_unrecorded(account: Account) -> None:
    account.stop.status = OrderStatus.CANCELED
    account.store.upsert_order(account.stop)
    assert "the database says canceled, the exchange open" in " ".join(account.check()["recorded"])


def test_positions_that_disagree_with_tgs_orders(account: Account) -> None:
    account.position.size = Decimal("0.2")
    account.store.upsert_position(account.position)
    found = account.check()
    assert "its open positions total 0.2" in " ".join(found["balances_agree"])


def test_foreign_orders_and_holdings_do_not_count_as_tgs(account: Account) -> None:
    account.orders["OFORGN-AAAAA-AAAAAA"] = wire("OFORGN-AAAAA-AAAAAA", vol=Decimal("0.05"), vol_exec=Decimal("0.05"))
    account.balances["XXBT"] += Decimal("0.05")
    assert account.check() == {}


def test_a_cancelled_foreign_order_was_touched(account: Account) -> None:
    account.orders["OFORGN-AAAAA-AAAAAA"] = wire(
        "OFORGN-AAAAA-AAAAAA", ordertype="limit", price="30000", vol_exec=Decimal(0), status="open"
    )
    before = account.truth()
    account.orders["OFORGN-AAAAA-AAAAAA"] = wire(
        "OFORGN-AAAAA-AAAAAA",
        ordertype="limit",
        price="30000",
        vol_exec=Decimal(0),
        status="canceled",
        reason="User requested",
    )
    assert "was cancelled" in " ".join(account.check(before=before)["foreign_untouched"])


def test_a_foreign_holding_that_moved_without_its_orders_was_touched(account: Account) -> None:
    account.balances["XXBT"] += Decimal("0.05")
    account.orders["OFORGN-AAAAA-AAAAAA"] = wire("OFORGN-AAAAA-AAAAAA", vol=Decimal("0.05"), vol_exec=Decimal("0.05"))
    before = account.truth()
    account.balances["XXBT"] -= Decimal("0.05")  # sold, by no order of its owner's
    assert "foreign holding 0.05 -> 0.00" in " ".join(account.check(before=before)["foreign_untouched"])


def test_an_asset_a_fill_paid_as_quote_is_not_judged_by_base_volumes(account: Account) -> None:
    usdt_usd = replace(BTC_USDT, key="USDTZUSD", altname="USDTZUSD", base="USDT", quote="ZUSD", symbol="USDT/USD")
    pairs = {**PAIRS, "USDTZUSD": usdt_usd}  # USDT is a quote here and a base there
    entry = "OENTRY-AAAAA-AAAAAA"
    before = ExchangeTruth(
        orders={txid: order for txid, order in account.orders.items() if txid != entry},
        balances={"USDT": Decimal("100000")},
    )  # then tg's entry bought BTC with USDT
    report = check_invariants(account.store, account.truth(), pairs, before=before)
    assert report.violations["foreign_untouched"] == []
    untouched = ExchangeTruth(orders=dict(account.orders), balances={**account.balances, "USDT": Decimal("94500")})
    report = check_invariants(account.store, account.truth(), pairs, before=untouched)  # no fill since
    assert report.violations["foreign_untouched"] == ["USDT: foreign holding 94500 -> 94000, its own orders moved it 0"]


def test_every_invariant_has_a_test_above() -> None:
    tested = {
        "protected",
        "no_over_coverage",
        "no_orphan_protection",
        "no_duplicates",
        "recorded",
        "balances_agree",
        "foreign_untouched",
    }
    assert set(INVARIANTS) - tested == {"no_crash"}  # the caller's: see test_simulate's crash test


def test_an_asset_in_flight_is_left_out_and_named(account: Account) -> None:
    """Another tg's entry between its fill and its stop: not judged now, and said so."""
    account.orders["OSTOPP-AAAAA-AAAAAA"] = protection_wire("OSTOPP-AAAAA-AAAAAA", account.stop_id, status="canceled")

    report = check_invariants(account.store, account.truth(), PAIRS, in_flight={"XXBT"})
    assert report.ok and report.unjudged == ["BTC"]

    report = check_invariants(account.store, account.truth(), PAIRS, in_flight={"XETH"})  # another asset's
    assert report.violations["protected"] and report.unjudged == []


def test_a_duplicate_is_judged_even_in_flight(account: Account) -> None:
    """An execution in flight explains an entry without its stop, never an entry twice."""
    account.orders["OTWICE-AAAAA-AAAAAA"] = wire("OTWICE-AAAAA-AAAAAA", cl_ord_id=account.entry_id)
    report = check_invariants(account.store, account.truth(), PAIRS, in_flight={"XXBT"})
    assert any("accepted 2 times" in m for m in report.violations["no_duplicates"])
