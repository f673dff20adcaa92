"""The one way tg sends, confirms and cancels an order, and records what it did.

Execution and reconciliation both place orders through `OrderPlacer`, so an answer
lost on the way back is resolved the same way wherever it happens:

- every order carries a client order id of tg's namespace, so it can be found again
  by that id whatever became of the answer;
- an ambiguous answer (a timeout, EGeneral:Internal error, an HTML 5xx page) is
  resolved by looking the order up by its client order id before anything is resent;
- a resting protective order (stop-loss, take-profit) not found yet is sent again
  with the SAME client order id: Kraken refuses a client order id an open order
  already carries ("EOrder:Duplicate order"), so a copy can never be placed and the
  refusal proves the first one is live. A market order closes at once, so resending it
  could fill twice: it is never resent, only looked up.

`Recorder` writes the records without ever holding the exchange side up: a write the
database refuses goes to the pending-writes spool, and one the spool refuses too is
kept in `unrecorded`, for the command to print. Nothing is reported as stored that
was not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tenacity import AsyncRetrying

from core.domain.clock import Clock
from core.domain.config import ExecutionSettings
from core.domain.enums import OrderRole, OrderStatus
from core.domain.errors import (
    AmbiguousExchangeError,
    DuplicateOrderError,
    ExchangeError,
    InvalidOrderError,
    RateLimitExceededError,
    StorageError,
    TransientExchangeError,
    UnknownOrderError,
)
from core.domain.models import Order, Position
from core.exchange import ConditionalClose, ExchangeOrder, KrakenClient
from core.exchange.retry import retrying
from core.execution.spool import PendingWrites, spool_record
from core.storage.store import Store

STOP_DISTANCE = Decimal("0.02")
TARGET_DISTANCE = Decimal("0.04")
"""The stop and target of an order that brings no levels of its own (an operator's
proposal, a position taken over from a lost database): 2% and 4% (2R) from its price."""

PROTECTION_WRITE_WAIT_S = 0.5
"""The longest a write waits for the database lock while a position may be unprotected."""

_RESENDABLE = frozenset({OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT})


@dataclass
class Attempts:
    """What the retries of one piece of work cost, and what it had to say about them."""

    retries: int = 0
    warnings: list[str] = field(default_factory=list)


class Recorder:
    """tg's records, written so that storage never stops the exchange side."""

    def __init__(self, store: Store, spool: PendingWrites | None, attempts: Attempts) -> None:
        self.store = store
        self._spool = spool
        self._attempts = attempts
        self.unrecorded: list[dict[str, Any]] = []
        """Records neither the database nor the spool took, as spool lines: saved into the
        spool file later (or given to `tg reconcile --records`), they are written then."""

    def order(self, order: Order) -> bool:
        """Store `order`; False when it is kept only in memory (and in `unrecorded`)."""
        try:
            self.store.upsert_order(order)
            return True
        except StorageError as exc:
            return self._keep([order], None, exc)

    def position(self, position: Position, orders: Sequence[Order]) -> bool:
        """Store the position with its orders, all or nothing."""
        try:
            self.store.record_protected_position(position, orders)
            return True
        except StorageError as exc:
            return self._keep(orders, position, exc)

    def _keep(self, orders: Sequence[Order], position: Position | None, cause: StorageError) -> bool:
        if self._spool is not None:
            try:
                self._spool.append(orders, position)
                self._attempts.warnings.append(
                    f"database write failed ({cause}); kept in {self._spool.path}, the next run writes it"
                )
                return True
            except StorageError as spool_failure:
                cause = StorageError(f"{cause}; and the spool: {spool_failure}")
        self.unrecorded.append(spool_record(orders, position))
        names = ", ".join(o.external_id or o.client_order_id for o in orders) or "a position"
        self._attempts.warnings.append(f"NOT RECORDED ({cause}): {names}; printed on stderr")
        return False


class OrderPlacer:
    def __init__(
        self,
        client: KrakenClient,
        recorder: Recorder,
        clock: Clock,
        settings: ExecutionSettings,
        attempts: Attempts,
    ) -> None:
        self._client = client
        self.recorder = recorder
        self._clock = clock
        self._settings = settings
        self._attempts = attempts

    def _retrying(self, what: str, *, ambiguous_too: bool) -> AsyncRetrying:
        attempts = self._attempts

        def record(error: ExchangeError | None, wait: float) -> None:
            attempts.retries += 1
            kind = "rate limit" if isinstance(error, RateLimitExceededError) else "transient error"
            if isinstance(error, AmbiguousExchangeError):
                kind = "answer lost"
            attempts.warnings.append(f"{what}: {kind} ({error}); retried after {wait:.1f} s")

        retry_on: tuple[type[BaseException], ...] = (TransientExchangeError,)
        if ambiguous_too:
            retry_on += (AmbiguousExchangeError,)
        return retrying(
            self._clock,
            attempts=self._settings.stop_max_attempts,
            deadline_s=self._settings.stop_retry_deadline_s,
            rate_limit_wait_s=self._settings.rate_limit_backoff_s,
            retry_on=retry_on,
            on_retry=record,
        )

    async def place(
        self, order: Order, *, close: ConditionalClose | None = None, intent_required: bool = False
    ) -> bool:
        """Send `order` (its intent row stored first) until the exchange has it.

        Returns with the order PENDING (its txid known, or still None when the exchange
        holds it but does not show it yet): True when the exchange said an open order
        already carried its client order id (placed before, by an earlier attempt).
        Raises the exchange's refusal, or an AmbiguousExchangeError when its fate could
        not be told. With `intent_required`, nothing is sent unless the intent row was
        stored (in the database or the spool): a StorageError says so."""
        if not self.recorder.order(order) and intent_required:
            raise StorageError(
                f"could not record the intent of {order.role.value} order {order.client_order_id}, "
                "so it was not sent: fix the storage and try again"
            )
        resend = order.role in _RESENDABLE
        already_live = False
        async for attempt in self._retrying(f"{order.role.value} order", ambiguous_too=resend):
            with attempt:
                try:
                    ack = await self._client.add_order(
                        order.symbol,
                        order.side,
                        order.order_type,
                        order.volume,
                        order.price,
                        cl_ord_id=order.client_order_id,
                        close=close,
                    )
                    order.external_id = ack.txid
                except DuplicateOrderError:
                    already_live = True
                    found = await self.find(order.client_order_id)
                    order.external_id = found.txid if found is not None else order.external_id
                    self._attempts.warnings.append(
                        f"{order.role.value} order: already live under client order id {order.client_order_id}"
                    )
                except AmbiguousExchangeError:
                    found = await self.find(order.client_order_id)
                    if found is None:
                        raise  # resent (protective orders only) with the same client order id
                    order.external_id = found.txid
                    self._attempts.warnings.append(
                        f"{order.role.value} order: the exchange's answer was lost; found it by client order id"
                    )
        order.status = OrderStatus.PENDING
        order.updated_at = self._clock.time()
        self.recorder.order(order)
        return already_live

    async def ensure_live(self, order: Order) -> bool:
        """Whether a placed protective order is live: read back, and when the exchange
        does not show it yet, sent again under the same client order id, which the
        exchange refuses while the first is open."""
        if await self.confirm(order):
            return order.status.is_live
        if await self.place(order):
            self._attempts.warnings.append(
                f"{order.role.value} order {order.client_order_id} is live but not yet shown by the exchange"
            )
            return True
        return await self.confirm(order) and order.status.is_live

    async def find(self, client_order_id: str) -> ExchangeOrder | None:
        """The order carrying `client_order_id`, open or recently closed."""
        for listing in (self._client.open_orders, self._client.closed_orders):
            for found in (await listing(cl_ord_id=client_order_id)).values():
                if found.cl_ord_id == client_order_id:
                    return found
        return None

    async def look_up(self, order: Order) -> ExchangeOrder | None:
        """What the exchange shows of `order` now: by txid, else by client order id."""
        if order.external_id:
            return (await self._client.query_orders([order.external_id])).get(order.external_id)
        return await self.find(order.client_order_id)

    async def confirm(self, order: Order) -> bool:
        """Read the order back; an order the exchange acknowledged may be slow to show."""
        for attempt in range(self._settings.confirm_attempts):
            found = await self.look_up(order)
            if found is not None:
                self.apply(order, found)
                return True
            if attempt + 1 < self._settings.confirm_attempts:
                await self._clock.sleep(0.5 * 2**attempt)
        return False

    async def cancel(self, order: Order) -> None:
        """Cancel by txid, or by client order id when the txid never came back, and read
        back what the order became (it may have filled first)."""
        try:
            await self._client.cancel_order(order.external_id or order.client_order_id)
            cancelled = True
        except (UnknownOrderError, InvalidOrderError):
            cancelled = False  # it finished first, or never existed: read back below
        found = await self.look_up(order)
        if found is not None:
            self.apply(order, found)
            return
        if cancelled:
            order.status = OrderStatus.CANCELED
        elif not order.status.is_final:
            # not open on the exchange, and not shown: never placed, or finished unseen
            order.status = OrderStatus.REJECTED if order.external_id is None else OrderStatus.CANCELED
        order.updated_at = self._clock.time()
        self.recorder.order(order)

    def apply(self, order: Order, found: ExchangeOrder) -> None:
        apply_exchange_state(order, found, self._clock.time())
        self.recorder.order(order)


def apply_exchange_state(order: Order, found: ExchangeOrder, now: float) -> None:
    """Copy what the exchange says of an order onto tg's record of it."""
    order.external_id = order.external_id or found.txid
    order.status = OrderStatus(found.status)
    order.filled_volume = found.volume_executed
    order.avg_fill_price = found.avg_price if found.volume_executed > 0 else None
    order.fee = found.fee
    order.updated_at = now
