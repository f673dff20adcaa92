"""The exchange's index of live orders and of trade volumes (simulator.order_index)
changes what a request costs, never what it answers: after every step of a seeded
walk of placements (limits, timed limits, stop-limits that fire and rest), amends,
cancels, fills and time passing on two accounts, the open
orders, the closed-orders pages, the holds and every fee agree with the rules worked out from the whole state,
and an exchange rebuilt from the saved state answers alike."""

from __future__ import annotations

import random
from decimal import Decimal

from pydantic import TypeAdapter

from core.domain.clock import VirtualClock
from simulator.embedded import SANDBOX_EPOCH
from simulator.exceptions import KrakenError
from simulator.exchange import DEFAULT_ACCOUNT, Exchange
from simulator.exchange_base import FEE_WINDOW
from simulator.matching import fee_rate
from simulator.models import ExchangeState, OrderSpec, OrderType, Side
from simulator.pairs import ASSETS, PAIRS

PAIR = PAIRS["XBTUSDT"]
OTHER = "other"
ACCOUNTS = (DEFAULT_ACCOUNT, OTHER)
_STATE = TypeAdapter(ExchangeState)


def expected_holds(exchange: Exchange, account: str) -> dict[str, Decimal]:
    """The rule: a resting buy holds its remaining volume at its limit plus the highest
    taker fee, a resting sell its remaining base; untriggered stops hold nothing."""
    top_fee = max(percent for _, percent in PAIR.fees) / 100
    held = dict.fromkeys(exchange.state.accounts[account].balances, Decimal(0))
    for order in exchange.state.orders.values():
        spec = order.spec
        if order.account != account or not order.is_live:
            continue
        if spec.ordertype is OrderType.LIMIT:
            limit = spec.price
        elif spec.ordertype is OrderType.STOP_LOSS_LIMIT and order.triggered:
            limit = spec.price2  # a fired stop-limit rests at its limit
        else:
            continue
        assert limit is not None
        if spec.side is Side.BUY:
            held[PAIR.quote] += order.remaining * limit * (1 + top_fee)
        else:
            held[PAIR.base] += order.remaining
    return held


def check_answers(exchange: Exchange) -> None:
    exchange.sync()  # the market catches up first, so the state read below is the answers'
    for account in ACCOUNTS:
        live = [o.txid for o in exchange.state.orders.values() if o.account == account and o.is_live]
        assert [o.txid for o in exchange.open_orders(account)] == live
        assert exchange.holds(account) == expected_holds(exchange, account)
        mine = [o.txid for o in exchange.state.orders.values() if o.account == account]
        assert [o.txid for o in exchange.query_orders(account, None)] == mine
        done = [o for o in exchange.state.orders.values() if o.account == account and not o.is_live]
        newest = [o.txid for o in sorted(done, key=lambda o: o.closetm or o.opentm, reverse=True)]
        for offset in (0, 7):
            page, count = exchange.closed_orders(account, offset=offset)
            assert ([o.txid for o in page], count) == (newest[offset : offset + 50], len(done))


def check_fees(exchange: Exchange) -> None:
    """Each trade paid the tier its account's USD volume of the 30 days before it reached."""
    trades = list(exchange.state.trades.values())
    for i, trade in enumerate(trades):
        volume = sum(
            (
                t.usd_value
                for t in trades[:i]
                if t.account == trade.account and trade.time - FEE_WINDOW < t.time <= trade.time
            ),
            Decimal(0),
        )
        rate = fee_rate(PAIR.fees_maker if trade.maker else PAIR.fees, volume)
        assert trade.fee == (trade.cost * rate).quantize(ASSETS[PAIR.quote].unit), trade


def step(exchange: Exchange, clock: VirtualClock, rng: random.Random) -> None:
    account = rng.choice(ACCOUNTS)
    price = exchange.price(PAIR)
    action = rng.randrange(9)
    try:
        if action == 0:  # a resting buy, some near enough to fill later
            limit = (price * Decimal(rng.choice(("0.5", "0.97", "0.995")))).quantize(Decimal("0.1"))
            exchange.add_order(account, OrderSpec(PAIR.key, Side.BUY, OrderType.LIMIT, Decimal("0.5"), price=limit))
        elif action == 1:
            limit = (price * Decimal(rng.choice(("2", "1.03", "1.005")))).quantize(Decimal("0.1"))
            exchange.add_order(account, OrderSpec(PAIR.key, Side.SELL, OrderType.LIMIT, Decimal("0.5"), price=limit))
        elif action == 2:
            side = rng.choice((Side.BUY, Side.SELL))
            exchange.add_order(account, OrderSpec(PAIR.key, side, OrderType.MARKET, Decimal(rng.choice(("0.1", "2")))))
        elif action == 3:
            stop = (price * Decimal("0.98")).quantize(Decimal("0.1"))
            exchange.add_order(account, OrderSpec(PAIR.key, Side.SELL, OrderType.STOP_LOSS, Decimal("0.3"), price=stop))
        elif action == 4 and (live := exchange.open_orders(account)):
            exchange.cancel_order(account, txid=rng.choice(live).txid)
        elif action == 5:  # fires on a dip, then rests far above the market holding its base
            stop, limit = ((price * Decimal(f)).quantize(Decimal("0.1")) for f in ("0.99", "1.3"))
            exchange.add_order(
                account, OrderSpec(PAIR.key, Side.SELL, OrderType.STOP_LOSS_LIMIT, Decimal("0.2"), stop, limit)
            )
        elif action == 6 and (
            limits := [o for o in exchange.open_orders(account) if o.spec.ordertype is OrderType.LIMIT]
        ):
            order = rng.choice(limits)
            assert order.spec.price is not None
            moved = (order.spec.price * Decimal(rng.choice(("0.99", "1.01", "1.2", "0.8")))).quantize(Decimal("0.1"))
            exchange.amend_order(
                account, txid=order.txid, limit_price=moved, order_qty=Decimal(rng.choice(("0.4", "0.7")))
            )
        elif action == 7:  # a resting buy with an expiry: a timer the matching walk must see
            limit = (price * Decimal("0.996")).quantize(Decimal("0.1"))
            expires = clock.time() + rng.choice((30.0, 7200.0))
            exchange.add_order(
                account,
                OrderSpec(PAIR.key, Side.BUY, OrderType.LIMIT, Decimal("0.3"), price=limit, expiretm=expires),
            )
        else:
            clock.advance(rng.choice((60.0, 3600.0, 86_400.0, 10 * 86_400.0)))
    except KrakenError:
        pass  # refused (funds, say): the answers must still agree


def test_the_index_answers_as_the_whole_state_does() -> None:
    clock = VirtualClock(SANDBOX_EPOCH)
    balances = {"USDT": Decimal(5_000_000), "XXBT": Decimal(50)}
    exchange = Exchange.create(clock, seed=7, balances=balances, fixed_ids=True)
    exchange.create_api_key(OTHER)
    rng = random.Random(7)
    for n in range(160):
        step(exchange, clock, rng)
        check_answers(exchange)
        if n % 40 == 39:  # the next process: the index rebuilt from the saved state
            state = _STATE.validate_json(_STATE.dump_json(exchange.state))
            exchange = Exchange(state, clock)
            check_answers(exchange)
    assert len(exchange.state.trades) > 30
    assert any(not o.is_live and o.status.value == "canceled" for o in exchange.state.orders.values())
    assert len({t.fee / t.cost for t in exchange.state.trades.values() if not t.maker}) > 1  # tiers were crossed
    orders = exchange.state.orders.values()
    assert any(o.amended for o in orders)
    assert any(o.spec.ordertype is OrderType.STOP_LOSS_LIMIT and o.triggered and not o.trades for o in orders)
    assert any(o.status.value == "expired" for o in orders)
    check_fees(exchange)


def test_a_reset_empties_the_index() -> None:
    clock = VirtualClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock, seed=7)
    price = exchange.price(PAIR)
    limit = (price / 2).quantize(Decimal("0.1"))
    exchange.add_order(DEFAULT_ACCOUNT, OrderSpec(PAIR.key, Side.BUY, OrderType.LIMIT, Decimal("0.1"), price=limit))
    exchange.add_order(DEFAULT_ACCOUNT, OrderSpec(PAIR.key, Side.BUY, OrderType.MARKET, Decimal("1")))
    exchange.reset()
    assert exchange.open_orders(DEFAULT_ACCOUNT) == []
    assert exchange.query_orders(DEFAULT_ACCOUNT, None) == []
    assert all(v == 0 for v in exchange.holds(DEFAULT_ACCOUNT).values())
    exchange.add_order(DEFAULT_ACCOUNT, OrderSpec(PAIR.key, Side.BUY, OrderType.MARKET, Decimal("1")))
    [trade] = exchange.state.trades.values()
    assert trade.fee == (trade.cost * fee_rate(PAIR.fees, Decimal(0))).quantize(ASSETS[PAIR.quote].unit)


def test_a_limit_amended_toward_the_market_fills_as_if_placed_there() -> None:
    """The matching walk skips resting limits the market does not reach (by a bound on
    their prices); an amend that moves one closer must move the bound, or it would
    never fill. Reference: a twin exchange where the order was placed at that price."""
    fills = []
    for amended in (True, False):
        clock = VirtualClock(SANDBOX_EPOCH)
        exchange = Exchange.create(clock, seed=7, fixed_ids=True)
        near = (exchange.price(PAIR) * Decimal("0.995")).quantize(Decimal("0.1"))
        placed = near / 2 if amended else near
        spec = OrderSpec(PAIR.key, Side.BUY, OrderType.LIMIT, Decimal("0.1"), price=placed)
        order = exchange.add_order(DEFAULT_ACCOUNT, spec)
        assert order is not None
        if amended:
            exchange.amend_order(DEFAULT_ACCOUNT, txid=order.txid, limit_price=near)
        for _ in range(30):
            clock.advance(3_600)
            exchange.sync()
        fills.append([(t.time, t.price, t.vol) for t in exchange.state.trades.values()])
    assert fills[0] == fills[1] != []


def test_resting_limits_reached_together_fill_in_the_order_placed() -> None:
    """Orders the market reaches in one stretch fill in the order they were placed
    (their trades' serials say so), whatever was placed and cancelled before them."""
    clock = VirtualClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock, seed=7, fixed_ids=True)
    near = (exchange.price(PAIR) * Decimal("0.995")).quantize(Decimal("0.1"))

    def buy(price: Decimal) -> str:
        order = exchange.add_order(
            DEFAULT_ACCOUNT, OrderSpec(PAIR.key, Side.BUY, OrderType.LIMIT, Decimal("0.1"), price)
        )
        assert order is not None
        return order.txid

    gone = [buy(near / 2), buy(near / 2)]
    first, second = buy(near), buy(near)  # the same price: reached at the same instant
    for txid in gone:
        exchange.cancel_order(DEFAULT_ACCOUNT, txid=txid)
    third = buy(near)
    while not exchange.state.orders[third].trades:
        clock.advance(3_600)
        exchange.sync()
    trades = sorted(exchange.state.trades.values(), key=lambda t: t.serial)
    assert [t.ordertxid for t in trades] == [first, second, third]
