"""The safety invariants, judged from the exchange's own state first and tg's database
second. `tg simulate`, `tg run` and the tests share this one function.

The exchange's state is the truth as the exchange holds it (for the sandbox: its
control plane's unfaulted view), not what a faulty wire let tg see. tg's share of the
account is what its orders (those of its client order id namespace, core.domain.ownership,
and those its database records) filled; everything else is foreign.

- protected: what tg's orders bought of a pair is covered by tg's live stops, and every
  open position in the database has its own live stop for its full size;
- no_over_coverage: tg's live stops for a pair never exceed what tg holds of it;
- no_orphan_protection: no live protective order of tg's without an open position;
- no_duplicates: one entry per proposal, and no client order id accepted twice;
- recorded: every order of tg's on the exchange is in the database with the exchange's
  status;
- balances_agree: what tg's orders hold on the exchange equals its open positions;
- foreign_untouched: no foreign order was cancelled, and the foreign holdings moved only
  by the foreign orders' own fills (needs the state from before tg acted; an asset that
  a fill paid or received as the quote meanwhile is left out: base volumes cannot
  account for it);
- no_crash: no unhandled exception (recorded by the caller).

An asset another tg process is at work on (it holds the asset's lease, from an entry's
intent to its confirmed protection) is in flight: its entry may stand without its stop
for that while, by design. A check made meanwhile leaves the asset's pairs out (the
report names them) and judges them at a check made after.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from core.domain.enums import OrderRole, OrderStatus, PositionSide, PositionStatus
from core.domain.models import Order, Position
from core.domain.ownership import OrderNamespace
from core.exchange import ExchangeOrder, PairInfo
from core.exchange.account import ExchangeTruth
from core.execution.reconcile import Reconciler, ReconcileReport
from core.storage.store import Store

INVARIANTS = (
    "protected",
    "no_over_coverage",
    "no_orphan_protection",
    "no_duplicates",
    "recorded",
    "balances_agree",
    "foreign_untouched",
    "no_crash",
)

_STOP_TYPES = frozenset({"stop-loss", "stop-loss-limit", "trailing-stop", "trailing-stop-limit"})
_TARGET_TYPES = frozenset({"take-profit", "take-profit-limit"})
_LIVE = frozenset({"pending", "open"})


@dataclass
class InvariantReport:
    violations: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in INVARIANTS})
    unjudged: list[str] = field(default_factory=list)
    """The assets (as in BTC/USD's BTC) left out: an execution was in flight on them."""

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def add(self, invariant: str, message: str) -> None:
        self.violations[invariant].append(message)

    def counts(self) -> dict[str, int]:
        return {name: len(found) for name, found in self.violations.items()}


def _remaining(order: ExchangeOrder) -> Decimal:
    return order.volume - order.volume_executed


class _Shares:
    """Which of the exchange's orders are tg's, and what they hold."""

    def __init__(self, namespace: OrderNamespace, stored: list[Order], truth: ExchangeTruth) -> None:
        self.namespace = namespace
        self.stored = stored
        self.by_txid = {o.external_id: o for o in stored if o.external_id}
        self.by_client_id = {o.client_order_id: o for o in stored}
        self.truth = truth

    def at(self, truth: ExchangeTruth) -> _Shares:
        """The same ownership, judged on another state of the exchange."""
        return _Shares(self.namespace, self.stored, truth)

    def record_of(self, order: ExchangeOrder) -> Order | None:
        return self.by_txid.get(order.txid) or (self.by_client_id.get(order.cl_ord_id) if order.cl_ord_id else None)

    def owned(self, order: ExchangeOrder, depth: int = 0) -> bool:
        if self.namespace.owns(order.cl_ord_id) or self.record_of(order) is not None:
            return True
        parent = self.truth.orders.get(order.refid) if order.refid and depth < 4 else None
        return parent is not None and self.owned(parent, depth + 1)

    def net(self, altnames: set[str], owned: bool) -> Decimal:
        """Base bought less base sold on these pairs by tg's orders (owned) or the others'."""
        total = Decimal(0)
        for order in self.truth.orders.values():
            if order.pair in altnames and self.owned(order) is owned:
                total += order.volume_executed if order.side == "buy" else -order.volume_executed
        return total


@dataclass(frozen=True)
class _Records:
    """What the checks read of tg's database, read once a check."""

    namespace: OrderNamespace
    orders: list[Order]
    open_positions: list[Position]

    @classmethod
    def of(cls, store: Store) -> _Records:
        return cls(store.namespace(), store.orders(), store.positions(status=PositionStatus.OPEN))


def _assets_in_play(
    records: _Records, truth: ExchangeTruth, pairs: Mapping[str, PairInfo]
) -> dict[str, list[PairInfo]]:
    """The assets (Kraken ids) the invariants judge anything of tg's on, each with its
    pairs: those tg's orders on the exchange trade, and those of its open positions."""
    shares = _Shares(records.namespace, records.orders, truth)
    altnames = {o.pair for o in truth.orders.values() if o.pair in pairs and shares.owned(o)}
    symbols = {p.symbol for p in records.open_positions}
    touched: dict[str, list[PairInfo]] = {}
    for pair in pairs.values():
        if pair.altname in altnames or pair.symbol in symbols:
            touched.setdefault(pair.base, []).append(pair)
    return touched


def _plain(amount: Decimal) -> str:
    """An amount as people read it: 0, not 0E-8."""
    return format(amount.normalize(), "f")


def check_invariants(
    store: Store,
    truth: ExchangeTruth,
    pairs: Mapping[str, PairInfo],
    *,
    before: ExchangeTruth | None = None,
    in_flight: Collection[str] = (),
) -> InvariantReport:
    """`pairs` maps the altname the exchange reports (descr.pair) to the pair's details;
    `before` is the exchange's state before tg acted, for the foreign holdings;
    `in_flight` the assets (Kraken ids, PairInfo.base) executions were in flight on.
    What is judged of the foreign holdings and of duplicates is judged on every asset:
    an execution in flight explains neither a touched foreign order nor a doubled one."""
    return _judge(_Records.of(store), truth, pairs, before=before, in_flight=in_flight)


def _judge(
    records: _Records,
    truth: ExchangeTruth,
    pairs: Mapping[str, PairInfo],
    *,
    before: ExchangeTruth | None,
    in_flight: Collection[str],
) -> InvariantReport:
    report = InvariantReport()
    stored = records.orders
    shares = _Shares(records.namespace, stored, truth)
    flying = [p for p in pairs.values() if p.base in in_flight]
    report.unjudged = sorted({p.symbol.split("/")[0] for p in flying})
    left_out = {p.altname for p in flying}
    judged = [p for p in pairs.values() if p.altname not in left_out]
    every_open = records.open_positions
    open_ids = {p.id for p in every_open}
    open_positions = [p for p in every_open if p.symbol not in {f.symbol for f in flying}]
    mine = [o for o in truth.orders.values() if shares.owned(o) and o.pair not in left_out]

    for pair in judged:
        held = shares.net({pair.altname}, owned=True)
        stops = [o for o in mine if o.pair == pair.altname and o.ordertype in _STOP_TYPES and o.status in _LIVE]
        closing_side = "buy" if held < 0 else "sell"
        covered = sum((_remaining(o) for o in stops if o.side == closing_side), Decimal(0))
        wrong_way = sum((_remaining(o) for o in stops if o.side != closing_side), Decimal(0))
        if abs(held) > covered:
            report.add(
                "protected",
                f"{pair.symbol}: tg's orders hold {_plain(held)}, its live stops cover only {_plain(covered)}",
            )
        if covered > abs(held) or wrong_way > 0:
            report.add(
                "no_over_coverage",
                f"{pair.symbol}: tg's live stops cover {_plain(covered + wrong_way)}, it holds {_plain(held)}",
            )
        tracked = sum(
            (p.size if p.side is PositionSide.LONG else -p.size for p in open_positions if p.symbol == pair.symbol),
            Decimal(0),
        )
        if held != tracked:
            report.add(
                "balances_agree",
                f"{pair.symbol}: tg's orders hold {_plain(held)}, its open positions total {_plain(tracked)}",
            )

    for position in open_positions:
        cover = sum(
            (
                _remaining(truth.orders[o.external_id])
                for o in stored
                if o.position_id == position.id
                and o.role is OrderRole.STOP_LOSS
                and o.external_id in truth.orders
                and truth.orders[o.external_id].status in _LIVE
            ),
            Decimal(0),
        )
        if cover < position.size:
            report.add("protected", f"position {position.id}: size {position.size}, its live stop covers {cover}")

    for order in mine:
        if order.status not in _LIVE or order.ordertype not in _STOP_TYPES | _TARGET_TYPES:
            continue
        record = shares.record_of(order)
        if record is None or record.position_id not in open_ids:
            report.add(
                "no_orphan_protection",
                f"{order.txid} ({order.description}) is live but protects no open position",
            )

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

    for order in mine:
        record = shares.record_of(order)
        if record is None:
            report.add("recorded", f"{order.txid} ({order.description}) is tg's but not in the database")
        elif record.status is not OrderStatus(order.status):
            report.add(
                "recorded", f"{order.txid}: the database says {record.status.value}, the exchange {order.status}"
            )

    if before is not None:
        _foreign_untouched(report, shares, truth, before, pairs)
    return report


async def reconcile_and_check(
    supervisor: Reconciler,
    store: Store,
    read_truth: Callable[[], Awaitable[ExchangeTruth]],
    pairs: Mapping[str, PairInfo],
    *,
    before: ExchangeTruth | None = None,
) -> tuple[ReconcileReport, InvariantReport]:
    """A reconcile, then the invariants on the exchange's state read under its leases,
    for a check while other tg processes (or other tasks of this one) trade: every asset
    tg is in play on is either held by this check while it is read and judged, or left
    to the execution in flight on it and judged by a later check. An asset tg came into
    play on after the reconcile read is leased then, and the state read again."""
    async with supervisor.reconciled() as done:
        truth = await read_truth()
        records = _Records.of(store)
        if await done.lease(_assets_in_play(records, truth, pairs)):
            truth = await read_truth()
            records = _Records.of(store)  # read after the exchange, as a check always reads
        found = _judge(records, truth, pairs, before=before, in_flight=done.report.in_flight)
    return done.report, found


def _foreign_untouched(
    report: InvariantReport,
    shares: _Shares,
    truth: ExchangeTruth,
    before: ExchangeTruth,
    pairs: Mapping[str, PairInfo],
) -> None:
    for txid, was in before.orders.items():
        now = truth.orders.get(txid)
        if was.status not in _LIVE or shares.owned(was):
            continue
        if now is None:
            report.add("foreign_untouched", f"foreign order {txid} ({was.description}) is gone")
        elif now.status == "canceled" and now.reason in (None, "User requested"):
            report.add("foreign_untouched", f"foreign order {txid} ({was.description}) was cancelled")
        elif now.volume != was.volume or now.price != was.price:
            report.add("foreign_untouched", f"foreign order {txid} ({was.description}) was changed")
    previous = shares.at(before)
    by_asset: dict[str, set[str]] = {}
    for pair in pairs.values():
        by_asset.setdefault(pair.base, set()).add(pair.altname)
    # A fill moves its quote asset by its cost and fee, not by base volume: an asset some
    # fill paid or received as quote since `before` (USDT, say, a quote of BTC/USDT and
    # the base of USDT/USD) is not judged by base volumes alone.
    spent_as_quote = {
        pairs[order.pair].quote
        for txid, order in truth.orders.items()
        if order.pair in pairs and order.volume_executed != _executed(before, txid)
    }
    for asset, altnames in sorted(by_asset.items()):
        if asset in spent_as_quote:
            continue
        foreign_before = before.balances.get(asset, Decimal(0)) - previous.net(altnames, owned=True)
        foreign_now = truth.balances.get(asset, Decimal(0)) - shares.net(altnames, owned=True)
        moved = shares.net(altnames, owned=False) - previous.net(altnames, owned=False)
        if foreign_now != foreign_before + moved:
            report.add(
                "foreign_untouched",
                f"{asset}: foreign holding {foreign_before} -> {foreign_now}, its own orders moved it {moved}",
            )


def _executed(truth: ExchangeTruth, txid: str) -> Decimal:
    order = truth.orders.get(txid)
    return Decimal(0) if order is None else order.volume_executed
