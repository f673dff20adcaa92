"""The seed's Critical Risk #1: order execution that partially succeeds."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from core.domain.clock import VirtualClock
from core.domain.config import ExecutionSettings
from core.domain.enums import AlertLevel, ExecutionStatus, OrderRole, OrderType, PositionStatus, Side
from core.domain.errors import (
    DatabaseWriteError,
    ExchangeTimeoutError,
    InsufficientFundsError,
    InvalidOrderError,
    RateLimitExceededError,
    ServiceBusyError,
)
from core.domain.models import TradeProposal
from core.exchange import AddOrderAck, KrakenClient
from core.execution.manager import OrderExecutionManager
from core.storage.store import Store
from tests.execution.scripted_kraken import ScriptedKraken

PROPOSAL = TradeProposal(
    symbol="BTC/USDT",
    side=Side.BUY,
    entry_price=Decimal("60000"),
    stop_loss=Decimal("58800"),
    take_profit=Decimal("62400"),
    confidence=0.8,
    volume=Decimal("0.05"),
)


def manager(kraken: ScriptedKraken, store: Store, clock: VirtualClock | None = None) -> OrderExecutionManager:
    # ScriptedKraken stands in for the few KrakenClient calls the manager makes
    client = cast(KrakenClient, kraken)
    return OrderExecutionManager(client, store, clock=clock or VirtualClock(), settings=ExecutionSettings())


class TestOrderExecutionPartialFailures:
    async def test_entry_fills_but_stop_loss_fails(self, store: Store) -> None:
        kraken = ScriptedKraken([None, InvalidOrderError("Stop-loss placement failed")])

        result = await manager(kraken, store).execute_trade(PROPOSAL)

        assert result.success is False
        assert result.partial_fill is True
        assert result.alert_level is AlertLevel.CRITICAL
        assert result.error_message is not None
        assert "stop-loss failed" in result.error_message.lower()
        assert [c["type"] for c in kraken.add_order_calls] == [OrderType.MARKET, OrderType.STOP_LOSS, OrderType.MARKET]
        close = kraken.add_order_calls[2]
        assert close["side"] is Side.SELL and close["volume"] == Decimal("0.05")
        [position] = store.positions()  # recorded, and closed at once: never left open without a stop
        assert position.status is PositionStatus.CLOSED
        assert position.realized_pnl == -position.fees

    async def test_entry_fills_stop_fails_with_any_exception_still_flattens(self, store: Store) -> None:
        kraken = ScriptedKraken([None, Exception("Stop-loss placement failed")])

        result = await manager(kraken, store).execute_trade(PROPOSAL)

        assert result.alert_level is AlertLevel.CRITICAL
        assert len(kraken.add_order_calls) == 3

    async def test_entry_fills_stop_fails_retry_succeeds(self, store: Store) -> None:
        kraken = ScriptedKraken([None, ServiceBusyError("Temporary failure"), None])

        result = await manager(kraken, store).execute_trade(PROPOSAL)

        assert result.success is True
        assert result.retry_count > 0
        assert len(result.warnings) > 0
        stop = result.order_for(OrderRole.STOP_LOSS)
        assert stop is not None and stop.external_id == "ORDER-3"
        [position] = store.positions()
        assert position.stop_loss == Decimal("58800.0")

    async def test_take_profit_refused_is_a_low_alert_that_says_why(self, store: Store) -> None:
        kraken = ScriptedKraken([None, None, InvalidOrderError("EOrder:Invalid price")])

        result = await manager(kraken, store).execute_trade(PROPOSAL)

        assert result.success is True and result.alert_level is AlertLevel.LOW
        assert result.error_message is not None  # printed after "ALERT LOW:", kept as the run's alert
        assert "take-profit not placed" in result.error_message and "stop-loss protects" in result.error_message
        [position] = store.positions()
        assert position.status is PositionStatus.OPEN and result.order_for(OrderRole.STOP_LOSS) is not None

    async def test_position_recorded_but_db_write_fails(self, tmp_path: Path) -> None:
        def refuse_positions(table: str) -> None:
            if table == "positions":
                raise DatabaseWriteError("DB connection lost")

        kraken = ScriptedKraken()
        with Store.open(tmp_path / "tg.db", write_guard=refuse_positions) as store:
            order_manager = manager(kraken, store)
            result = await order_manager.execute_trade(PROPOSAL)

        assert result.success is True  # protected on the exchange: storage came second
        assert result.warnings_contains("not recorded")
        [kept] = result.unrecorded  # no spool was given: handed back for the caller to print
        assert result.position is not None and kept["position"]["id"] == result.position.id
        assert [o["external_id"] for o in kept["orders"]] == ["ORDER-1", "ORDER-2", "ORDER-3"]

    async def test_kraken_returns_success_but_order_not_found(self, store: Store) -> None:
        kraken = ScriptedKraken(never_visible=True)

        result = await manager(kraken, store).execute_trade(PROPOSAL)

        assert result.status is ExecutionStatus.UNKNOWN
        assert result.alert_level is AlertLevel.HIGH
        assert result.error_message is not None
        assert "order not found after placement" in result.error_message.lower()
        assert len(kraken.add_order_calls) == 1
        [kept] = store.orders()
        assert kept.external_id == "ORDER-1"

    async def test_order_visible_after_stale_reads_is_confirmed(self, store: Store) -> None:
        kraken = ScriptedKraken(visible_after_queries=2)

        result = await manager(kraken, store).execute_trade(PROPOSAL)

        assert result.success is True
        assert result.status is ExecutionStatus.FILLED

    async def test_partial_fill_sizes_protection_to_filled_volume(self, store: Store) -> None:
        kraken = ScriptedKraken(fill_ratio=Decimal("0.4"))

        result = await manager(kraken, store).execute_trade(PROPOSAL)

        assert result.partial_fill is True
        assert result.status is ExecutionStatus.PARTIAL
        stop, target = result.order_for(OrderRole.STOP_LOSS), result.order_for(OrderRole.TAKE_PROFIT)
        assert stop is not None and stop.volume == Decimal("0.020")
        assert target is not None and target.volume == Decimal("0.020")
        assert kraken.cancel_calls == ["ORDER-1"]  # the unfilled remainder is not left working
        assert result.position is not None and result.position.size == Decimal("0.020")

    async def test_insufficient_funds_is_a_clean_failure(self, store: Store) -> None:
        kraken = ScriptedKraken([InsufficientFundsError("EOrder:Insufficient funds")])

        result = await manager(kraken, store).execute_trade(PROPOSAL)

        assert result.success is False
        assert result.status is ExecutionStatus.FAILED
        assert result.position is None
        assert len(kraken.add_order_calls) == 1
        assert store.positions() == []

    async def test_lost_answer_is_resolved_by_client_order_id_without_resending(self, store: Store) -> None:
        kraken = AnswerLostOnce()

        result = await manager(kraken, store).execute_trade(PROPOSAL)

        assert [c["type"] for c in kraken.add_order_calls] == [
            OrderType.MARKET,
            OrderType.STOP_LOSS,
            OrderType.TAKE_PROFIT,
        ]
        assert result.success is True
        assert result.order is not None and result.order.external_id == "ORDER-1"
        assert result.warnings_contains("found it by client order id")


class AnswerLostOnce(ScriptedKraken):
    """The first order reaches the exchange but its answer never comes back."""

    async def add_order(self, *args: Any, **kwargs: Any) -> AddOrderAck:
        ack = await super().add_order(*args, **kwargs)
        if len(self.add_order_calls) == 1:
            raise ExchangeTimeoutError("no answer in time")
        return ack


class TestOrderExecutionRateLimits:
    async def test_rate_limit_hit_during_order_placement(self, store: Store) -> None:
        kraken = ScriptedKraken([RateLimitExceededError("EAPI:Rate limit exceeded")])
        clock = VirtualClock()

        result = await manager(kraken, store, clock).execute_trade(PROPOSAL)

        assert result.success is True
        assert result.latency_ms > 1000
        assert "rate limit" in result.warnings[0].lower()
