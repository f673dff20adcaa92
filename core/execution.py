"""OrderExecutionManager: entry, confirmation, then protection sized to what filled.

The order of operations is the safety argument:
1. the entry's intent row is stored before the request leaves (a crash can be repaired);
2. the entry is confirmed with QueryOrders, never assumed from the acknowledgement;
3. the stop-loss is placed for exactly the filled volume, retried on transient errors
   within a deadline; if it cannot be placed the filled volume is closed at market;
4. the take-profit follows; the position and its protection are stored in one
   transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from tenacity import AsyncRetrying

from core.clock import Clock
from core.config import ExecutionSettings
from core.errors import (
    AmbiguousExchangeError,
    DatabaseWriteError,
    ExchangeError,
    InvalidOrderError,
    PermanentExchangeError,
    RateLimitExceededError,
    TransientExchangeError,
)
from core.exchange import CallCosts, ConditionalClose, ExchangeOrder, KrakenClient, PairInfo
from core.exchange.retry import retrying
from core.models import (
    AlertLevel,
    ExecutionResult,
    ExecutionStatus,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    TradeProposal,
)
from core.positions import PositionTracker
from core.spool import PendingWrites
from core.storage import Store


def new_client_order_id() -> str:
    """A client order id Kraken accepts as cl_ord_id (a UUID)."""
    return str(uuid.uuid4())


@dataclass
class _Attempts:
    """What the retries of one execution cost: counted into the result."""

    retries: int = 0
    warnings: list[str] = field(default_factory=list)


class OrderExecutionManager:
    def __init__(
        self,
        kraken_client: KrakenClient,
        store: Store,
        *,
        clock: Clock,
        settings: ExecutionSettings | None = None,
        run_id: str | None = None,
        client_order_ids: Callable[[], str] = new_client_order_id,
        spool: PendingWrites | None = None,
    ) -> None:
        self._client = kraken_client
        self._store = store
        self._clock = clock
        self._settings = settings or ExecutionSettings()
        self._run_id = run_id
        self._new_id = client_order_ids
        self._tracker = PositionTracker(store, clock)
        self._spool_file = spool
        self._pending_db_writes: list[Order] = []  # what this manager could not store, in order

    async def execute_trade(self, proposal: TradeProposal) -> ExecutionResult:
        started = self._clock.monotonic()
        attempts = _Attempts()
        with self._client.measure() as calls:
            result = await self._execute(proposal, attempts)
        result.retry_count += attempts.retries + calls.retries
        result.warnings = attempts.warnings + _call_warnings(calls) + result.warnings
        result.latency_ms = (self._clock.monotonic() - started) * 1000
        return result

    async def _execute(self, proposal: TradeProposal, attempts: _Attempts) -> ExecutionResult:
        if proposal.volume is None or proposal.volume <= 0:
            return _failed("the proposal has no volume: run it through the risk engine first")
        pair = await self._client.resolve_pair(proposal.symbol)
        volume = pair.round_volume(proposal.volume)
        if volume < pair.ordermin:
            return _failed(
                f"volume {proposal.volume} rounds to {volume}, below the pair's minimum {pair.ordermin}"
            )
        entry = self._new_order(proposal, OrderRole.ENTRY, OrderType.MARKET, volume, None, pair)
        entry.side = proposal.side
        close = None
        if self._settings.protection == "conditional_close":
            close = ConditionalClose(OrderType.STOP_LOSS, pair.round_price(proposal.stop_loss))
        try:
            await self._place(entry, attempts, close=close)
        except (PermanentExchangeError, TransientExchangeError) as exc:
            entry.status = OrderStatus.REJECTED
            self._persist(entry, attempts)
            return _failed(f"entry order not placed: {exc}", orders=[entry])
        except AmbiguousExchangeError as exc:
            return self._unknown(entry, attempts, (
                f"entry order outcome unknown ({exc}): the exchange may hold it under client order id "
                f"{entry.client_order_id}; `tg reconcile` will adopt or clear it"
            ))

        if not await self._confirm(entry, attempts):
            return self._unknown(entry, attempts, (
                f"order not found after placement: {entry.external_id} was acknowledged "
                "but QueryOrders does not show it; kept for reconciliation (tg reconcile)"
            ))
        if entry.filled_volume <= 0:
            return ExecutionResult(success=True, status=ExecutionStatus.OPEN, orders=[entry])

        partial = entry.filled_volume < entry.volume
        orders = [entry]
        if partial and entry.status.is_live and not self._settings.keep_unfilled_remainder:
            await self._cancel_remainder(entry, attempts)

        attached = await self._conditional_closes(entry, attempts) if close is not None else []
        if attached:
            orders += attached
        else:
            if close is not None:
                attempts.warnings.append("the entry's conditional close did not appear; placing a stop-loss order")
            stop = self._new_order(
                proposal, OrderRole.STOP_LOSS, OrderType.STOP_LOSS, entry.filled_volume,
                pair.round_price(proposal.stop_loss), pair,
            )
            stop.side = proposal.side.opposite
            orders.append(stop)
            try:
                await self._place(stop, attempts)
                if not await self._confirm(stop, attempts) or not stop.status.is_live:
                    raise InvalidOrderError(f"stop-loss {stop.external_id} is not live on the exchange")
            except Exception as exc:  # any failure here leaves a naked position: flatten it, whatever it was
                return await self._flatten_unprotected(entry, stop, orders, exc, attempts, pair)

        target = self._new_order(
            proposal, OrderRole.TAKE_PROFIT, OrderType.TAKE_PROFIT, entry.filled_volume,
            pair.round_price(proposal.take_profit), pair,
        )
        target.side = proposal.side.opposite
        alert: AlertLevel | None = None
        try:
            await self._place(target, attempts)
            await self._confirm(target, attempts)
            orders.append(target)
        except ExchangeError as exc:
            target.status = OrderStatus.REJECTED
            orders.append(target)
            alert = AlertLevel.LOW
            attempts.warnings.append(f"take-profit not placed ({exc}); the stop-loss protects the position")

        position = self._tracker.open_position(entry, [o for o in orders if o.role is not OrderRole.ENTRY])
        try:
            self._store.record_protected_position(position, orders)
        except DatabaseWriteError as exc:
            self._spool(orders, attempts, exc, position)
        return ExecutionResult(
            success=True,
            status=ExecutionStatus.PARTIAL if partial else ExecutionStatus.FILLED,
            orders=orders,
            position=position,
            partial_fill=partial,
            alert_level=alert,
        )

    def _unknown(self, entry: Order, attempts: _Attempts, message: str) -> ExecutionResult:
        """The exchange may hold the entry: keep it for reconciliation and say so loudly."""
        entry.status = OrderStatus.UNKNOWN
        self._persist(entry, attempts)
        return ExecutionResult(
            success=False, status=ExecutionStatus.UNKNOWN, orders=[entry],
            alert_level=AlertLevel.HIGH, error_message=message,
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
        now = self._clock.time()
        return Order(
            client_order_id=self._new_id(),
            symbol=pair.symbol,
            side=proposal.side,
            order_type=order_type,
            volume=volume,
            role=role,
            price=price,
            run_id=self._run_id,
            created_at=now,
            updated_at=now,
        )

    def _retrying(self, attempts: _Attempts, what: str) -> AsyncRetrying:
        def record(error: ExchangeError | None, wait: float) -> None:
            attempts.retries += 1
            kind = "rate limit" if isinstance(error, RateLimitExceededError) else "transient error"
            attempts.warnings.append(f"{what}: {kind} ({error}); retried after {wait:.1f} s")

        return retrying(
            self._clock,
            attempts=self._settings.stop_max_attempts,
            deadline_s=self._settings.stop_retry_deadline_s,
            rate_limit_wait_s=self._settings.rate_limit_backoff_s,
            on_retry=record,
        )

    async def _conditional_closes(self, entry: Order, attempts: _Attempts) -> list[Order]:
        """The stops Kraken opened for the entry's fills, if they cover all of it."""
        found = [o for o in (await self._client.open_orders()).values() if o.refid == entry.external_id]
        if sum((o.volume - o.volume_executed for o in found), Decimal(0)) < entry.filled_volume:
            return []
        stops = []
        for index, close in enumerate(found):
            stop = Order(
                client_order_id=f"{entry.client_order_id}-close-{index}", symbol=entry.symbol,
                side=entry.side.opposite, order_type=OrderType(close.ordertype), volume=close.volume,
                role=OrderRole.STOP_LOSS, price=close.price, external_id=close.txid, run_id=self._run_id,
                created_at=self._clock.time(),
            )
            _apply(stop, close, self._clock.time())
            self._persist(stop, attempts)
            stops.append(stop)
        return stops

    async def _place(self, order: Order, attempts: _Attempts, *, close: ConditionalClose | None = None) -> None:
        """Send an order; an ambiguous answer is resolved by looking it up, never by resending blind.

        Its intent row is stored first, so a crash at any later point leaves a record to repair."""
        self._persist(order, attempts)
        async for attempt in self._retrying(attempts, f"{order.role.value} order"):
            with attempt:
                try:
                    ack = await self._client.add_order(
                        order.symbol, order.side, order.order_type, order.volume, order.price,
                        cl_ord_id=order.client_order_id, close=close,
                    )
                    order.external_id = ack.txid
                except AmbiguousExchangeError:
                    found = await self._find_by_client_id(order.client_order_id)
                    if found is None:
                        raise
                    order.external_id = found.txid
                    attempts.warnings.append(
                        f"{order.role.value} order: the exchange's answer was lost; found it by client order id"
                    )
        order.status = OrderStatus.PENDING
        order.updated_at = self._clock.time()
        self._persist(order, attempts)

    async def _find_by_client_id(self, client_order_id: str) -> ExchangeOrder | None:
        for listing in (await self._client.open_orders(), await self._client.closed_orders()):
            for found in listing.values():
                if found.cl_ord_id == client_order_id:
                    return found
        return None

    async def _confirm(self, order: Order, attempts: _Attempts) -> bool:
        """Read the order back; an order the exchange acknowledged may be slow to show."""
        assert order.external_id is not None
        for attempt in range(self._settings.confirm_attempts):
            found = (await self._client.query_orders([order.external_id])).get(order.external_id)
            if found is not None:
                _apply(order, found, self._clock.time())
                self._persist(order, attempts)
                return True
            if attempt + 1 < self._settings.confirm_attempts:
                await self._clock.sleep(0.5 * 2**attempt)
        return False

    async def _cancel_remainder(self, entry: Order, attempts: _Attempts) -> None:
        assert entry.external_id is not None
        try:
            await self._client.cancel_order(entry.external_id)
        except ExchangeError as exc:
            attempts.warnings.append(f"could not cancel the unfilled remainder of the entry: {exc}")
            return
        await self._confirm(entry, attempts)

    async def _flatten_unprotected(
        self,
        entry: Order,
        stop: Order,
        orders: list[Order],
        cause: Exception,
        attempts: _Attempts,
        pair: PairInfo,
    ) -> ExecutionResult:
        """The stop could not be placed: a position without a stop must not exist, so close it."""
        stop.status = OrderStatus.REJECTED
        self._persist(stop, attempts)
        close = Order(
            client_order_id=self._new_id(),
            symbol=pair.symbol,
            side=entry.side.opposite,
            order_type=OrderType.MARKET,
            volume=entry.filled_volume,
            role=OrderRole.CLOSE,
            run_id=self._run_id,
            created_at=self._clock.time(),
            updated_at=self._clock.time(),
        )
        orders.append(close)
        message = f"stop-loss failed ({cause}); the filled volume {entry.filled_volume} was closed at market"
        position: Position | None = None
        try:
            await self._place(close, attempts)
            await self._confirm(close, attempts)
            position = self._tracker.open_position(entry, [stop, close])
            if close.filled_volume >= entry.filled_volume:
                self._tracker.close(position, close.avg_fill_price or entry.avg_fill_price or Decimal(0), orders)
            else:
                message = (
                    f"stop-loss failed ({cause}); closing the filled volume at market: {close.filled_volume} of "
                    f"{entry.filled_volume} filled so far, `tg reconcile` sees the rest through"
                )
            try:
                self._store.record_protected_position(position, orders)
            except DatabaseWriteError as exc:
                self._spool(orders, attempts, exc, position)
        except ExchangeError as exc:
            message = (
                f"stop-loss failed ({cause}) and closing the filled volume failed too ({exc}): "
                "the position is UNPROTECTED, close it by hand now"
            )
        return ExecutionResult(
            success=False,
            status=ExecutionStatus.CLOSED,
            orders=orders,
            position=position,
            partial_fill=True,
            alert_level=AlertLevel.CRITICAL,
            error_message=message,
        )

    def _persist(self, order: Order, attempts: _Attempts) -> None:
        try:
            self._store.upsert_order(order)
        except DatabaseWriteError as exc:
            self._spool([order], attempts, exc)

    def _spool(
        self, orders: list[Order], attempts: _Attempts, cause: DatabaseWriteError, position: Position | None = None
    ) -> None:
        self._pending_db_writes.extend(orders)
        where = "in memory"
        if self._spool_file is not None:
            self._spool_file.append(orders, position)
            where = f"in {self._spool_file.path}; the next run writes it"
        attempts.warnings.append(f"database write failed ({cause}); the record is kept {where}")


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
            f"{calls.retries} exchange read(s) retried after transient errors, "
            f"{calls.retry_wait_s:.1f} s of backoff"
        )
    return warnings


def _apply(order: Order, found: ExchangeOrder, now: float) -> None:
    order.status = OrderStatus(found.status)
    order.filled_volume = found.volume_executed
    order.avg_fill_price = found.avg_price if found.volume_executed > 0 else None
    order.fee = found.fee
    order.updated_at = now


def _failed(message: str, orders: list[Order] | None = None) -> ExecutionResult:
    return ExecutionResult(
        success=False, status=ExecutionStatus.FAILED, orders=orders or [], error_message=message
    )
