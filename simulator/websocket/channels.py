"""What each channel publishes. A feed is one subscription: `snapshot` is what the
client gets when it subscribes, `update` what changed since the last call, read off
the exchange's state (the same calls REST answers from, so the streams agree with
Depth, Ticker, OHLC, Trades, QueryOrders and Balance). Feeds hold the last view they
sent and publish the difference, so an order placed over REST, a fill found by the
matching engine or a dead man's switch firing all reach `executions` alike.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from simulator.exchange import Exchange
from simulator.market_data import Book, BookLevel
from simulator.models import Order, OrderFlag, OrderSpec, OrderStatus, OrderType, TimeInForce, Trade, kraken_id
from simulator.pairs import ASSETS, PAIRS, Pair
from simulator.price_path import MINUTE, Bar
from simulator.websocket.protocol import Json, asset_name, rfc3339, symbol

SNAPSHOT_TRADES = 50
"""Trades in a trade or executions snapshot, as Kraken sends."""
CHECKSUM_LEVELS = 10


@dataclass
class Message:
    """One channel message before it goes out: its channel, kind and rows."""

    channel: str
    type: str
    data: list[Json]


class Feed(Protocol):
    channel: str

    def snapshot(self) -> list[Message]: ...

    def update(self) -> list[Message]: ...


def _ordered(levels: dict[Decimal, Decimal], *, descending: bool) -> list[tuple[Decimal, Decimal]]:
    return sorted(levels.items(), reverse=descending)


def checksum(pair: Pair, asks: list[tuple[Decimal, Decimal]], bids: list[tuple[Decimal, Decimal]]) -> int:
    """Kraken's book checksum: CRC32 of the top ten asks (low to high) then the top ten
    bids (high to low), each price and qty written with the pair's decimals, the point
    removed and leading zeros stripped."""

    def text(value: Decimal, places: int) -> str:
        return f"{value:.{places}f}".replace(".", "").lstrip("0")

    parts = [
        text(price, pair.pair_decimals) + text(qty, pair.lot_decimals)
        for side in (asks[:CHECKSUM_LEVELS], bids[:CHECKSUM_LEVELS])
        for price, qty in side
    ]
    return zlib.crc32("".join(parts).encode())


def _levels(pair: Pair, rows: list[BookLevel]) -> dict[Decimal, Decimal]:
    """Price to qty, each with the pair's places (Kraken writes 0.00100000, not 0.001)."""
    tick = Decimal(1).scaleb(-pair.pair_decimals)
    return {row.price.quantize(tick): row.volume.quantize(pair.lot_size) for row in rows}


@dataclass
class BookFeed:
    exchange: Exchange
    pair: Pair
    depth: int
    channel: str = "book"
    _asks: dict[Decimal, Decimal] = field(default_factory=dict)
    _bids: dict[Decimal, Decimal] = field(default_factory=dict)

    def _book(self) -> Book:
        return self.exchange.depth(self.pair, self.depth)

    def _row(self, asks: list[tuple[Decimal, Decimal]], bids: list[tuple[Decimal, Decimal]]) -> Json:
        return {
            "symbol": symbol(self.pair),
            "bids": [{"price": p, "qty": q} for p, q in bids],
            "asks": [{"price": p, "qty": q} for p, q in asks],
            "checksum": checksum(
                self.pair, _ordered(self._asks, descending=False), _ordered(self._bids, descending=True)
            ),
        }

    def snapshot(self) -> list[Message]:
        book = self._book()
        self._asks, self._bids = _levels(self.pair, book.asks), _levels(self.pair, book.bids)
        row = self._row(_ordered(self._asks, descending=False), _ordered(self._bids, descending=True))
        return [Message(self.channel, "snapshot", [row])]

    def update(self) -> list[Message]:
        book = self._book()
        asks, bids = _levels(self.pair, book.asks), _levels(self.pair, book.bids)
        zero = 0 * self.pair.lot_size
        changed_asks, changed_bids = _changes(self._asks, asks, zero), _changes(self._bids, bids, zero)
        if not changed_asks and not changed_bids:
            return []
        self._asks, self._bids = asks, bids
        row = self._row(changed_asks, changed_bids)
        row["timestamp"] = rfc3339(self.exchange.now())
        return [Message(self.channel, "update", [row])]


def _changes(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal], zero: Decimal) -> list[tuple[Decimal, Decimal]]:
    """The level updates that turn `old` into `new`: gone levels at qty `zero` first (so
    that a client truncating to its depth never drops a level it keeps), then new ones."""
    gone = [(price, zero) for price in old if price not in new]
    changed = [(price, qty) for price, qty in new.items() if old.get(price) != qty]
    return gone + changed


@dataclass
class TickerFeed:
    exchange: Exchange
    pair: Pair
    channel: str = "ticker"
    _last: Json | None = None

    def _row(self) -> Json:
        ticker = self.exchange.ticker(self.pair)
        top = self.exchange.depth(self.pair, 1)
        day = ticker.last_24h
        change = ticker.last - day.open
        return {
            "symbol": symbol(self.pair),
            "bid": ticker.bid,
            "bid_qty": top.bids[0].volume if top.bids else Decimal(0),
            "ask": ticker.ask,
            "ask_qty": top.asks[0].volume if top.asks else Decimal(0),
            "last": ticker.last,
            "volume": day.volume,
            "vwap": day.vwap,
            "low": day.low,
            "high": day.high,
            "change": change,
            "change_pct": (change / day.open * 100).quantize(Decimal("0.01")) if day.open else Decimal(0),
        }

    def snapshot(self) -> list[Message]:
        self._last = self._row()
        return [Message(self.channel, "snapshot", [self._last])]

    def update(self) -> list[Message]:
        row = self._row()
        if row == self._last:
            return []
        self._last = row
        return [Message(self.channel, "update", [row])]


@dataclass
class OhlcFeed:
    exchange: Exchange
    pair: Pair
    interval: int
    channel: str = "ohlc"
    _sent: dict[int, Bar] = field(default_factory=dict)

    def _row(self, bar: Bar) -> Json:
        return {
            "symbol": symbol(self.pair),
            "open": bar.open,
            "high": bar.high,
            "low": bar.low,
            "close": bar.close,
            "vwap": bar.vwap,
            "trades": bar.count,
            "volume": bar.volume,
            "interval_begin": rfc3339(bar.time),
            "interval": self.interval,
            "timestamp": rfc3339(bar.time + self.interval * MINUTE),
        }

    def snapshot(self) -> list[Message]:
        bars, _ = self.exchange.ohlc(self.pair, self.interval, None)
        self._sent = {bars[-1].time: bars[-1]} if bars else {}
        return [Message(self.channel, "snapshot", [self._row(bar) for bar in bars])]

    def update(self) -> list[Message]:
        latest = max(self._sent, default=None)
        since = None if latest is None else latest - 1
        bars, _ = self.exchange.ohlc(self.pair, self.interval, since)
        fresh = [bar for bar in bars if self._sent.get(bar.time) != bar]
        if not fresh:
            return []
        self._sent = {fresh[-1].time: fresh[-1]}
        return [Message(self.channel, "update", [self._row(bar) for bar in fresh])]


@dataclass
class TradeFeed:
    exchange: Exchange
    pair: Pair
    channel: str = "trade"
    _since: float = 0.0

    def _rows(self, since: float | None, count: int) -> list[Json]:
        tape = self.exchange.public_trades(self.pair, since, count)
        if tape:
            self._since = tape[-1].time
        return [
            {
                "symbol": symbol(self.pair),
                "side": str(trade.side),
                "price": trade.price,
                "qty": trade.volume,
                "ord_type": "market" if trade.market else "limit",
                "trade_id": trade.trade_id,
                "timestamp": rfc3339(trade.time),
            }
            for trade in tape
        ]

    def snapshot(self) -> list[Message]:
        self._since = self.exchange.now()
        return [Message(self.channel, "snapshot", self._rows(None, SNAPSHOT_TRADES))]

    def update(self) -> list[Message]:
        rows = self._rows(self._since, 1_000)
        return [Message(self.channel, "update", rows)] if rows else []


@dataclass
class InstrumentFeed:
    """The listing: it changes only with a new release of the sandbox, so no updates."""

    exchange: Exchange
    channel: str = "instrument"

    def snapshot(self) -> list[Message]:
        assets = [
            {
                "id": asset_name(asset.id),
                "status": "enabled",
                "precision": asset.decimals,
                "precision_display": asset.display_decimals,
                "borrowable": False,
                "collateral_value": Decimal(1),
                "margin_rate": Decimal(0),
            }
            for asset in ASSETS.values()
        ]
        pairs = [
            {
                "symbol": symbol(pair),
                "base": asset_name(pair.base),
                "quote": asset_name(pair.quote),
                "status": "online",
                "qty_precision": pair.lot_decimals,
                "qty_increment": pair.lot_size,
                "price_precision": pair.pair_decimals,
                "price_increment": pair.tick_size,
                "cost_precision": pair.cost_decimals,
                "cost_min": pair.costmin,
                "qty_min": pair.ordermin,
                "marginable": False,
                "has_index": True,
            }
            for pair in PAIRS.values()
        ]
        return [Message(self.channel, "snapshot", [{"assets": assets, "pairs": pairs}])]

    def update(self) -> list[Message]:
        return []


# --- private ------------------------------------------------------------------

_STATUS = {
    OrderStatus.PENDING: "pending_new",
    OrderStatus.CLOSED: "filled",
    OrderStatus.CANCELED: "canceled",
    OrderStatus.EXPIRED: "expired",
}


def order_status(order: Order) -> str:
    if order.status is OrderStatus.OPEN:
        return "partially_filled" if order.vol_exec > 0 else "new"
    return _STATUS[order.status]


def _order_type(spec: OrderSpec) -> str:
    return str(spec.ordertype)


def order_row(exchange: Exchange, order: Order, exec_type: str) -> Json:
    """An order as executions reports it in full (snapshot, pending_new, amended)."""
    spec = order.spec
    pair = PAIRS[spec.pair]
    row: Json = {
        "order_id": order.txid,
        "symbol": symbol(pair),
        "side": str(spec.side),
        "order_type": _order_type(spec),
        "order_qty": spec.volume,
        "cum_qty": order.vol_exec,
        "cum_cost": order.cost,
        "avg_price": order.average_price,
        "fee_usd_equiv": order.fee,
        "time_in_force": str(spec.timeinforce),
        "fee_ccy_pref": "fcib" if OrderFlag.FCIB in spec.oflags else "fciq",
        "post_only": OrderFlag.POST in spec.oflags,
        "order_userref": spec.userref or 0,
        "exec_type": exec_type,
        "order_status": "pending_new" if exec_type == "pending_new" else order_status(order),
        "timestamp": rfc3339(order.opentm),
        "exec_id": _exec_id(exchange, f"{order.txid}:{exec_type}:{len(order.trades)}:{order.status}"),
    }
    if spec.cl_ord_id is not None:
        row["cl_ord_id"] = spec.cl_ord_id
    if order.resting_limit is not None or spec.ordertype is OrderType.LIMIT:
        row["limit_price"] = order.resting_limit or spec.price
    if spec.ordertype.limit_after_trigger:
        row["limit_price"] = spec.price2
    if spec.ordertype.is_trigger:
        row["triggers"] = {
            "reference": "last",
            "price": order.stop_price if order.stop_price is not None else Decimal(0),
            "price_type": "static",
            "status": "triggered" if order.triggered else "untriggered",
        }
    if spec.timeinforce is TimeInForce.GTD and spec.expiretm is not None:
        row["expire_time"] = rfc3339(spec.expiretm)
    if order.amended:
        row["amended"] = True
    return row


def _exec_id(exchange: Exchange, key: str) -> str:
    """A Kraken-shaped id derived from what it names: drawing one from the exchange's
    serial would make later txids depend on who was watching."""
    return kraken_id("L", exchange.state.seed, f"{exchange.state.id_space}:{key}")


def _trade_row(exchange: Exchange, order: Order, trade: Trade) -> Json:
    pair = PAIRS[trade.pair]
    fee_asset = pair.base if OrderFlag.FCIB in order.spec.oflags else pair.quote
    return {
        "order_id": order.txid,
        "exec_id": trade.id,
        "exec_type": "trade",
        "trade_id": trade.serial,
        "symbol": symbol(pair),
        "side": str(trade.side),
        "order_type": str(trade.ordertype),
        "last_qty": trade.vol,
        "last_price": trade.price,
        "liquidity_ind": "m" if trade.maker else "t",
        "cost": trade.cost,
        "order_userref": order.spec.userref or 0,
        "order_status": "partially_filled" if order.vol_exec > 0 else "new",
        "fee_usd_equiv": trade.fee,
        "fees": [{"asset": asset_name(fee_asset), "qty": trade.fee}],
        "timestamp": rfc3339(trade.time),
    }


@dataclass(frozen=True)
class _Seen:
    status: OrderStatus
    trades: int
    spec: OrderSpec
    triggered: bool


def _seen(order: Order) -> _Seen:
    return _Seen(order.status, len(order.trades), order.spec, order.triggered)


@dataclass
class ExecutionsFeed:
    """Kraken's spot sequence, derived from what changed in each order: pending_new then
    new when an order arrives, trade for each fill (order_status partially_filled even
    on the last one), then filled, canceled or expired; amended when its owner changed
    it in place, restated when the engine did (a stop triggered)."""

    exchange: Exchange
    account: str
    snap_orders: bool = True
    snap_trades: bool = False
    order_status: bool = True
    channel: str = "executions"
    _seen: dict[str, _Seen] = field(default_factory=dict)

    def _orders(self) -> list[Order]:
        return self.exchange.query_orders(self.account, None)

    def snapshot(self) -> list[Message]:
        orders = self._orders()
        self._seen = {order.txid: _seen(order) for order in orders}
        rows: list[Json] = []
        if self.snap_orders:
            rows += [order_row(self.exchange, o, "new") for o in orders if o.is_live]
        if self.snap_trades:
            trades, _ = self.exchange.trades_history(self.account)
            by_id = {o.txid: o for o in orders}
            rows += [_trade_row(self.exchange, by_id[t.ordertxid], t) for t in reversed(trades[:SNAPSHOT_TRADES])]
        return [Message(self.channel, "snapshot", rows)]

    def update(self) -> list[Message]:
        rows: list[Json] = []
        for order in self._orders():
            before = self._seen.get(order.txid)
            now = _seen(order)
            if before == now:
                continue
            self._seen[order.txid] = now
            rows += self._events(order, before)
        return [Message(self.channel, "update", [row]) for row in rows]

    def _events(self, order: Order, before: _Seen | None) -> list[Json]:
        exchange = self.exchange
        events: list[Json] = []
        brief = {"order_id": order.txid, "timestamp": rfc3339(exchange.now())}
        if before is None:
            if self.order_status:
                events.append(order_row(exchange, order, "pending_new"))
            if order.status is not OrderStatus.PENDING:
                events.append({**brief, "exec_type": "new", "order_status": "new"})
        elif before.status is OrderStatus.PENDING and order.status is not OrderStatus.PENDING:
            events.append({**brief, "exec_type": "new", "order_status": "new"})
        if before is not None and before.spec != order.spec:
            events.append(order_row(exchange, order, "amended"))
        if before is not None and self.order_status and order.triggered and not before.triggered:
            events.append(order_row(exchange, order, "restated"))
        for trade_id in order.trades[before.trades if before is not None else 0 :]:
            trade = exchange.state.trades[trade_id]
            events.append(_trade_row(exchange, order, trade))
        if order.status in (OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.EXPIRED):
            closing = _STATUS[order.status]
            event = {
                **brief,
                "exec_type": closing,
                "order_status": closing,
                "cum_qty": order.vol_exec,
                "cum_cost": order.cost,
                "avg_price": order.average_price,
                "fee_usd_equiv": order.fee,
            }
            if order.reason is not None:
                event["reason"] = order.reason
                event["cancel_reason"] = order.reason
            events.append(event)
        return events


@dataclass
class BalancesFeed:
    exchange: Exchange
    account: str
    channel: str = "balances"
    _last: dict[str, Decimal] = field(default_factory=dict)
    _trades: int = 0

    def snapshot(self) -> list[Message]:
        self._last = self.exchange.balance(self.account)
        self._trades = len(self.exchange.state.trades)
        rows = [
            {
                "asset": asset_name(asset),
                "asset_class": "currency",
                "balance": amount,
                "wallets": [{"type": "spot", "id": "main", "balance": amount}],
            }
            for asset, amount in self._last.items()
        ]
        return [Message(self.channel, "snapshot", rows)]

    def update(self) -> list[Message]:
        balances = self.exchange.balance(self.account)
        if balances == self._last:
            return []
        trades = list(self.exchange.state.trades.values())[self._trades :]
        self._trades += len(trades)
        mine = [t for t in trades if t.account == self.account]
        ref_id = mine[-1].id if mine else ""
        now = self.exchange.now()
        rows = []
        for asset in sorted(balances.keys() | self._last.keys()):
            new, old = balances.get(asset, Decimal(0)), self._last.get(asset, Decimal(0))
            if new == old:
                continue
            rows.append(
                {
                    "asset": asset_name(asset),
                    "asset_class": "currency",
                    "amount": new - old,
                    "balance": new,
                    "fee": Decimal(0),
                    "ledger_id": _exec_id(self.exchange, f"ledger:{self.account}:{asset}:{now}:{new}"),
                    "ref_id": ref_id,
                    "timestamp": rfc3339(now),
                    "type": "trade" if mine else "adjustment",
                    "subtype": "",
                    "category": "trade" if mine else "adjustment",
                    "wallet_type": "spot",
                    "wallet_id": "main",
                }
            )
        self._last = balances
        return [Message(self.channel, "update", rows)]
