"""The sandbox's control plane: what a test, a replay or `tg sim` does to the exchange
that no Kraken client can (start over, move or freeze time, install faults, shape the
price, fund accounts, force fills, look inside).

`Sandbox` is the Python API; `ROUTES` serves the same operations under /_sandbox/, a
path no Kraken client calls, without Kraken's authentication, rate limits or faults.
Who may call them is control_guard.py's one decision, taken before any handler runs:
loopback clients (or holders of the control token), with `X-TG-Sandbox: 1` on every
POST and DELETE, and never a browser request from another site. Parameters come as a
form, a query string or a JSON object; answers use Kraken's envelope, refusals
Kraken's error strings. docs/sandbox.md is the reference for every route (a test
holds it to `ROUTES`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.domain.clock import SkippableSystemClock
from simulator import wire
from simulator.exceptions import InvalidArguments, KrakenError, PermissionDenied
from simulator.exchange import Exchange
from simulator.faults import FaultRule, FaultSchedule, FaultSpecError, parse_rules, parse_spec
from simulator.models import Account, Order, PriceShape
from simulator.pairs import PAIRS, find_asset
from simulator.params import AdvanceParams, Params, parse
from simulator.ratelimits import RateLimits
from simulator.scenario import PriceMove, Scenario, ScenarioError, Seconds, parse_scenario

Json = dict[str, Any]


@dataclass
class Sandbox:
    """An exchange with the rate limits and the fault schedule its app enforces."""

    exchange: Exchange
    limits: RateLimits | None = field(default_factory=RateLimits)
    """None: no rate limits at all."""
    faults: FaultSchedule = field(default_factory=FaultSchedule)
    _settled: dict[str, tuple[Order, Json]] = field(default_factory=dict, init=False, repr=False)
    """The wire shape of each settled order, by txid (see _order)."""

    def reset(self) -> None:
        """Opening balances, no orders, empty counters; the fault rules stay but start
        over, with an empty log."""
        self.exchange.reset()
        self._settled.clear()
        if self.limits is not None:
            self.limits.reset()
        self.faults.rewind()

    def add_faults(self, *rules: FaultRule | str) -> list[int]:
        """Install rules (objects or `NAME:key=value,...` specs); their ids come back."""
        return self.faults.add(*(parse_spec(r) if isinstance(r, str) else r for r in rules))

    def advance(self, seconds: float) -> None:
        self.exchange.advance(seconds)

    def set_balances(self, account: str, balances: dict[str, Decimal]) -> None:
        """Set the named assets of `account` (others unchanged); a new account opens empty."""
        held = self.exchange.state.accounts.setdefault(account, Account({}))
        self.exchange.sync()
        held.balances.update(balances)

    def add_account(self, account: str, balances: dict[str, Decimal] | None = None) -> Json:
        """A new API key pair on `account` (opened with the opening balances unless
        `balances` are given); the key and its secret come back."""
        fresh = account not in self.exchange.state.accounts
        api_key = self.exchange.create_api_key(account)
        if balances is not None:
            if fresh:
                self.exchange.state.accounts[account].balances.clear()
            self.set_balances(account, balances)
        return {"account": account, "key": api_key.key, "secret": api_key.secret}

    def keys_by_account(self) -> dict[str, list[str]]:
        """Each account's API keys (never a secret)."""
        accounts: dict[str, list[str]] = {name: [] for name in self.exchange.state.accounts}
        for api_key in self.exchange.state.api_keys.values():
            accounts[api_key.account].append(api_key.key)
        return accounts

    def shape_price(self, shape: PriceShape) -> None:
        self.exchange.add_price_shape(shape)

    def load_scenario(self, scenario: Scenario) -> list[int]:
        """Lay the scenario's moves over the market, schedule its mode changes and
        install its faults, on the clock from now; the rules' ids come back."""
        now = self.exchange.now()
        rules = scenario.rules(now)
        for shape in scenario.shapes(now):
            self.exchange.add_price_shape(shape)
        for at, status in scenario.status_changes(now):
            self.exchange.schedule_system_status(at, status)
        return self.faults.add(*rules)

    def freeze(self, frozen: bool) -> None:
        """Stop the exchange's clock (only `advance` moves it), or let it run again."""
        clock = self.exchange.clock
        if isinstance(clock, SkippableSystemClock) and frozen:
            clock.freeze()
        elif isinstance(clock, SkippableSystemClock):
            clock.release()
        elif not frozen:
            raise PermissionDenied()  # a virtual clock never runs by itself

    @property
    def frozen(self) -> bool:
        clock = self.exchange.clock
        return clock.frozen if isinstance(clock, SkippableSystemClock) else True

    def state(
        self,
        *,
        orders: bool = True,
        pairs: list[str] | None = None,
        open_orders: bool = True,
        trades: bool = True,
        open_ids: bool = False,
    ) -> Json:
        """Everything, or without the orders, and with the prices of `pairs` (keys) only.
        With the orders, `open_orders` and `trades` False leave out each account's open
        orders (they are among its orders) and recent trades; `open_ids` lists the txids
        of its open orders, orders or not: what a watcher of the account needs."""
        exchange = self.exchange
        accounts: dict[str, Json] = {
            name: {"balances": wire.balances(exchange.balance(name)), "keys": keys}
            for name, keys in self.keys_by_account().items()
        }
        for name, account in accounts.items():
            if open_ids:
                account["open_ids"] = [o.txid for o in exchange.open_orders(name)]
            if not orders:
                continue
            if open_orders:
                account["open"] = {o.txid: self._order(o) for o in exchange.open_orders(name)}
            # every order the exchange accepted, as the exchange holds it: faults hide nothing here
            account["orders"] = {o.txid: self._order(o) for o in exchange.query_orders(name, None)}
            if trades:
                recent, _ = exchange.trades_history(name)
                account["trades"] = {t.id: wire.trade(t, exchange.state.seed) for t in recent}
        return {
            "time": exchange.now(),
            "frozen": self.frozen,
            "seed": exchange.state.seed,
            "prices": {
                key: wire.amount(exchange.price(pair), pair.pair_decimals)
                for key, pair in PAIRS.items()
                if pairs is None or key in pairs
            },
            "shapes": [_shape_json(shape) for shape in exchange.state.shapes],
            "accounts": accounts,
            "rate_limits": None if self.limits is None else self.limits.snapshot(exchange.clock.monotonic()),
            "faults": {"seed": self.faults.seed, "rules": len(self.faults.rules), "injected": len(self.faults.log)},
        }

    def _order(self, order: Order) -> Json:
        """An order in QueryOrders' shape. A settled order never changes again, so its
        shape is kept (for that very order: a reset's new orders are other objects): the
        state lists every order ever placed, and encoding them all anew each time grew
        with the account's history."""
        if order.is_live:
            return wire.order(order, with_trades=False)
        kept = self._settled.get(order.txid)
        if kept is None or kept[0] is not order:
            kept = self._settled[order.txid] = (order, wire.order(order, with_trades=False))
        return kept[1]


class _ControlParams(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class _SeedParams(_ControlParams):
    seed: int = Field(ge=0, le=2**63 - 1)


class _StateParams(_ControlParams):
    orders: bool = True
    pairs: str | None = None
    open: bool = True
    trades: bool = True
    open_ids: bool = False

    def answer(self, sandbox: Sandbox) -> Json:
        return sandbox.state(
            orders=self.orders,
            pairs=self.pair_keys(),
            open_orders=self.open,
            trades=self.trades,
            open_ids=self.open_ids,
        )

    def pair_keys(self) -> list[str] | None:
        if self.pairs is None:
            return None
        keys = [key for key in self.pairs.split(",") if key]
        if any(key not in PAIRS for key in keys):
            raise InvalidArguments("pairs")
        return keys


class _AdvanceAnswer(_StateParams):
    state: bool = True
    """False: answer the clock alone (`time`, `frozen`), for a caller that reads nothing
    else after each step; the whole state costs far more to build than the step."""


class _FaultsParams(_ControlParams):
    rules: list[Any] | None = None
    spec: str | None = None


class _RemoveParams(_ControlParams):
    id: int | None = Field(None, ge=0)


def _amounts(value: object) -> object:
    """Balances as a JSON object, or a form's `ASSET:AMOUNT,...`; asset names as Kraken's
    ids or altnames (BTC for XXBT), each to its Kraken id."""
    if isinstance(value, str):
        pairs = [item.partition(":") for item in value.split(",") if item]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError("balances are ASSET:AMOUNT,...")
        value = {name: amount for name, _, amount in pairs}
    if not isinstance(value, dict):
        raise ValueError("balances are an object of asset: amount")
    try:
        return {find_asset(str(name)).id: amount for name, amount in value.items()}
    except KrakenError:
        raise ValueError("unknown asset") from None


MAX_BALANCE = Decimal(10) ** 15
"""The most an account may be given of an asset: with the wire's decimals it stays within
Decimal's 28 digits, so every balance and order on it can be shown."""


def _holdable(value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
    if value is not None and any(not (amount.is_finite() and 0 <= amount <= MAX_BALANCE) for amount in value.values()):
        raise ValueError(f"amounts are finite, not negative and at most {MAX_BALANCE:,}")
    return value


class _BalancesParams(_ControlParams):
    account: str = Field("default", min_length=1, max_length=64)
    balances: dict[str, Decimal]

    _amounts = field_validator("balances", mode="before")(_amounts)
    _holdable = field_validator("balances")(_holdable)


class _AccountParams(_ControlParams):
    account: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    balances: dict[str, Decimal] | None = None

    _amounts = field_validator("balances", mode="before")(_amounts)
    _holdable = field_validator("balances")(_holdable)


class _PriceParams(PriceMove):
    after: Seconds = 0.0
    """Seconds from now on the exchange's clock."""


class _ScenarioParams(_ControlParams):
    toml: str = Field(max_length=200_000)


class _FillParams(_ControlParams):
    txid: str
    volume: Decimal | None = Field(None, gt=0, allow_inf_nan=False)
    price: Decimal | None = Field(None, gt=0, allow_inf_nan=False)


class _ClockParams(_ControlParams):
    frozen: bool


def _shape_json(shape: PriceShape) -> Json:
    return {
        "shape": shape.kind,
        "pair": shape.pair,
        "at": shape.at,
        "pct": f"{shape.pct:f}",
        "over": shape.over,
        "recover": shape.recover,
    }


def reset(sandbox: Sandbox, params: Params) -> Json:
    sandbox.reset()
    return sandbox.state()


def seed(sandbox: Sandbox, params: Params) -> Json:
    sandbox.faults.reseed(parse(_SeedParams, params).seed)
    return list_faults(sandbox, params)


def list_faults(sandbox: Sandbox, params: Params) -> Json:
    return {"seed": sandbox.faults.seed, "rules": sandbox.faults.rule_dicts()}


def add_faults(sandbox: Sandbox, params: Params) -> Json:
    call = parse(_FaultsParams, params)
    given: list[Any] = (call.rules or []) + ([call.spec] if call.spec is not None else [])
    if not given:
        raise InvalidArguments("rules")
    try:
        added = sandbox.faults.add(*parse_rules(given))
    except FaultSpecError as exc:
        raise InvalidArguments(f"rules:{exc}") from None
    return {**list_faults(sandbox, params), "added": added}


def remove_faults(sandbox: Sandbox, params: Params) -> Json:
    """With `id`, the one rule; without, every rule. The log stays."""
    rule_id = parse(_RemoveParams, params).id
    if rule_id is None:
        sandbox.faults.clear()
    else:
        try:
            sandbox.faults.remove(rule_id)
        except KeyError:
            raise InvalidArguments("id") from None
    return list_faults(sandbox, params)


def advance(sandbox: Sandbox, params: Params) -> Json:
    seconds = float(parse(AdvanceParams, params).seconds)
    wanted = parse(_AdvanceAnswer, params)
    wanted.pair_keys()  # a refused answer refuses the step: the clock does not move
    sandbox.advance(seconds)
    if not wanted.state:
        return clock(sandbox, params)
    return wanted.answer(sandbox)


def state(sandbox: Sandbox, params: Params) -> Json:
    return parse(_StateParams, params).answer(sandbox)


def fault_log(sandbox: Sandbox, params: Params) -> Json:
    return {"log": sandbox.faults.log_dicts()}


def set_balances(sandbox: Sandbox, params: Params) -> Json:
    call = parse(_BalancesParams, params)
    sandbox.set_balances(call.account, call.balances)
    return {"account": call.account, "balances": wire.balances(sandbox.exchange.balance(call.account))}


def list_accounts(sandbox: Sandbox, params: Params) -> Json:
    return {"accounts": sandbox.keys_by_account()}


def add_account(sandbox: Sandbox, params: Params) -> Json:
    call = parse(_AccountParams, params)
    return sandbox.add_account(call.account, call.balances)


def shape_price(sandbox: Sandbox, params: Params) -> Json:
    move = _price_move(params)
    shape = move.at(sandbox.exchange.now() + move.after)
    sandbox.shape_price(shape)
    return {"shape": _shape_json(shape), "shapes": [_shape_json(s) for s in sandbox.exchange.state.shapes]}


def _price_move(params: Params) -> _PriceParams:
    try:
        return _PriceParams.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        # a field names itself; a shape missing what it needs says what, in words
        where = str(error["loc"][0]) if error["loc"] else str(error["msg"]).removeprefix("Value error, ")
        raise InvalidArguments(where) from None


def load_scenario(sandbox: Sandbox, params: Params) -> Json:
    try:
        scenario = parse_scenario(parse(_ScenarioParams, params).toml)
    except ScenarioError as exc:
        raise InvalidArguments(f"toml:{exc}") from None
    added = sandbox.load_scenario(scenario)
    return {
        **list_faults(sandbox, params),
        "added": added,
        "shapes": [_shape_json(s) for s in sandbox.exchange.state.shapes],
    }


def force_fill(sandbox: Sandbox, params: Params) -> Json:
    call = parse(_FillParams, params)
    order = sandbox.exchange.force_fill(call.txid, call.volume, call.price)
    return {call.txid: wire.order(order, with_trades=True)}


def clock(sandbox: Sandbox, params: Params) -> Json:
    return {"time": sandbox.exchange.now(), "frozen": sandbox.frozen}


def set_clock(sandbox: Sandbox, params: Params) -> Json:
    sandbox.freeze(parse(_ClockParams, params).frozen)
    return clock(sandbox, params)


ControlHandler = Callable[[Sandbox, Params], Json]

ROUTES: dict[tuple[str, str], ControlHandler] = {
    ("POST", "/_sandbox/reset"): reset,
    ("POST", "/_sandbox/seed"): seed,
    ("GET", "/_sandbox/faults"): list_faults,
    ("POST", "/_sandbox/faults"): add_faults,
    ("DELETE", "/_sandbox/faults"): remove_faults,
    ("POST", "/_sandbox/advance"): advance,
    ("GET", "/_sandbox/state"): state,
    ("GET", "/_sandbox/fault-log"): fault_log,
    ("POST", "/_sandbox/balances"): set_balances,
    ("GET", "/_sandbox/accounts"): list_accounts,
    ("POST", "/_sandbox/accounts"): add_account,
    ("POST", "/_sandbox/price"): shape_price,
    ("POST", "/_sandbox/fill"): force_fill,
    ("POST", "/_sandbox/scenario"): load_scenario,
    ("GET", "/_sandbox/clock"): clock,
    ("POST", "/_sandbox/clock"): set_clock,
}
