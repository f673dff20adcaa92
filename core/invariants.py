"""The safety invariants, checked against the exchange's own state and the database.

`tg simulate` and the tests share this one function. The exchange's state is the
truth as the exchange holds it (for the sandbox: its control plane's unfaulted
view), not what a faulty wire let tg see.

1. protected: every unit of base currency the account holds is covered by a live
   stop-loss, and every open position in the database has its own live stop for
   its full size;
2. no_duplicates: one entry per proposal, and no client order id used twice;
3. recorded: every order the exchange accepted is in the database with the
   exchange's status;
4. balances_agree: the base currency held equals the open positions' size;
5. no_crash: no unhandled exception (recorded by the caller).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from core.exchange import ExchangeOrder, PairInfo
from core.models import OrderRole, OrderStatus, PositionSide, PositionStatus
from core.storage import Store

INVARIANTS = ("protected", "no_duplicates", "recorded", "balances_agree", "no_crash")

_STOP_TYPES = {"stop-loss", "stop-loss-limit", "trailing-stop"}
_LIVE = {"pending", "open"}


@dataclass(frozen=True)
class ExchangeTruth:
    orders: dict[str, ExchangeOrder]  # txid -> order, every order the exchange accepted
    balances: dict[str, Decimal]


@dataclass
class InvariantReport:
    violations: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in INVARIANTS})

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def add(self, invariant: str, message: str) -> None:
        self.violations[invariant].append(message)


def _remaining(order: ExchangeOrder) -> Decimal:
    return order.volume - order.volume_executed


def check_invariants(store: Store, truth: ExchangeTruth, pairs: Mapping[str, PairInfo]) -> InvariantReport:
    """`pairs` maps the altname the exchange reports (descr.pair) to the pair's details."""
    report = InvariantReport()
    stored = store.orders()
    by_txid = {o.external_id: o for o in stored if o.external_id}
    by_client_id = {o.client_order_id: o for o in stored}
    open_positions = store.positions(status=PositionStatus.OPEN)

    for pair in pairs.values():
        held = truth.balances.get(pair.base, Decimal("0"))
        covered = sum(
            (_remaining(o) for o in truth.orders.values()
             if o.pair == pair.altname and o.side == "sell" and o.ordertype in _STOP_TYPES and o.status in _LIVE),
            Decimal("0"),
        )
        if held > covered:
            report.add("protected", f"{pair.symbol}: {held} held on the exchange, live stops cover only {covered}")
        tracked = sum(
            (p.size for p in open_positions if p.symbol == pair.symbol and p.side is PositionSide.LONG), Decimal("0")
        )
        if held != tracked:
            report.add("balances_agree", f"{pair.symbol}: exchange holds {held}, open positions total {tracked}")

    for position in open_positions:
        stops = [
            truth.orders[o.external_id]
            for o in store.orders(position_id=position.id)
            if o.role is OrderRole.STOP_LOSS and o.external_id in truth.orders
        ]
        cover = sum((_remaining(s) for s in stops if s.status in _LIVE), Decimal("0"))
        if cover < position.size:
            report.add("protected", f"position {position.id}: size {position.size}, its live stop covers {cover}")

    entries_per_run = Counter(
        o.run_id for o in stored if o.role is OrderRole.ENTRY and o.external_id and o.run_id is not None
    )
    for run_id, count in entries_per_run.items():
        if count > 1:
            report.add("no_duplicates", f"run {run_id} sent {count} entries for one proposal")
    client_ids = Counter(o.cl_ord_id for o in truth.orders.values() if o.cl_ord_id)
    for client_id, count in client_ids.items():
        if count > 1:
            report.add("no_duplicates", f"client order id {client_id} was accepted {count} times")

    for txid, order in truth.orders.items():
        record = by_txid.get(txid) or (by_client_id.get(order.cl_ord_id) if order.cl_ord_id else None)
        if record is None:
            report.add("recorded", f"{txid} ({order.description}) is on the exchange but not in the database")
        elif record.status is not OrderStatus(order.status):
            report.add(
                "recorded", f"{txid}: the database says {record.status.value}, the exchange {order.status}"
            )
    return report
