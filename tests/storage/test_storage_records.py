"""Every record type survives a round trip, Decimals to the last digit."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.enums import Action, AlertLevel, Bias, OrderStatus, PositionStatus, Side
from core.domain.errors import DatabaseWriteError, InputError
from core.domain.models import Fill, ModelDecision, Order, Position, TAOutput
from core.storage.store import RunRecord, Store
from tests.storage.storage_builders import make_order, make_position

TINY = Decimal("0.00000001")
LARGE = Decimal("12345678.12345678")


def test_a_run_is_started_finished_and_read_back(store: Store) -> None:
    store.start_run("R-abc123", kind="trade", symbol="BTC/USDT", started_at=10.5, params={"manual": True})
    assert store.get_run("R-abc123") == RunRecord(
        run_id="R-abc123",
        kind="trade",
        symbol="BTC/USDT",
        status="running",
        started_at=10.5,
        finished_at=None,
        params={"manual": True},
        summary={},
    )

    store.finish_run("R-abc123", status="FILLED", finished_at=12.25, summary={"price": LARGE, "side": Side.BUY})

    run = store.get_run("R-abc123")
    assert run is not None
    assert (run.status, run.finished_at) == ("FILLED", 12.25)
    assert run.summary == {"price": "12345678.12345678", "side": "buy"}


def test_runs_are_listed_newest_first_up_to_the_limit(store: Store) -> None:
    for n, started in enumerate([30.0, 10.0, 20.0]):
        store.start_run(f"R-{n}", kind="trade", symbol=None, started_at=started, params={})

    assert [r.run_id for r in store.list_runs()] == ["R-0", "R-2", "R-1"]
    assert [r.run_id for r in store.list_runs(limit=2)] == ["R-0", "R-2"]


def test_a_run_is_found_by_a_unique_prefix_of_its_id(store: Store) -> None:
    store.start_run("R-aa11", kind="trade", symbol=None, started_at=1.0, params={})
    store.start_run("R-aa22", kind="trade", symbol=None, started_at=2.0, params={})
    store.start_run("R-bb33", kind="trade", symbol=None, started_at=3.0, params={})

    found = store.get_run("R-aa2")
    assert found is not None and found.run_id == "R-aa22"
    assert store.get_run("R-b") is not None
    assert store.get_run("R-c") is None
    assert store.get_run("R-%") is None
    assert store.get_run("") is None
    with pytest.raises(InputError, match="more than one run"):
        store.get_run("R-aa")


def test_an_exact_id_wins_over_a_longer_id_it_prefixes(store: Store) -> None:
    store.start_run("R-1", kind="trade", symbol=None, started_at=1.0, params={})
    store.start_run("R-12", kind="trade", symbol=None, started_at=2.0, params={})

    found = store.get_run("R-1")
    assert found is not None and found.run_id == "R-1"


def test_finishing_an_unknown_run_is_a_write_error(store: Store) -> None:
    with pytest.raises(DatabaseWriteError, match="no such run"):
        store.finish_run("R-nope", status="FAILED", finished_at=1.0, summary={})


def test_an_order_round_trips_with_every_field(store: Store) -> None:
    store.upsert_position(make_position())
    order = make_order(
        volume=TINY,
        price=LARGE,
        external_id="OUF4EM-FRGI2-MQMWZD",
        status=OrderStatus.OPEN,
        filled_volume=Decimal("0.00000000"),
        avg_fill_price=Decimal("45000.10"),
        fee=Decimal("1.2E-7"),
        position_id="P-1",
        run_id="R-1",
        created_at=1.5,
        updated_at=2.5,
    )
    store.upsert_order(order)

    assert store.get_order("C-1") == order
    assert store.get_order_by_external_id("OUF4EM-FRGI2-MQMWZD") == order
    stored = store.get_order("C-1")
    assert stored is not None
    assert (str(stored.volume), str(stored.price), str(stored.filled_volume), str(stored.avg_fill_price)) == (
        "1E-8",
        "12345678.12345678",
        "0E-8",
        "45000.10",
    )


def test_an_order_with_no_optional_fields_round_trips(store: Store) -> None:
    order = make_order(price=None)

    store.upsert_order(order)

    assert store.get_order("C-1") == order
    assert store.get_order("C-2") is None
    assert store.get_order_by_external_id("OXXXXX-XXXXX-XXXXXX") is None


def test_upserting_an_order_replaces_its_row(store: Store) -> None:
    order = make_order()
    store.upsert_order(order)

    order.status = OrderStatus.CLOSED
    order.external_id = "OAAAAA-BBBBB-CCCCCC"
    order.filled_volume = order.volume
    store.upsert_order(order)

    assert store.orders() == [order]


def test_adding_an_order_twice_is_refused(store: Store) -> None:
    store.add_order(make_order())

    with pytest.raises(DatabaseWriteError, match="order C-1 to orders"):
        store.add_order(make_order(symbol="XRP/USDT"))
    stored = store.get_order("C-1")
    assert stored is not None and stored.symbol == "BTC/USDT"


def test_orders_filter_by_run_status_and_position(store: Store) -> None:
    store.upsert_position(make_position("P-1"))
    store.upsert_order(make_order("C-1", run_id="R-1", status=OrderStatus.OPEN, created_at=3.0))
    store.upsert_order(make_order("C-2", run_id="R-1", status=OrderStatus.CLOSED, created_at=1.0, position_id="P-1"))
    store.upsert_order(make_order("C-3", run_id="R-2", status=OrderStatus.PENDING, created_at=2.0))

    def ids(orders: list[Order]) -> list[str]:
        return [o.client_order_id for o in orders]

    assert ids(store.orders()) == ["C-2", "C-3", "C-1"]
    assert ids(store.orders(run_id="R-1")) == ["C-2", "C-1"]
    assert ids(store.orders(status=[OrderStatus.OPEN, OrderStatus.PENDING])) == ["C-3", "C-1"]
    assert ids(store.orders(status=(s for s in OrderStatus if s.is_live), run_id="R-2")) == ["C-3"]
    assert ids(store.orders(status=[])) == []
    assert ids(store.orders(position_id="P-1")) == ["C-2"]


def test_a_fill_is_stored_once_however_often_it_is_added(store: Store) -> None:
    fill = Fill(
        trade_id="TCCCTY-WE2O6-P3NB37",
        order_external_id="OUF4EM-FRGI2-MQMWZD",
        symbol="BTC/USDT",
        side=Side.BUY,
        price=LARGE,
        volume=TINY,
        fee=Decimal("0.00000000001"),
        time=1_700_000_000.123,
    )

    assert store.add_fill(fill, run_id="R-1") is True
    assert store.add_fill(fill, run_id="R-1") is False
    assert store.add_fill(replace(fill, price=Decimal("1")), run_id="R-2") is False

    assert store.fills() == [fill]


def test_fills_filter_by_order_and_run_oldest_first(store: Store) -> None:
    def fill(trade_id: str, order: str, time: float) -> Fill:
        return Fill(trade_id, order, "BTC/USDT", Side.SELL, Decimal("45000"), Decimal("0.1"), Decimal("0"), time)

    store.add_fill(fill("T-1", "O-A", 2.0), run_id="R-1")
    store.add_fill(fill("T-2", "O-B", 3.0), run_id="R-1")
    store.add_fill(fill("T-3", "O-A", 1.0), run_id=None)

    assert [f.trade_id for f in store.fills(order_external_id="O-A")] == ["T-3", "T-1"]
    assert [f.trade_id for f in store.fills(run_id="R-1")] == ["T-1", "T-2"]
    assert [f.trade_id for f in store.fills(order_external_id="O-A", run_id="R-1")] == ["T-1"]


def test_a_position_round_trips_open_and_closed(store: Store) -> None:
    position = make_position(size=TINY, entry_price=LARGE, run_id="R-1", fees=Decimal("0.0000001"))
    store.upsert_position(position)
    assert store.get_position("P-1") == position

    position.status = PositionStatus.CLOSED
    position.closed_at = 1_700_000_500.5
    position.exit_price = Decimal("12345679.00000001")
    position.realized_pnl = Decimal("-0.00000000877")
    store.upsert_position(position)

    assert store.get_position("P-1") == position
    assert store.get_position("P-2") is None


def test_positions_filter_by_status_run_and_symbol(store: Store) -> None:
    store.upsert_position(make_position("P-1", run_id="R-1", opened_at=2.0))
    store.upsert_position(make_position("P-2", run_id="R-2", symbol="XRP/USDT", opened_at=1.0))
    store.upsert_position(make_position("P-3", run_id="R-1", status=PositionStatus.CLOSED, opened_at=3.0))

    def ids(positions: list[Position]) -> list[str]:
        return [p.id for p in positions]

    assert ids(store.positions()) == ["P-2", "P-1", "P-3"]
    assert ids(store.positions(status=PositionStatus.OPEN)) == ["P-2", "P-1"]
    assert ids(store.positions(run_id="R-1")) == ["P-1", "P-3"]
    assert ids(store.positions(status=PositionStatus.OPEN, symbol="XRP/USDT")) == ["P-2"]


def test_realized_pnls_are_the_closed_positions_exact_pnl_oldest_first(store: Store) -> None:
    closed = PositionStatus.CLOSED
    store.upsert_position(make_position("P-1", status=closed, closed_at=5.0, realized_pnl=Decimal("-0.00000000877")))
    store.upsert_position(make_position("P-2", status=closed, closed_at=2.0, realized_pnl=Decimal("12.5")))
    store.upsert_position(make_position("P-3", opened_at=3.0))  # open: nothing realized
    store.upsert_position(make_position("P-4", status=closed, closed_at=9.0))  # closed without a P&L on record

    assert store.realized_pnls() == [(2.0, Decimal("12.5")), (5.0, Decimal("-0.00000000877"))]
    from_positions = [(p.closed_at, p.realized_pnl) for p in store.positions(status=closed) if p.realized_pnl]
    assert sorted(store.realized_pnls()) == sorted(from_positions)


def test_agent_outputs_keep_their_payloads_with_decimals_enums_and_dataclasses(store: Store) -> None:
    ta = TAOutput(
        symbol="BTC/USDT",
        bias=Bias.LONG,
        confidence=0.75,
        trend_direction="up",
        trend_strength=0.5,
        momentum=0.25,
        indicators={"rsi": Decimal("61.123456789")},
        support=TINY,
    )
    store.add_agent_output("R-1", agent="technical_analysis", symbol="BTC/USDT", payload={"ta": ta}, created_at=5.0)
    store.add_agent_output("R-1", agent="risk", symbol="BTC/USDT", payload={"ok": True}, created_at=6.0)
    store.add_agent_output("R-2", agent="risk", symbol="BTC/USDT", payload={}, created_at=7.0)

    outputs = store.agent_outputs("R-1")

    assert [o["agent"] for o in outputs] == ["technical_analysis", "risk"]
    first = outputs[0]
    assert (first["run_id"], first["symbol"], first["created_at"]) == ("R-1", "BTC/USDT", 5.0)
    assert first["payload"]["ta"]["bias"] == "long"
    assert Decimal(first["payload"]["ta"]["indicators"]["rsi"]) == Decimal("61.123456789")
    assert Decimal(first["payload"]["ta"]["support"]) == TINY
    assert store.agent_outputs("R-3") == []


def test_votes_round_trip_in_the_order_cast(store: Store) -> None:
    decisions = [
        ModelDecision(
            "model-a", Action.BUY, 0.8, entry=LARGE, stop_loss=TINY, take_profit=Decimal("50000"), reasoning="trend up"
        ),
        ModelDecision("model-b", Action.HOLD, 0.4),
        ModelDecision("model-c", Action.SELL, 0.0, reasoning="unparseable answer", valid=False),
    ]

    store.add_votes("R-1", symbol="BTC/USDT", decisions=decisions, created_at=9.0)

    assert store.votes("R-1") == decisions
    assert store.votes("R-2") == []


def test_alerts_are_read_per_run_or_all(store: Store) -> None:
    store.add_alert("R-1", level=AlertLevel.CRITICAL, message="position unprotected", created_at=2.0)
    store.add_alert(None, level="LOW", message="take-profit not placed", created_at=1.0)

    assert [(a["level"], a["message"]) for a in store.alerts()] == [
        ("LOW", "take-profit not placed"),
        ("CRITICAL", "position unprotected"),
    ]
    assert [a["run_id"] for a in store.alerts("R-1")] == ["R-1"]


def test_conflicts_are_read_per_symbol_or_all(store: Store) -> None:
    store.add_conflict(
        "R-1",
        symbol="BTC/USDT",
        conflict_type="ta_vs_sentiment",
        resolution_action="wait",
        reasoning="signals disagree",
        confidence=0.6,
        payload={"ta": Bias.LONG, "edge": TINY},
        timestamp=4.0,
    )
    store.add_conflict(
        None,
        symbol="XRP/USDT",
        conflict_type="regime",
        resolution_action="proceed",
        reasoning="",
        confidence=0.9,
        payload={},
        timestamp=3.0,
    )

    assert [c["symbol"] for c in store.conflicts()] == ["XRP/USDT", "BTC/USDT"]
    [btc] = store.conflicts("BTC/USDT")
    assert btc["payload"] == {"ta": "long", "edge": format(TINY, "f")}
    assert (btc["conflict_type"], btc["resolution_action"], btc["confidence"], btc["timestamp"]) == (
        "ta_vs_sentiment",
        "wait",
        0.6,
        4.0,
    )


@settings(max_examples=60, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.decimals(allow_nan=False, allow_infinity=False), st.decimals(allow_nan=False, allow_infinity=False))
def test_any_finite_decimal_keeps_its_value_and_exponent(store: Store, volume: Decimal, price: Decimal) -> None:
    store.upsert_order(make_order(volume=volume, price=price))

    stored = store.get_order("C-1")

    assert stored is not None
    assert (stored.volume.as_tuple(), stored.price.as_tuple() if stored.price is not None else None) == (
        volume.as_tuple(),
        price.as_tuple(),
    )
