"""The exchange's state and models, shared by the parts it is made of (accounts,
market data, matching, the order book, simulator.exchange): each part builds on
the one before it, so none reaches into one that comes later."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from core.domain.clock import Clock
from simulator.fill_models import (
    FeeModel,
    FillModel,
    FullFills,
    LatencyModel,
    NoLatency,
    TieredFees,
)
from simulator.history import NO_HISTORY, History
from simulator.models import (
    ExchangeState,
    LedgerEntry,
    Order,
    Trade,
)
from simulator.order_index import OrderIndex
from simulator.pairs import PAIRS, USD_QUOTES, Pair
from simulator.price_path import (
    DAY,
    GappedPricePath,
    PricePath,
    synthetic_paths,
)
from simulator.price_shapes import shaped

DEFAULT_ACCOUNT = "default"
DEFAULT_BALANCES = {"ZUSD": Decimal("100000"), "USDT": Decimal("100000")}
OHLC_INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})
OHLC_ENTRIES = 720
CLOSED_ORDERS_PAGE = 50
MAX_ADVANCE = 366 * DAY
"""The longest single step of the sandbox's clock: its market is made for a few years."""
MAX_DEAD_MAN_TIMEOUT = 86_400
FEE_WINDOW = 30 * DAY
WORST_NOISE = Decimal(1)


class ExchangeBase:
    def __init__(
        self,
        state: ExchangeState,
        clock: Clock,
        paths: Mapping[str, PricePath] | None = None,
        *,
        fills: FillModel | None = None,
        latency: LatencyModel | None = None,
        fees: FeeModel | None = None,
        history: History = NO_HISTORY,
    ) -> None:
        self._state = state
        self._history = history
        recent = history.trades_after(state.processed_until - FEE_WINDOW)  # fills from now on read no further back
        self._index = OrderIndex(state.orders.values(), [*recent, *state.trades.values()])
        self._clock = clock
        self._plain_paths = synthetic_paths(state.seed, PAIRS.values(), state.origin)
        self._plain_paths.update(paths or {})
        self._paths = self._with_gaps()
        self._fills: FillModel = fills or FullFills()
        self._latency: LatencyModel = latency or NoLatency()
        self._fees: FeeModel = fees or TieredFees()

    @property
    def state(self) -> ExchangeState:
        return self._state

    @property
    def clock(self) -> Clock:
        return self._clock

    def now(self) -> float:
        return self._clock.time()

    def price(self, pair: Pair) -> Decimal:
        return self._paths[pair.key].price_at(self.now())

    def sync(self) -> None:
        """Match the live orders against the market up to the clock's now: the matching
        engine's (simulator.matching_engine), which every part calls first."""
        raise NotImplementedError

    def _with_gaps(self) -> dict[str, PricePath]:
        """The plain paths with the gaps, then the price shapes, laid over them."""
        gaps = [(gap.at, gap.pct) for gap in self._state.gaps]
        paths = dict(self._plain_paths)
        if gaps:
            paths = {key: GappedPricePath(path, PAIRS[key], gaps) for key, path in paths.items()}
        if self._state.shapes:
            paths = {key: shaped(path, PAIRS[key], self._state.shapes) for key, path in paths.items()}
        return paths

    def _orders_of(self, account: str) -> list[Order]:
        """Every order of the account, in the order they were placed."""
        held = self._index.of(account)
        kept = self._history.orders_of(account)
        if not kept:
            return held
        mine = {order.txid: order for order in held}
        merged = [mine.pop(order.txid, order) for order in kept]
        return merged + list(mine.values())

    def _order(self, txid: str) -> Order | None:
        """The order `txid`, live or settled, of any account."""
        order = self._state.orders.get(txid)
        return order if order is not None else self._history.order(txid)

    def _trade(self, trade_id: str) -> Trade | None:
        trade = self._state.trades.get(trade_id)
        return trade if trade is not None else self._history.trade(trade_id)

    def _ledger_entry(self, ledger_id: str) -> LedgerEntry | None:
        entry = self._state.ledger.get(ledger_id)
        return entry if entry is not None else self._history.ledger_entry(ledger_id)

    def _live_of(self, account: str) -> list[Order]:
        return self._index.live_of(account)

    def _insert(self, order: Order) -> None:
        """A new order joins the state and the index."""
        self._state.orders[order.txid] = order
        self._index.add(order)

    def _record_trade(self, trade: Trade) -> None:
        self._state.trades[trade.id] = trade
        self._index.add_trade(trade)

    def _usd_price(self, asset: str, at: float) -> Decimal:
        if asset in USD_QUOTES:
            return Decimal(1)
        dollar_pair = min(
            (p for p in PAIRS.values() if p.base == asset and p.quote in USD_QUOTES), key=lambda p: p.quote != "ZUSD"
        )
        return self._paths[dollar_pair.key].price_at(at)

    def _thirty_day_volume(self, account: str, at: float) -> Decimal:
        """The account's US-dollar volume of the 30 days before `at` on the markets
        that count toward fee tiers (not stablecoin or FX markets)."""
        return self._index.usd_volume_after(account, at - FEE_WINDOW)
