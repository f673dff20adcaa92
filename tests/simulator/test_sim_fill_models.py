"""The pluggable models (fills, latency, fees), the partial-fill fault's forced first fill (`ForcedFirstFill`),
`add_price_gap`), determinism under a seed, and saving the new state."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from simulator.exceptions import InvalidArguments
from simulator.exchange import DEFAULT_ACCOUNT, Exchange
from simulator.fill_models import FlatFees, ForcedFirstFill, PartialFills, UniformLatency
from simulator.models import OrderSpec, OrderStatus, OrderType, Side, TrailingOffset
from simulator.pairs import PAIRS
from simulator.price_path import synthetic_paths
from tests.simulator.state_files import read_back, save

HOUR = 3600
BUY = OrderSpec("XXBTZUSD", Side.BUY, OrderType.MARKET, Decimal("0.4"))
TRAIL = OrderSpec(
    "XXBTZUSD",
    Side.SELL,
    OrderType.TRAILING_STOP,
    Decimal("0.1"),
    trailing=TrailingOffset(Decimal("0.5"), percent=True),
)


def placed(exchange: Exchange, spec: OrderSpec, fill_ratio: Decimal | None = None) -> str:
    """Place `spec`; with `fill_ratio`, through the model the partial-fill fault installs."""
    forced = ForcedFirstFill(fill_ratio, exchange.fill_model) if fill_ratio is not None else None
    with exchange.using(fills=forced):
        order = exchange.add_order(DEFAULT_ACCOUNT, spec)
    assert order is not None
    return order.txid


def test_fill_ratio_fills_part_now_and_the_rest_later(exchange: Exchange, clock: VirtualClock) -> None:
    txid = placed(exchange, BUY, fill_ratio=Decimal("0.25"))
    order = exchange.query_orders(DEFAULT_ACCOUNT, [txid])[0]
    assert (order.status, order.vol_exec) == (OrderStatus.OPEN, Decimal("0.1"))
    assert exchange.balance(DEFAULT_ACCOUNT)["XXBT"] == Decimal("0.1")
    clock.advance(60)
    order = exchange.query_orders(DEFAULT_ACCOUNT, [txid])[0]
    assert (order.status, order.vol_exec, len(order.trades)) == (OrderStatus.CLOSED, Decimal("0.4"), 2)


def test_fill_ratio_on_a_marketable_limit_leaves_the_rest_resting(exchange: Exchange) -> None:
    spec = OrderSpec("XXBTZUSD", Side.BUY, OrderType.LIMIT, Decimal("0.4"), price=Decimal("60100"))
    txid = placed(exchange, spec, fill_ratio=Decimal("0.5"))
    order = exchange.query_orders(DEFAULT_ACCOUNT, [txid])[0]
    assert (order.status, order.vol_exec, order.resting_limit) == (OrderStatus.OPEN, Decimal("0.2"), Decimal("60100"))
    with pytest.raises(ValueError):
        ForcedFirstFill(Decimal("1.5"), exchange.fill_model)


def test_partial_fill_model_spreads_an_order_over_several_fills(clock: VirtualClock) -> None:
    exchange = Exchange.create(clock, seed=42, fills=PartialFills(probability=Decimal(1)))
    txid = placed(exchange, BUY)
    fills = []
    for _ in range(30):
        order = exchange.query_orders(DEFAULT_ACCOUNT, [txid])[0]
        fills.append(order.vol_exec)
        if order.status is OrderStatus.CLOSED:
            break
        clock.advance(60)
    assert Decimal(0) < fills[0] < Decimal("0.4")
    assert fills == sorted(fills) and fills[-1] == Decimal("0.4")
    assert len(order.trades) >= 3


def run(seed: int, *, fills: PartialFills | None = None, latency: UniformLatency | None = None) -> tuple[object, ...]:
    clock = VirtualClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock, seed=seed, fills=fills, latency=latency, fixed_ids=True)
    placed(exchange, BUY)
    placed(exchange, OrderSpec("XXBTZUSD", Side.SELL, OrderType.LIMIT, Decimal("0.2"), price=Decimal("60300")))
    placed(exchange, TRAIL)
    exchange.advance(12 * HOUR)
    return exchange.state.orders, exchange.state.trades, exchange.balance(DEFAULT_ACCOUNT), clock.time()


def test_same_seed_same_outcome_with_every_model() -> None:
    fills, latency = PartialFills(), UniformLatency(0.1, 2.0)
    first = run(5, fills=fills, latency=latency)
    assert repr(first) == repr(run(5, fills=fills, latency=latency))
    assert repr(first) != repr(run(6, fills=fills, latency=latency))


def test_latency_moves_the_sandbox_clock(clock: VirtualClock) -> None:
    exchange = Exchange.create(clock, seed=1, latency=UniformLatency(0.5, 0.5))
    txid = placed(exchange, BUY)
    order = exchange.query_orders(DEFAULT_ACCOUNT, [txid])[0]
    assert clock.time() == SANDBOX_EPOCH + 0.5 == order.opentm


def test_flat_fee_model(clock: VirtualClock) -> None:
    exchange = Exchange.create(clock, fees=FlatFees(maker=Decimal(0), taker=Decimal("0.01")))
    order = exchange.query_orders(DEFAULT_ACCOUNT, [placed(exchange, BUY)])[0]
    assert order.fee == (order.cost * Decimal("0.01")).quantize(Decimal("0.0001"))


def test_a_gap_fills_a_stop_at_the_gapped_price(exchange: Exchange, clock: VirtualClock) -> None:
    placed(exchange, BUY)
    stop = OrderSpec("XXBTZUSD", Side.SELL, OrderType.STOP_LOSS, Decimal("0.4"), price=Decimal("59000"))
    txid = placed(exchange, stop)
    plain = synthetic_paths(42, [PAIRS["XXBTZUSD"]], SANDBOX_EPOCH)["XXBTZUSD"]
    at = SANDBOX_EPOCH + 1800 + 17
    exchange.add_price_gap(at, Decimal(-8))
    clock.advance(HOUR)
    order = exchange.query_orders(DEFAULT_ACCOUNT, [txid])[0]
    gapped = (plain.price_at(at) * Decimal("0.92")).quantize(Decimal("0.1"))
    assert (order.status, order.closetm) == (OrderStatus.CLOSED, at)
    assert gapped * Decimal("0.999") < order.average_price <= gapped
    assert exchange.price(PAIRS["XXBTZUSD"]) < Decimal(56000)
    candles, _ = exchange.ohlc(PAIRS["XXBTZUSD"], 60, None)
    assert candles[-2].open > Decimal(59000) > candles[-2].close


def test_a_gap_cannot_rewrite_the_past(exchange: Exchange, clock: VirtualClock) -> None:
    clock.advance(60)
    with pytest.raises(InvalidArguments):
        exchange.add_price_gap(SANDBOX_EPOCH, Decimal(-5))
    with pytest.raises(InvalidArguments):
        exchange.add_price_gap(SANDBOX_EPOCH + 120, Decimal(-100))


def test_new_state_survives_the_store(tmp_path: Path, clock: VirtualClock) -> None:
    exchange = Exchange.create(clock, seed=3)
    exchange.add_price_gap(SANDBOX_EPOCH + HOUR, Decimal("2.5"))
    exchange.cancel_all_after(DEFAULT_ACCOUNT, 600)
    placed(exchange, BUY, fill_ratio=Decimal("0.5"))
    placed(exchange, TRAIL)
    save(tmp_path / "sandbox.db", exchange.state)
    loaded = read_back(tmp_path / "sandbox.db")
    assert loaded == exchange.state
