"""Reconciliation: the exchange is the truth about orders and holdings, the database
the record, and tg acts only on what it owns.

One pass reads the exchange (open orders, the recent closed ones, any order tg still
follows that those leave out, then the balances) and, in this order:

1. brings every order tg follows to the exchange's status;
2. adopts tg's own orders the database lacks (known by their client order ids'
   namespace, see core.domain.ownership); everything else on the account is foreign:
   reported, never touched;
3. compares what the account holds with what tg's open positions and the foreign
   holdings it last measured explain: a surplus is put down to tg's entries of unknown
   fate (and protected), a shortfall to tg's protective orders the exchange does not
   show; what nothing of tg's explains is reported;
4. opens the position an entry that filled never got;
5. holds every open position to what its orders filled: closes it when its exits sold
   it all (cancelling every protective order it had, by client order id when the txid
   never came back), protects it with exactly one stop for its full size (an unseen stop
   is first sent again under its own client order id, which the exchange refuses while
   the first is live), cancels surplus protection, flattens it when the market is
   already through its stop;
6. cancels tg's live protective orders that protect no open position.

With `repair=False` nothing is sent and nothing is written: the report says what a
reconcile would do (for `tg orders` and `tg positions`, which only read).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from core.domain.clock import Clock
from core.domain.config import ExecutionSettings
from core.domain.enums import OrderRole, OrderStatus, OrderType, PositionSide, PositionStatus, Side
from core.domain.errors import DuplicateOrderError, ExchangeError, InputError, PermanentExchangeError, StorageError
from core.domain.models import Order, Position
from core.domain.ownership import OrderNamespace, role_of
from core.exchange import ExchangeOrder, KrakenClient, PairInfo
from core.execution.leases import LeaseKeeper, asset_lease
from core.execution.placement import (
    STOP_DISTANCE,
    TARGET_DISTANCE,
    Attempts,
    OrderPlacer,
    Recorder,
    apply_exchange_state,
)
from core.execution.positions import PositionTracker
from core.execution.spool import PendingWrites
from core.storage.store import HoldingBaseline, Store

VISIBILITY_WINDOW_S = 60.0
"""An order tg sent but cannot see is written off only after this long: an exchange
slow to show a new order must not get it written off, or doubled."""

_PROTECTIVE = frozenset({OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT})
_ROLE_BY_TYPE = {
    "stop-loss": OrderRole.STOP_LOSS,
    "stop-loss-limit": OrderRole.STOP_LOSS,
    "trailing-stop": OrderRole.STOP_LOSS,
    "take-profit": OrderRole.TAKE_PROFIT,
    "take-profit-limit": OrderRole.TAKE_PROFIT,
}


@dataclass
class ReconcileReport:
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    """What is on the account but not tg's: seen and left alone."""
    pending: list[str] = field(default_factory=list)
    """tg's orders the exchange holds but does not show yet."""
    unrecorded: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    orders: dict[str, Order] = field(default_factory=dict)
    """tg's orders that were in play, as the pass left them (by client order id)."""
    positions: dict[str, Position] = field(default_factory=dict)
    """The positions that were open, as the pass left them."""
    in_flight: set[str] = field(default_factory=set)
    """Assets another live tg process (or another task of this one) was at work on: the
    pass left them to it."""

    @property
    def changed(self) -> bool:
        return bool(self.changes)


class _Ledger:
    """tg's records under reconciliation: the orders whose fate may still change and the
    open positions, held in memory so one pass reads the database once."""

    def __init__(self, orders: Iterable[Order], positions: Iterable[Position]) -> None:
        self.orders: list[Order] = []
        self.by_txid: dict[str, Order] = {}
        self.by_client_id: dict[str, Order] = {}
        self.positions: dict[str, Position] = {p.id: p for p in positions}
        for order in orders:
            self.add(order)

    def add(self, order: Order) -> None:
        self.orders.append(order)
        self.by_client_id[order.client_order_id] = order
        if order.external_id:
            self.by_txid[order.external_id] = order

    def drop(self, symbols: set[str]) -> None:
        """Leave these pairs out: another process is at work on them."""
        kept = [o for o in self.orders if o.symbol not in symbols]
        self.orders, self.by_txid, self.by_client_id = [], {}, {}
        for order in kept:
            self.add(order)
        self.positions = {k: p for k, p in self.positions.items() if p.symbol not in symbols}

    def knows(self, found: ExchangeOrder) -> Order | None:
        return self.by_txid.get(found.txid) or (self.by_client_id.get(found.cl_ord_id) if found.cl_ord_id else None)

    def of(self, position: Position) -> list[Order]:
        return [o for o in self.orders if o.position_id == position.id]

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.status is PositionStatus.OPEN]


@dataclass
class _View:
    """The exchange as one pass saw it."""

    orders: dict[str, ExchangeOrder]
    balances: dict[str, Decimal]
    by_client_id: dict[str, ExchangeOrder] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_client_id = {o.cl_ord_id: o for o in self.orders.values() if o.cl_ord_id}

    def of(self, order: Order) -> ExchangeOrder | None:
        found = self.orders.get(order.external_id) if order.external_id else None
        return found or self.by_client_id.get(order.client_order_id)


class Reconciler:
    def __init__(
        self,
        client: KrakenClient,
        store: Store,
        clock: Clock,
        *,
        spool: PendingWrites | None = None,
        run_id: str | None = None,
        settings: ExecutionSettings | None = None,
        repair: bool = True,
        adopt: Sequence[str] = (),
        leases: LeaseKeeper | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._spool = spool
        self._run_id = run_id
        self._settings = settings or ExecutionSettings()
        self._keep_entry_remainder = self._settings.keep_unfilled_remainder
        self._repair_mode = repair
        self._adopt = list(adopt)
        self._leases = leases
        """None: this process is the database's only user (a simulation's, a replay's)."""
        self._tracker = PositionTracker(store, clock)
        self.acted = False
        """Whether a pass has sent anything to the exchange: from then on a command
        sees its repair through rather than stopping with a stop-loss on its way."""

    async def reconcile(self) -> ReconcileReport:
        async with self.reconciled() as done:
            return done.report

    @asynccontextmanager
    async def reconciled(self) -> AsyncIterator[Reconciled]:
        """A pass whose leases stay taken until the block ends: what the block reads then
        (the invariants' view of the account) is of no execution in flight, other than
        on the report's `in_flight` assets, which the pass left to whoever is at work."""
        one = _Pass(self)
        try:
            await one.run()
            yield Reconciled(one)
        finally:
            one.release()


class Reconciled:
    """A pass done, its leases still held (Reconciler.reconciled)."""

    def __init__(self, done: _Pass) -> None:
        self._pass = done
        self.report = done.report

    async def lease(self, assets: Mapping[str, list[PairInfo]]) -> bool:
        """Hold `assets` (Kraken ids, with their pairs) too until the block ends, those
        another live process is at work on going to the report's `in_flight`; True when
        one was newly taken: what was read of it before may have been in flight."""
        one = self._pass
        unheld = {a: pairs for a, pairs in assets.items() if a not in one.leased_assets | one.skipped_assets}
        taken = await one._lease_assets(unheld)
        self.report.in_flight = set(one.skipped_assets)
        return bool(taken)


class _Pass:
    """One reconciliation, from reading the exchange to the last repair."""

    def __init__(self, owner: Reconciler) -> None:
        self.o = owner
        self.report = ReconcileReport(dry_run=not owner._repair_mode)
        self.attempts = Attempts()
        self.recorder = Recorder(owner._store, owner._spool, self.attempts)
        self.placer = OrderPlacer(owner._client, self.recorder, owner._clock, owner._settings, self.attempts)
        self.now = owner._clock.time()
        self._pairs: dict[str, PairInfo] = {}
        self._acted = False
        self.skipped_assets: set[str] = set()  # another process's, for this pass
        self.leased_assets: set[str] = set()  # this process's, for this pass
        self.unsettled_assets: set[str] = set()  # held otherwise than explained: not to be measured
        self.quote_assets: set[str] = set()  # what tg's pairs are priced in: not checked
        self.spooled: set[str] = set()  # ids of orders the spool holds: known, not to adopt
        self.baselines: dict[str, HoldingBaseline] | None = None  # the foreign holdings, read once a pass
        self.taken: list[str] = []  # the leases this pass took, until release()

    @property
    def repairing(self) -> bool:
        return self.o._repair_mode

    @property
    def acted(self) -> bool:
        """Whether the pass sent anything to the exchange: the balances read are stale."""
        return self._acted

    @acted.setter
    def acted(self, value: bool) -> None:
        self._acted = value
        self.o.acted = self.o.acted or value

    async def run(self) -> ReconcileReport:
        o, report = self.o, self.report
        store = o._store
        if self.repairing:
            if o._spool is not None:
                try:
                    written = o._spool.flush(store)
                except StorageError as exc:  # the exchange side comes first: reconcile on without it
                    report.errors.append(str(exc))
                    written = 0
                if written:
                    report.changes.append(f"wrote {written} spooled record(s) the database had refused")
            for install_id in o._adopt:
                if store.adopt_namespace(install_id, at=self.now):
                    report.changes.append(f"adopted namespace {install_id}: its orders are tg's from now on")
        namespace = store.namespace()
        self.namespace = OrderNamespace.of(namespace.install_id, {*namespace.adopted, *o._adopt})
        # leases before reading: what was read under another process's lease is stale
        ledger = self._ledger()
        taken = await self._lease_assets(await self._traded_assets(ledger))
        if taken:  # read again under the leases just taken; with none taken nothing changed since
            ledger = self._ledger()
        view = await self._observe(ledger)
        traded = await self._traded_assets(ledger, view)
        late = {
            asset: pairs
            for asset, pairs in traded.items()
            if asset not in self.leased_assets and asset not in self.skipped_assets
        }
        # tg's orders the database lacks, of other assets
        if late and o._leases is not None and await self._lease_assets(late):
            ledger = self._ledger()
            view = await self._observe(ledger)
            traded = await self._traded_assets(ledger, view)
        ledger.drop({p.symbol for a, pairs in traded.items() if a in self.skipped_assets for p in pairs})
        await self._reconcile(ledger, view)
        report.in_flight = set(self.skipped_assets)
        return report

    def release(self) -> None:
        """Let go of the leases the pass took (those held before it stay held)."""
        if self.o._leases is not None:
            for name in self.taken:
                self.o._leases.release(name)
        self.taken.clear()

    def _ledger(self) -> _Ledger:
        """tg's records in play: the database's, and on top of them what the spool still
        holds (the database refused it): a pass that ignored those would adopt again what
        tg already knows, and open it a second position."""
        store = self.o._store
        orders = {o.client_order_id: o for o in store.orders_in_play()}
        positions = {p.id: p for p in store.positions(status=PositionStatus.OPEN)}
        spooled: list[tuple[list[Order], Position | None]] = []
        if self.o._spool is not None:
            try:
                spooled = self.o._spool.pending()
            except StorageError:
                spooled = []
        for records, position in spooled:
            for order in records:
                self.spooled.update(filter(None, (order.client_order_id, order.external_id)))
                known = orders.get(order.client_order_id) or store.get_order(order.client_order_id)
                if known is None or order.updated_at >= known.updated_at:
                    if position is not None:
                        order.position_id = position.id
                    elif known is not None:
                        order.position_id = order.position_id or known.position_id
                    orders[order.client_order_id] = order
            if position is not None:
                if position.status is PositionStatus.OPEN:
                    positions.setdefault(position.id, position)
                else:
                    positions.pop(position.id, None)
        in_play = [
            o
            for o in orders.values()
            if not o.status.is_final or o.position_id in positions or (o.position_id is None and o.filled_volume > 0)
        ]
        return _Ledger(sorted(in_play, key=lambda o: o.created_at), positions.values())

    async def _reconcile(self, ledger: _Ledger, view: _View) -> None:
        report = self.report
        self._sync(ledger, view)
        await self._adopt_owned(ledger, view)
        self._note_foreign(ledger, view)
        await self._check_holdings(ledger, view)
        self._positions_for_filled_entries(ledger)
        for position in ledger.open_positions():
            try:
                await self._repair(position, ledger, view)
            except ExchangeError as exc:
                report.errors.append(f"position {position.id}: {exc}")
        await self._cancel_orphans(ledger, view)
        if self.repairing and not self.acted:
            self._measure_baselines(ledger, view)
        report.unrecorded = self.recorder.unrecorded
        report.orders = {o.client_order_id: o for o in ledger.orders}
        report.positions = dict(ledger.positions)
        report.errors.extend(w for w in self.attempts.warnings if w.startswith("NOT RECORDED"))

    async def _lease_assets(self, assets: dict[str, list[PairInfo]]) -> list[str]:
        """Take the lease of each asset; what another live process holds is in flight
        there and is left out of this pass altogether. Returns the leases taken."""
        keeper = self.o._leases
        if keeper is None:
            return []
        taken: list[str] = []
        for asset, pairs in assets.items():
            name = asset_lease(self.o._client.account, asset)
            if keeper.holds(name):
                self.leased_assets.add(asset)
                continue
            holder = keeper.holder(name)
            if holder is None and self.repairing and keeper.try_acquire(name):
                taken.append(name)
                self.taken.append(name)
                self.leased_assets.add(asset)
                continue
            if holder is None and not self.repairing:
                self.leased_assets.add(asset)  # a read-only pass takes no lease; nobody is at work on it
                continue
            self.skipped_assets.add(asset)
            who = f"tg process {holder.pid} on {holder.host}" if holder else "another tg process"
            self.report.pending.append(f"{pairs[0].symbol.split('/')[0]}: {who} is working on it; left to it")
        return taken

    # --- reading -----------------------------------------------------------------

    async def _observe(self, ledger: _Ledger) -> _View:
        """Orders first, balances last: a fill between the two reads then shows as a
        shortfall (reported, and gone next time) rather than a surplus taken for foreign."""
        client = self.o._client
        listed = {**await client.closed_orders(), **await client.open_orders()}
        # a settled order is final: asking about it again could change nothing, and would
        # cost a request for each one the closed-orders page has let fall off
        missing = [
            o.external_id
            for o in ledger.orders
            if o.external_id and not o.status.is_final and o.external_id not in listed
        ]
        if missing:
            listed.update(await client.query_orders(missing))
        return _View(listed, await client.balance())

    async def _pairs_by_altname(self) -> dict[str, PairInfo]:
        if not self._pairs:
            self._pairs = {p.altname: p for p in (await self.o._client.asset_pairs()).values()}
        return self._pairs

    def owns(self, found: ExchangeOrder, view: _View, ledger: _Ledger) -> bool:
        if ledger.knows(found) is not None or self.namespace.owns(found.cl_ord_id):
            return True
        parent = view.orders.get(found.refid) if found.refid else None
        return parent is not None and parent is not found and self.owns(parent, view, ledger)

    # --- 1. sync -----------------------------------------------------------------

    def _sync(self, ledger: _Ledger, view: _View) -> None:
        for order in ledger.orders:
            found = view.of(order)
            if found is None:
                self._unseen(order)
                continue
            before = (order.external_id, order.status, order.filled_volume)
            apply_exchange_state(order, found, self.now)
            if order.external_id != before[0]:
                ledger.by_txid[found.txid] = order
                self.report.changes.append(f"{order.role.value} {order.client_order_id}: found as {found.txid}")
            elif (order.status, order.filled_volume) != before[1:]:
                self.report.changes.append(
                    f"{order.role.value} {order.external_id}: {before[1].value} -> {order.status.value}"
                    + (f", filled {order.filled_volume}" if order.filled_volume != before[2] else "")
                )
            if (order.external_id, order.status, order.filled_volume) != before:
                self._record(order)

    def _unseen(self, order: Order) -> None:
        """An order tg follows that the exchange does not show: written off only once the
        exchange has had time to show it. A protective order is not written off here: the
        repair sends it again under its own client order id, which tells."""
        if self.now - order.updated_at <= VISIBILITY_WINDOW_S or order.status.is_final:
            return
        if order.role in _PROTECTIVE and self.namespace.owns(order.client_order_id):
            return
        if order.status is OrderStatus.INTENT and order.external_id is None:
            order.status = OrderStatus.REJECTED
            self.report.changes.append(f"{order.role.value} {order.client_order_id}: never reached the exchange")
        elif order.status.is_live:
            order.status = OrderStatus.UNKNOWN
            self.report.changes.append(
                f"{order.role.value} {order.external_id or order.client_order_id}: vanished from the exchange"
            )
        else:
            return
        order.updated_at = self.now
        self._record(order)

    # --- 2. ownership ------------------------------------------------------------

    async def _adopt_owned(self, ledger: _Ledger, view: _View) -> None:
        candidates = [
            f
            for f in view.orders.values()
            if ledger.knows(f) is None
            and self.owns(f, view, ledger)
            and f.txid not in self.spooled
            and f.cl_ord_id not in self.spooled
        ]
        if not candidates:
            return
        stored = self.o._store.orders_named(
            [f.txid for f in candidates], [f.cl_ord_id for f in candidates if f.cl_ord_id]
        )
        by_txid = {s.external_id: s for s in stored if s.external_id}
        by_client_id = {s.client_order_id: s for s in stored}
        pairs = await self._pairs_by_altname()
        for found in sorted(candidates, key=lambda f: f.opentm):
            if found.pair in pairs and pairs[found.pair].base in self.skipped_assets:
                continue  # another process is at work on it
            record = by_txid.get(found.txid) or (by_client_id.get(found.cl_ord_id) if found.cl_ord_id else None)
            if record is not None:  # settled in the database; show it again if the exchange disagrees
                if (OrderStatus(found.status), found.volume_executed) != (record.status, record.filled_volume):
                    apply_exchange_state(record, found, self.now)
                    ledger.add(record)
                    self._record(record)
                    self.report.changes.append(
                        f"{record.role.value} {found.txid}: the exchange shows it {found.status}"
                    )
                continue
            pair = pairs.get(found.pair)
            parent = ledger.knows(view.orders[found.refid]) if found.refid in view.orders else None
            role = (role_of(found.cl_ord_id) if found.cl_ord_id else None) or _ROLE_BY_TYPE.get(found.ordertype)
            if role is None:
                role = OrderRole.ENTRY if found.side == Side.BUY.value else OrderRole.CLOSE
            order = Order(
                client_order_id=found.cl_ord_id or f"{found.txid}-of-{found.refid}",
                symbol=pair.symbol if pair else found.pair,
                side=Side(found.side),
                order_type=OrderType(found.ordertype),
                volume=found.volume,
                role=role,
                price=found.price,
                external_id=found.txid,
                run_id=parent.run_id if parent else self.o._run_id,
                position_id=parent.position_id if parent else None,
                created_at=found.opentm,
            )
            apply_exchange_state(order, found, self.now)
            ledger.add(order)
            self._record(order)
            self.report.changes.append(
                f"adopted tg's {order.role.value} {found.txid} the database lacked ({found.description})"
            )

    def _note_foreign(self, ledger: _Ledger, view: _View) -> None:
        for found in view.orders.values():
            if found.status in ("open", "pending") and not self.owns(found, view, ledger):
                self.report.foreign.append(f"foreign: {found.txid} {found.description} ({found.status}), left alone")

    # --- 3. holdings -------------------------------------------------------------

    async def _check_holdings(self, ledger: _Ledger, view: _View) -> None:
        """Hold what the account has of each asset tg trades against what tg and the
        foreign holdings explain; surpluses are put down to tg's entries of unknown fate
        first. An asset that does not agree is unsettled: its baseline is not measured."""
        assets = _assets_of(await self._pairs_by_altname(), ledger, view.balances)
        traded = await self._traded_assets(ledger)
        assets.update(traded)
        # what tg pays or is paid in moves with its P&L, which its positions do not hold: an
        # asset that is the quote of a pair tg trades or traded cannot be told apart (USDT of a
        # closed BTC/USDT is still its proceeds, though USDT/USD is a market too), so it is not checked
        by_symbol = {p.symbol: p for p in (await self._pairs_by_altname()).values()}
        ever = [by_symbol[s] for s in self.o._store.traded_symbols() if s in by_symbol]
        self.quote_assets = {p.quote for pairs in traded.values() for p in pairs} | {p.quote for p in ever}
        for asset, pairs in assets.items():
            if asset in self.skipped_assets or asset in self.quote_assets:
                continue
            held = view.balances.get(asset, Decimal(0))
            expected_tg = self._tg_holding(ledger, pairs)
            foreign = self._foreign_now(asset, view, ledger)
            tolerance = max(p.lot_size for p in pairs)
            gap = held - foreign - expected_tg
            if abs(gap) <= tolerance:
                continue
            name = pairs[0].symbol.split("/")[0]
            if gap > 0:
                gap = await self._put_down_surplus(gap, ledger, pairs, tolerance)
                if gap <= tolerance:
                    self.unsettled_assets.add(asset)  # tg's records changed: measure next time
                elif not self._surplus_settled(asset, gap):
                    self.unsettled_assets.add(asset)
                    self.report.foreign.append(
                        f"foreign: {gap} {name} held beyond tg's positions and the foreign holdings it knew; "
                        "taken as foreign, left alone"
                    )
            else:
                gap = self._put_down_shortfall(-gap, ledger, view, pairs, tolerance)
                if gap > tolerance:
                    self.unsettled_assets.add(asset)
                    self.report.errors.append(
                        f"{name}: tg's open positions hold {expected_tg} but the account has only "
                        f"{held - foreign} beyond foreign holdings ({gap} short): something sold tg's holding; "
                        "check the account by hand"
                    )

    def _surplus_settled(self, asset: str, gap: Decimal) -> bool:
        """Whether a surplus nothing of tg's explains has stood long enough to be the
        foreign holding's (a deposit, say) rather than a foreign order the exchange is
        slow to list, whose fill would then be counted twice."""
        baseline = self._baseline(asset)
        if baseline.surplus == gap and baseline.surplus_since is not None:
            return self.now - baseline.surplus_since >= VISIBILITY_WINDOW_S
        if self.repairing:
            self._keep_baseline(replace(baseline, surplus=gap, surplus_since=self.now))
        return False

    def _baseline(self, asset: str) -> HoldingBaseline:
        """The foreign holding of `asset` as last measured (never measured: nothing)."""
        return self._stored_baselines().get(asset) or HoldingBaseline(asset, Decimal(0), 0.0)

    def _stored_baselines(self) -> dict[str, HoldingBaseline]:
        """The baselines the database holds, read once a pass, for every asset."""
        if self.baselines is None:
            self.baselines = self.o._store.holding_baselines()
        return self.baselines

    def _keep_baseline(self, baseline: HoldingBaseline) -> None:
        """Store the baseline; refused, the last one stands (the next pass measures again)."""
        try:
            self.o._store.set_holding_baseline(baseline)
        except StorageError:
            return
        if self.baselines is not None:
            self.baselines[baseline.asset] = baseline

    async def _traded_assets(self, ledger: _Ledger, view: _View | None = None) -> dict[str, list[PairInfo]]:
        """The base assets of the pairs tg follows (and, with `view`, of tg's orders the
        exchange shows), with their pairs."""
        symbols = {p.symbol for p in ledger.open_positions()} | {o.symbol for o in ledger.orders}
        if view is not None:
            pairs = await self._pairs_by_altname()
            symbols |= {
                pairs[f.pair].symbol for f in view.orders.values() if f.pair in pairs and self.owns(f, view, ledger)
            }
        assets: dict[str, list[PairInfo]] = {}
        for symbol in sorted(symbols):
            try:
                pair = await self.o._client.resolve_pair(symbol)
            except InputError:
                continue  # a pair the exchange no longer lists: nothing of it can be held
            assets.setdefault(pair.base, []).append(pair)
        return assets

    def _tg_holding(self, ledger: _Ledger, pairs: list[PairInfo]) -> Decimal:
        """What tg's open positions hold, as their orders filled (not as last recorded)."""
        symbols = {p.symbol for p in pairs}
        held = Decimal(0)
        for position in ledger.open_positions():
            if position.symbol in symbols:
                sign = 1 if position.side is PositionSide.LONG else -1
                held += sign * _remaining(position, ledger.of(position))
        for entry in ledger.orders:  # filled entries whose position is still to be opened
            if entry.role is OrderRole.ENTRY and entry.position_id is None and entry.symbol in symbols:
                held += entry.filled_volume if entry.side is Side.BUY else -entry.filled_volume
        return held

    def _foreign_now(self, asset: str, view: _View, ledger: _Ledger) -> Decimal:
        """The foreign holding as last measured, moved on by the foreign orders' fills
        since. Never measured: nothing, before any foreign order filled."""
        baseline = self._baseline(asset)
        foreign = baseline.foreign
        for found in view.orders.values():
            if not self._trades(found, asset) or self.owns(found, view, ledger):
                continue
            # an order the baseline did not list is newer than it: listings are newest first,
            # so an older one can never appear again (and exchange time is not tg's time)
            delta = found.volume_executed - baseline.foreign_filled.get(found.txid, Decimal(0))
            foreign += delta if found.side == Side.BUY.value else -delta
        return foreign

    def _trades(self, found: ExchangeOrder, asset: str) -> bool:
        pair = self._pairs.get(found.pair)
        return pair is not None and pair.base == asset

    async def _put_down_surplus(
        self, gap: Decimal, ledger: _Ledger, pairs: list[PairInfo], tolerance: Decimal
    ) -> Decimal:
        symbols = {p.symbol for p in pairs}
        for entry in ledger.orders:
            if gap <= tolerance:
                break
            unseen = entry.status in (OrderStatus.UNKNOWN, OrderStatus.INTENT, OrderStatus.PENDING)
            if entry.role is not OrderRole.ENTRY or entry.side is not Side.BUY or not unseen:
                continue
            if entry.symbol not in symbols or entry.filled_volume >= entry.volume:
                continue
            taken = min(entry.volume - entry.filled_volume, gap)
            entry.filled_volume += taken
            entry.avg_fill_price = entry.avg_fill_price or await self._entry_price(entry)
            if entry.filled_volume >= entry.volume:
                entry.status = OrderStatus.CLOSED  # all of it traded: the exchange is done with it
            entry.updated_at = self.now
            gap -= taken
            self._record(entry)
            self.report.changes.append(
                f"entry {entry.external_id or entry.client_order_id}: the exchange does not show it, but the account "
                f"holds {taken} more than anything else explains: taken as filled by it, to be protected"
            )
        return gap

    def _put_down_shortfall(
        self, gap: Decimal, ledger: _Ledger, view: _View, pairs: list[PairInfo], tolerance: Decimal
    ) -> Decimal:
        symbols = {p.symbol for p in pairs}
        for order in ledger.orders:
            if gap <= tolerance:
                break
            position = ledger.positions.get(order.position_id or "")
            unseen = order.status in (OrderStatus.UNKNOWN, OrderStatus.PENDING, OrderStatus.OPEN)
            unseen = unseen and view.of(order) is None
            if position is None or order.role is OrderRole.ENTRY or not unseen or order.symbol not in symbols:
                continue
            taken = min(order.volume - order.filled_volume, gap)
            if taken <= 0:
                continue
            order.filled_volume += taken
            order.avg_fill_price = order.avg_fill_price or order.price
            if order.filled_volume >= order.volume:
                order.status = OrderStatus.CLOSED
            order.updated_at = self.now
            gap -= taken
            self._record(order)
            self.report.changes.append(
                f"{order.role.value} {order.external_id or order.client_order_id}: the exchange does not show it, "
                f"but {taken} of tg's holding is gone: taken as filled by it"
            )
        return gap

    async def _entry_price(self, entry: Order) -> Decimal:
        """What an entry the exchange does not show filled at, as near as tg can tell."""
        if entry.price is not None:
            return entry.price
        return (await self.o._client.ticker(entry.symbol)).last

    def _measure_baselines(self, ledger: _Ledger, view: _View) -> None:
        """Everything agreed: what the account holds beyond tg's positions is foreign, as
        of now, with what each live foreign order had filled."""
        unseen = {o.symbol for o in ledger.orders if view.of(o) is None and not o.status.is_final}
        keeper = self.o._leases
        for asset, pairs in _assets_of(self._pairs, ledger, view.balances).items():
            if asset in self.skipped_assets or any(p.symbol in unseen for p in pairs):
                continue  # one of tg's orders may have traded unseen: nothing to measure against
            if asset in self.unsettled_assets or asset in self.quote_assets:
                continue
            if (
                keeper is not None
                and asset not in self.leased_assets
                and not keeper.holds(asset_lease(self.o._client.account, asset))
            ):
                continue  # another process may be trading it: the balance may hold its fill
            held = view.balances.get(asset, Decimal(0))
            foreign_seen = {
                f.txid: f.volume_executed
                for f in view.orders.values()
                if self._trades(f, asset) and not self.owns(f, view, ledger)
            }
            measured = HoldingBaseline(asset, held - self._tg_holding(ledger, pairs), self.now, foreign_seen)
            stored = self._stored_baselines().get(asset)
            if stored is None or not measured.unchanged_in(stored):  # a pass that found it as it was writes nothing
                self._keep_baseline(measured)

    # --- 4. positions for filled entries -------------------------------------------

    def _positions_for_filled_entries(self, ledger: _Ledger) -> None:
        """An entry that filled but never got its position (the process died in between):
        the position opens with the protection the same run (or tg, unlinked) already placed."""
        for entry in list(ledger.orders):
            if entry.role is not OrderRole.ENTRY or entry.position_id or entry.filled_volume <= 0:
                continue
            protection = [
                o
                for o in ledger.orders
                if o.role is not OrderRole.ENTRY
                and o.position_id is None
                and o.symbol == entry.symbol
                and o.side is not entry.side
                and (o.run_id == entry.run_id or o.run_id is None)
                and (not o.status.is_final or o.filled_volume > 0)
            ]
            position = self.o._tracker.open_position(entry, protection)
            levels = self._approved_levels(entry)
            direction = 1 if entry.side is Side.BUY else -1
            if levels is None:
                price = position.entry_price
                levels = (price * (1 - direction * STOP_DISTANCE), price * (1 + direction * TARGET_DISTANCE), price)
            position.stop_loss = position.stop_loss or levels[0]
            position.take_profit = position.take_profit or levels[1]
            ledger.positions[position.id] = position
            self._record_position(position, [entry, *protection])
            self.report.changes.append(
                f"opened position {position.id} for entry {entry.external_id or entry.client_order_id} that had none"
            )

    def _approved_levels(self, entry: Order) -> tuple[Decimal, Decimal, Decimal] | None:
        """The stop, target and entry price the entry was approved with: stored on its
        intent row (or, for a database of an older tg, in the run's risk output)."""
        if entry.stop_level is not None and entry.target_level is not None:
            return entry.stop_level, entry.target_level, entry.price or entry.avg_fill_price or entry.stop_level
        if entry.run_id is None:
            return None
        for output in self.o._store.agent_outputs(entry.run_id):
            if output["agent"] == "risk":
                proposal = output["payload"].get("proposal") or {}
                if proposal.get("stop_loss") and proposal.get("take_profit"):
                    return (
                        Decimal(proposal["stop_loss"]),
                        Decimal(proposal["take_profit"]),
                        Decimal(proposal.get("entry_price") or proposal["stop_loss"]),
                    )
        return None

    # --- 5. repairs --------------------------------------------------------------

    async def _repair(self, position: Position, ledger: _Ledger, view: _View) -> None:
        """Hold the position to what its orders actually filled: bought by the entry,
        less what stops, targets and closes sold, and protect exactly the rest."""
        orders = ledger.of(position)
        entry = _latest(orders, OrderRole.ENTRY)
        if entry is not None and entry.status.is_live and entry.filled_volume > 0 and not self.o._keep_entry_remainder:
            await self._cancel(entry)  # an unfilled rest filling later would grow the position unprotected
        remaining = _remaining(position, orders)
        exits = [o for o in orders if o.role is not OrderRole.ENTRY and o.filled_volume > 0]
        if exits and remaining <= 0:
            position.size = entry.filled_volume if entry is not None else position.size
            closed = [view.orders[o.external_id].closetm for o in exits if o.external_id in view.orders]
            try:
                await self._retire_protection(orders)
            finally:  # the exchange closed it: recorded so even when a cancel fails (its order is an orphan next pass)
                self._close(position, exits, orders, at=max((t for t in closed if t is not None), default=None))
            return
        if remaining != position.size:
            self.report.changes.append(f"position {position.id}: open size {position.size} -> {remaining}")
            position.size = remaining
            self._record_position(position, [])
        closing = sum(
            (o.volume - o.filled_volume for o in orders if o.role is OrderRole.CLOSE and o.status.is_live), Decimal(0)
        )
        if closing >= position.size:
            return  # a market close is working off the rest
        for order in orders:
            unseen = view.of(order) is None and not order.status.is_final
            if order.role in _PROTECTIVE and unseen and self.namespace.owns(order.client_order_id):
                await self._resolve_unseen(order)
        stops = [o for o in orders if o.role is OrderRole.STOP_LOSS and o.status.is_live]
        targets = [o for o in orders if o.role is OrderRole.TAKE_PROFIT and o.status.is_live]
        kept_stop = await self._keep_one(stops, position)
        if kept_stop is None:
            await self._protect(position, stops, orders)
        kept_target = await self._keep_one(targets, position)
        # a target never sent (the process died between the stop and it) is sent now; one
        # the exchange refused, or someone cancelled, stays as it ended
        never_sent = position.take_profit is not None and not any(o.role is OrderRole.TAKE_PROFIT for o in orders)
        if (targets or never_sent) and kept_target is None:
            await self._replace(position, targets, OrderRole.TAKE_PROFIT)

    async def _resolve_unseen(self, order: Order) -> None:
        """A protective order tg sent that the exchange does not show: send it again under
        its own client order id. The exchange refuses that while the first is open, which
        proves it live; if it takes it, the first never existed, and now one does."""
        if not self.repairing:
            self.report.pending.append(f"{order.role.value} {order.client_order_id}: not shown by the exchange")
            return
        self.acted = True
        try:
            already_live = await self.placer.place(order)
        except PermanentExchangeError as exc:
            order.status = OrderStatus.REJECTED
            self._record(order)
            self.report.changes.append(f"{order.role.value} {order.client_order_id}: sent again, refused ({exc})")
            return
        if already_live:
            self.report.pending.append(
                f"{order.role.value} {order.client_order_id}: live on the exchange, not shown yet"
            )
        else:
            found = await self.placer.look_up(order)
            if found is not None:
                self.placer.apply(order, found)
            self.report.changes.append(
                f"{order.role.value} {order.client_order_id}: had not reached the exchange; placed it now"
            )

    async def _keep_one(self, live: list[Order], position: Position) -> Order | None:
        """The one live order that covers the whole position; the others are cancelled.
        None (cancelling nothing) when no single one covers it."""
        covering = [o for o in live if o.volume - o.filled_volume >= position.size]
        if not covering:
            return None
        kept = min(covering, key=lambda o: (o.volume - o.filled_volume, o.created_at))
        for surplus in live:
            if surplus is not kept:
                await self._cancel(surplus)
                self.report.changes.append(
                    f"position {position.id}: cancelled surplus {surplus.role.value} "
                    f"{surplus.external_id or surplus.client_order_id}"
                )
        return kept

    async def _protect(self, position: Position, stops: list[Order], orders: list[Order]) -> None:
        if position.stop_loss is None:
            await self._flatten(position, orders, "it has no stop-loss level to protect it with")
            return
        price = (await self.o._client.ticker(position.symbol)).last
        through = price <= position.stop_loss if position.side is PositionSide.LONG else price >= position.stop_loss
        if through:
            await self._flatten(
                position, orders, f"the market {price} is already through its stop {position.stop_loss}"
            )
            return
        try:
            await self._replace(position, stops, OrderRole.STOP_LOSS)
        except PermanentExchangeError as exc:
            await self._flatten(position, orders, f"a new stop-loss was refused ({exc})")

    async def _replace(self, position: Position, old: list[Order], role: OrderRole) -> None:
        """Place protection covering the position's full size, then retire the old orders."""
        price = position.stop_loss if role is OrderRole.STOP_LOSS else position.take_profit
        assert price is not None
        order_type = OrderType.STOP_LOSS if role is OrderRole.STOP_LOSS else OrderType.TAKE_PROFIT
        order = self._order_for(position, role, order_type, price)
        await self._send(order)
        for stale in old:
            await self._cancel(stale)
        self.report.changes.append(
            f"position {position.id}: placed {role.value} {order.external_id or order.client_order_id} "
            f"for {order.volume} @ {price}" + "".join(f", replacing {s.external_id or s.client_order_id}" for s in old)
        )

    async def _retire_protection(self, orders: list[Order]) -> None:
        """A position that closed keeps no protective order: each is cancelled, by client
        order id when its txid never came back."""
        for order in orders:
            if order.role is not OrderRole.ENTRY and not order.status.is_final and order.filled_volume < order.volume:
                await self._cancel(order)

    def _close(self, position: Position, exits: list[Order], orders: list[Order], *, at: float | None = None) -> None:
        """Close the position at its exits' average price, at the time its last exit filled
        on the exchange (`at`) when the exchange said."""
        sold = sum((o.filled_volume for o in exits), Decimal("0"))
        exit_price = (
            sum(((o.avg_fill_price or o.price or position.entry_price) * o.filled_volume for o in exits), Decimal("0"))
            / sold
        )
        self.o._tracker.close(position, exit_price, orders, at=at)
        self._record_position(position, [])
        how = " and ".join(sorted({o.role.value for o in exits}))
        cancelled = [o for o in orders if o.status is OrderStatus.CANCELED and o.role in _PROTECTIVE]
        self.report.changes.append(
            f"position {position.id} closed by its {how} at {exit_price:.2f}: P&L {position.realized_pnl:.2f} net of fees"
            + "".join(
                f"; cancelled {o.role.value} {o.external_id or o.client_order_id}"
                for o in cancelled
                if o.updated_at >= self.now
            )
        )

    async def _flatten(self, position: Position, orders: list[Order], why: str) -> None:
        await self._retire_protection(orders)
        close = self._order_for(position, OrderRole.CLOSE, OrderType.MARKET, None)
        await self._send(close)
        if close.filled_volume < position.size:
            self.report.changes.append(
                f"position {position.id} closing at market ({why}): {close.filled_volume} of {position.size} "
                "filled so far, the rest is working"
            )
            return
        self.report.changes.append(f"position {position.id} flattened at market ({why})")
        self._close(position, [close], [*orders, close])

    # --- 6. orphans --------------------------------------------------------------

    async def _cancel_orphans(self, ledger: _Ledger, view: _View) -> None:
        """tg's live protective orders that protect no open position are cancelled."""
        for order in list(ledger.orders):
            if order.role not in _PROTECTIVE or order.status.is_final:
                continue
            position = ledger.positions.get(order.position_id or "")
            if position is not None and position.status is PositionStatus.OPEN:
                continue
            if view.of(order) is None and order.status is OrderStatus.INTENT:
                continue  # never shown, never acknowledged: written off once its window passes
            try:
                await self._cancel(order)
            except ExchangeError as exc:  # the next pass tries again; the others go on
                self.report.errors.append(
                    f"orphan {order.role.value} {order.external_id or order.client_order_id}: {exc}"
                )
                continue
            self.report.changes.append(
                f"cancelled orphan {order.role.value} {order.external_id or order.client_order_id}: "
                "it protects no open position"
            )

    # --- effects -----------------------------------------------------------------

    def _order_for(self, position: Position, role: OrderRole, order_type: OrderType, price: Decimal | None) -> Order:
        return Order(
            client_order_id=self.namespace.new_client_order_id(role),
            symbol=position.symbol,
            side=Side.SELL if position.side is PositionSide.LONG else Side.BUY,
            order_type=order_type,
            volume=position.size,
            role=role,
            price=price,
            position_id=position.id,
            run_id=self.o._run_id or position.run_id,
            created_at=self.now,
            updated_at=self.now,
        )

    async def _send(self, order: Order) -> None:
        if not self.repairing:
            order.status = OrderStatus.PENDING
            return
        self.acted = True
        try:
            await self.placer.place(order)
        except PermanentExchangeError:
            order.status = OrderStatus.REJECTED
            self._record(order)
            raise
        await self.placer.confirm(order)

    async def _cancel(self, order: Order) -> None:
        if not self.repairing:
            order.status = OrderStatus.CANCELED
            return
        self.acted = True
        try:
            await self.placer.cancel(order)
        except DuplicateOrderError:
            pass

    def _record(self, order: Order) -> None:
        if self.repairing:
            self.recorder.order(order)

    def _record_position(self, position: Position, orders: list[Order]) -> None:
        if self.repairing:
            self.recorder.position(position, orders)


def _remaining(position: Position, orders: list[Order]) -> Decimal:
    entry = _latest(orders, OrderRole.ENTRY)
    bought = entry.filled_volume if entry is not None else position.size
    return bought - sum((o.filled_volume for o in orders if o.role is not OrderRole.ENTRY), Decimal("0"))


def _assets_of(pairs: dict[str, PairInfo], ledger: _Ledger, balances: dict[str, Decimal]) -> dict[str, list[PairInfo]]:
    """The base assets the account holds or tg trades, with their pairs."""
    symbols = {p.symbol for p in ledger.open_positions()} | {o.symbol for o in ledger.orders}
    assets: dict[str, list[PairInfo]] = {}
    for pair in pairs.values():
        if pair.symbol in symbols or pair.base in balances:
            assets.setdefault(pair.base, []).append(pair)
    return assets


def _latest(orders: list[Order], role: OrderRole) -> Order | None:
    chosen = [o for o in orders if o.role is role]
    return max(chosen, key=lambda o: o.created_at) if chosen else None
