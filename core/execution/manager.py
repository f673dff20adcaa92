"""OrderExecutionManager: entry, confirmation, then protection sized to what filled.

The order of operations is the safety argument:
1. the entry's intent row is stored (in the database, or the spool) before the request
   leaves, or the entry is not sent: a crash can always be repaired;
2. the entry is confirmed with QueryOrders, never assumed from the acknowledgement;
3. from the moment anything filled, protection comes before bookkeeping: the stop-loss
   is placed for exactly the filled volume, retried on transient errors within a
   deadline, and if it cannot be placed the filled volume is closed at market. No
   write to storage can hold that up or stop it: a refused write goes to the spool,
   and what the spool refuses too is handed back in `ExecutionResult.unrecorded`;
4. the take-profit follows; the position and its protection are recorded at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from core.domain.clock import Clock
from core.domain.config import ExecutionSettings
from core.domain.enums import AlertLevel, ExecutionStatus, OrderRole, OrderStatus, OrderType
from core.domain.errors import (
    AmbiguousExchangeError,
    ExchangeError,
    InvalidOrderError,
    PermanentExchangeError,
    StorageError,
    TransientExchangeError,
)
from core.domain.models import ExecutionResult, Order, TradeProposal
from core.exchange import CallCosts, ConditionalClose, KrakenClient, PairInfo
from core.execution.placement import PROTECTION_WRITE_WAIT_S, Attempts, OrderPlacer, Recorder, apply_exchange_state
from core.execution.positions import PositionTracker
from core.execution.spool import PendingWrites
from core.storage.store import Store


class OrderExecutionManager:
    def __init__(
        self,
        kraken_client: KrakenClient,
        store: Store,
        *,
        clock: Clock,
        settings: ExecutionSettings | None = None,
        run_id: str | None = None,
        client_order_ids: Callable[[OrderRole], str] | None = None,
        spool: PendingWrites | None = None,
    ) -> None:
        self._client = kraken_client
        self._store = store
        self._clock = clock
        self._settings = settings or ExecutionSettings()
        self._run_id = run_id
        self._new_id = client_order_ids or store.namespace().new_client_order_id
        self._tracker = PositionTracker(store, clock)
        self._spool = spool

    async def execute_trade(self, proposal: TradeProposal) -> ExecutionResult:
        started = self._clock.monotonic()
        attempts = Attempts()
        recorder = Recorder(self._store, self._spool, attempts)
        placer = OrderPlacer(self._client, recorder, self._clock, self._settings, attempts)
        with self._client.measure() as calls:
            result = await _Execution(self, placer, attempts).run(proposal)
        result.retry_count += attempts.retries + calls.retries
        result.warnings = attempts.warnings + _call_warnings(calls) + result.warnings
        result.latency_ms = (self._clock.monotonic() - started) * 1000
        result.unrecorded = recorder.unrecorded
        return result


class _Execution:
    """One trade's way through the exchange."""

    def __init__(self, manager: OrderExecutionManager, placer: OrderPlacer, attempts: Attempts) -> None:
        self._m = manager
        self._placer = placer
        self._attempts = attempts

    async def run(self, proposal: TradeProposal) -> ExecutionResult:
        m = self._m
        if proposal.volume is None or proposal.volume <= 0:
            return _failed("the proposal has no volume: run it through the risk engine first")
        pair = await m._client.resolve_pair(proposal.symbol)
        volume = pair.round_volume(proposal.volume)
        if volume < pair.ordermin:
            return _failed(f"volume {proposal.volume} rounds to {volume}, below the pair's minimum {pair.ordermin}")
        entry = self._new_order(proposal, OrderRole.ENTRY, OrderType.MARKET, volume, None, pair)
        entry.side = proposal.side
        entry.stop_level = pair.round_price(proposal.stop_loss)
        entry.target_level = pair.round_price(proposal.take_profit)
        close = None
        if m._settings.protection == "conditional_close":
            close = ConditionalClose(OrderType.STOP_LOSS, pair.round_price(proposal.stop_loss))
        try:
            await self._placer.place(entry, close=close, intent_required=True)
        except StorageError as exc:
            return _failed(str(exc))
        except (PermanentExchangeError, TransientExchangeError) as exc:
            entry.status = OrderStatus.REJECTED
            self._placer.recorder.order(entry)
            return _failed(f"entry order not placed: {exc}", orders=[entry])
        except AmbiguousExchangeError as exc:
            if not await self._placer.confirm(entry):
                return self._unknown(
                    entry,
                    (
                        f"entry order outcome unknown ({exc}): the exchange may hold it under client order id "
                        f"{entry.client_order_id}; `tg reconcile` protects it if it filled"
                    ),
                )
        else:
            if not await self._placer.confirm(entry):
                return self._unknown(
                    entry,
                    (
                        f"order not found after placement: {entry.external_id} was acknowledged "
                        "but QueryOrders does not show it; kept for reconciliation (tg reconcile)"
                    ),
                )
        if entry.filled_volume <= 0:
            return ExecutionResult(success=True, status=ExecutionStatus.OPEN, orders=[entry])
        # Something filled: from here on storage may not hold protection up.
        with m._store.waiting_at_most(PROTECTION_WRITE_WAIT_S):
            return await self._protect(proposal, entry, close, pair)

    async def _protect(
        self, proposal: TradeProposal, entry: Order, close: ConditionalClose | None, pair: PairInfo
    ) -> ExecutionResult:
        m = self._m
        partial = entry.filled_volume < entry.volume
        orders = [entry]
        if partial and entry.status.is_live and not m._settings.keep_unfilled_remainder:
            await self._cancel_remainder(entry)

        attached = await self._conditional_closes(entry) if close is not None else []
        if attached:
            orders += attached
        else:
            if close is not None:
                self._attempts.warnings.append(
                    "the entry's conditional close did not appear; placing a stop-loss order"
                )
            stop = self._new_order(
                proposal,
                OrderRole.STOP_LOSS,
                OrderType.STOP_LOSS,
                entry.filled_volume,
                pair.round_price(proposal.stop_loss),
                pair,
            )
            stop.side = proposal.side.opposite
            orders.append(stop)
            try:
                await self._placer.place(stop)
                if not await self._placer.ensure_live(stop):
                    raise InvalidOrderError(
                        f"stop-loss {stop.external_id or stop.client_order_id} is not live on the exchange"
                    )
            except Exception as exc:  # noqa: BLE001 - any failure here leaves a naked position: flatten it
                return await self._flatten_unprotected(entry, stop, orders, exc, pair)

        target = self._new_order(
            proposal,
            OrderRole.TAKE_PROFIT,
            OrderType.TAKE_PROFIT,
            entry.filled_volume,
            pair.round_price(proposal.take_profit),
            pair,
        )
        target.side = proposal.side.opposite
        alert: AlertLevel | None = None
        why: str | None = None
        orders.append(target)
        try:
            await self._placer.place(target)
            await self._placer.confirm(target)
        except ExchangeError as exc:
            if target.external_id is None and target.status is OrderStatus.INTENT:
                target.status = OrderStatus.REJECTED
            alert = AlertLevel.LOW  # an alert says why, as every alert does (the output, the run's alerts)
            why = f"take-profit not placed ({exc}); the stop-loss protects the position"

        position = m._tracker.open_position(entry, [o for o in orders if o.role is not OrderRole.ENTRY])
        self._placer.recorder.position(position, orders)
        return ExecutionResult(
            success=True,
            status=ExecutionStatus.PARTIAL if partial else ExecutionStatus.FILLED,
            orders=orders,
            position=position,
            partial_fill=partial,
            alert_level=alert,
            error_message=why,
        )

    def _unknown(self, entry: Order, message: str) -> ExecutionResult:
        """The exchange may hold the entry: keep it for reconciliation and say so loudly."""
        entry.status = OrderStatus.UNKNOWN
        self._placer.recorder.order(entry)
        return ExecutionResult(
            success=False,
            status=ExecutionStatus.UNKNOWN,
            orders=[entry],
            alert_level=AlertLevel.HIGH,
            error_message=message,
        )

    def _new_order(
        self,
        proposal: TradeProposal,
        role: OrderRole,
        order_type: OrderType,
        volume: Decimal,
        price: Decimal | None,
        pair: PairInfo,
    ) -> Order:
        m = self._m
        now = m._clock.time()
        return Order(
            client_order_id=m._new_id(role),
            symbol=pair.symbol,
            side=proposal.side,
            order_type=order_type,
            volume=volume,
            role=role,
            price=price,
            run_id=m._run_id,
            created_at=now,
            updated_at=now,
        )

    async def _conditional_closes(self, entry: Order) -> list[Order]:
        """The stops Kraken opened for the entry's fills, if they cover all of it."""
        m = self._m
        found = [o for o in (await m._client.open_orders()).values() if o.refid == entry.external_id]
        if sum((o.volume - o.volume_executed for o in found), Decimal(0)) < entry.filled_volume:
            return []
        stops = []
        for index, child in enumerate(found):
            stop = Order(
                client_order_id=f"{entry.client_order_id}-close-{index}",
                symbol=entry.symbol,
                side=entry.side.opposite,
                order_type=OrderType(child.ordertype),
                volume=child.volume,
                role=OrderRole.STOP_LOSS,
                price=child.price,
                external_id=child.txid,
                run_id=m._run_id,
                created_at=m._clock.time(),
            )
            apply_exchange_state(stop, child, m._clock.time())
            self._placer.recorder.order(stop)
            stops.append(stop)
        return stops

    async def _cancel_remainder(self, entry: Order) -> None:
        try:
            await self._placer.cancel(entry)
        except ExchangeError as exc:
            self._attempts.warnings.append(f"could not cancel the unfilled remainder of the entry: {exc}")

    async def _flatten_unprotected(
        self,
        entry: Order,
        stop: Order,
        orders: list[Order],
        cause: Exception,
        pair: PairInfo,
    ) -> ExecutionResult:
        """The stop could not be made live: a position without a stop must not exist, so
        close it. The stop is cancelled first, by client order id if its txid never came
        back: an order the exchange holds but did not show must not outlive the position."""
        m = self._m
        refused = isinstance(cause, PermanentExchangeError) and stop.status is OrderStatus.INTENT
        if not refused:
            try:
                await self._placer.cancel(stop)
            except ExchangeError as exc:
                self._attempts.warnings.append(f"could not cancel the failed stop-loss: {exc}")
        if stop.status in (OrderStatus.INTENT, OrderStatus.PENDING):
            # refused outright, or of unknown fate: reconciliation cancels it if it ever shows
            stop.status = OrderStatus.REJECTED if refused else OrderStatus.UNKNOWN
        self._placer.recorder.order(stop)
        still_held = entry.filled_volume - stop.filled_volume
        position = m._tracker.open_position(entry, [stop])
        close = Order(
            client_order_id=m._new_id(OrderRole.CLOSE),
            symbol=pair.symbol,
            side=entry.side.opposite,
            order_type=OrderType.MARKET,
            volume=still_held,
            role=OrderRole.CLOSE,
            # the position's from its first record: a close that fills after this cycle
            # (or whose records reach the database apart) still counts against it
            position_id=position.id,
            run_id=m._run_id,
            created_at=m._clock.time(),
            updated_at=m._clock.time(),
        )
        message = f"stop-loss failed ({cause}); the filled volume {entry.filled_volume} was closed at market"
        exits = [stop] if stop.filled_volume > 0 else []
        try:
            if still_held > 0:
                orders.append(close)
                await self._placer.place(close)
                await self._placer.confirm(close)
                exits.append(close)
            sold = sum((o.filled_volume for o in exits), Decimal(0))
            if sold >= entry.filled_volume:
                price = (
                    sum(
                        ((o.avg_fill_price or entry.avg_fill_price or Decimal(0)) * o.filled_volume for o in exits),
                        Decimal(0),
                    )
                    / sold
                )
                m._tracker.close(position, price, orders)
            else:
                message = (
                    f"stop-loss failed ({cause}); closing the filled volume at market: {sold} of "
                    f"{entry.filled_volume} filled so far, `tg reconcile` sees the rest through"
                )
        except ExchangeError as exc:
            message = (
                f"stop-loss failed ({cause}) and closing the filled volume failed too ({exc}): "
                "the position is UNPROTECTED, close it by hand now"
            )
        self._placer.recorder.position(position, orders)
        return ExecutionResult(
            success=False,
            status=ExecutionStatus.CLOSED,
            orders=orders,
            position=position,
            partial_fill=True,
            alert_level=AlertLevel.CRITICAL,
            error_message=message,
        )


def _call_warnings(calls: CallCosts) -> list[str]:
    """The client's own retries and rate-limit waits: they are in latency_ms, say why."""
    warnings = []
    if calls.rate_limit_waits:
        warnings.append(
            f"Kraken's rate limit held {calls.rate_limit_waits} exchange call(s) back, "
            f"{calls.rate_limit_wait_s:.1f} s in total"
        )
    if calls.retries:
        warnings.append(
            f"{calls.retries} exchange read(s) retried after transient errors, {calls.retry_wait_s:.1f} s of backoff"
        )
    return warnings


def _failed(message: str, orders: list[Order] | None = None) -> ExecutionResult:
    return ExecutionResult(success=False, status=ExecutionStatus.FAILED, orders=orders or [], error_message=message)
