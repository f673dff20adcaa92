"""The sandbox's control plane: what a test, a replay or `tg sim` does to the exchange
that no Kraken client can (start over, move time, install faults, look inside).

`Sandbox` is the Python API; `ROUTES` serves the same operations under /_sandbox/, a
path no Kraken client calls, without Kraken's authentication, rate limits or faults.
Who may call them is control_guard.py's one decision, taken before any handler runs:
loopback clients (or holders of the control token), with `X-TG-Sandbox: 1` on every
POST and DELETE, and never a browser request from another site:

    POST   /_sandbox/reset       balances, orders, counters and fault counts anew
    POST   /_sandbox/seed        seed=N: reseed the fault schedule (the market's seed
                                 is fixed when the exchange is created)
    GET    /_sandbox/faults      the rules in force
    POST   /_sandbox/faults      add rules: JSON {"rules": [{...} or "spec", ...]}, or
                                 a form field spec=NAME:key=value,...
    DELETE /_sandbox/faults      remove every rule (the log stays)
    POST   /_sandbox/advance     seconds=S: move the clock; stops and targets trigger
    GET    /_sandbox/state       time, prices, balances, open orders, counters

advance and state answer with the state; orders=false leaves the orders out of it and
pairs=KEY,... prices only those pairs, for a caller that steps the clock thousands
of times (a replay) and reads one price and the balances.
    GET    /_sandbox/fault-log   every injected fault, oldest first

Answers use Kraken's envelope, refusals Kraken's error strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from simulator import wire
from simulator.exceptions import InvalidArguments
from simulator.exchange import Exchange
from simulator.faults import FaultRule, FaultSchedule, FaultSpecError, parse_rules, parse_spec
from simulator.pairs import PAIRS
from simulator.params import AdvanceParams, Params, parse
from simulator.ratelimits import RateLimits

Json = dict[str, Any]


@dataclass
class Sandbox:
    """An exchange with the rate limits and the fault schedule its app enforces."""

    exchange: Exchange
    limits: RateLimits | None = field(default_factory=RateLimits)
    """None: no rate limits at all."""
    faults: FaultSchedule = field(default_factory=FaultSchedule)

    def reset(self) -> None:
        """Opening balances, no orders, empty counters; the fault rules stay but start
        over, with an empty log."""
        self.exchange.reset()
        if self.limits is not None:
            self.limits.reset()
        self.faults.rewind()

    def add_faults(self, *rules: FaultRule | str) -> None:
        self.faults.add(*(parse_spec(r) if isinstance(r, str) else r for r in rules))

    def advance(self, seconds: float) -> None:
        self.exchange.advance(seconds)

    def state(self, *, orders: bool = True, pairs: list[str] | None = None) -> Json:
        """Everything, or without the orders, and with the prices of `pairs` (keys) only."""
        exchange = self.exchange
        accounts: dict[str, Json] = {
            name: {"balances": wire.balances(exchange.balance(name))} for name in exchange.state.accounts
        }
        if orders:
            for name, account in accounts.items():
                account["open"] = {o.txid: wire.order(o, with_trades=False) for o in exchange.open_orders(name)}
                # every order the exchange accepted, as the exchange holds it: faults hide nothing here
                account["orders"] = {
                    o.txid: wire.order(o, with_trades=False) for o in exchange.query_orders(name, None)
                }
        return {
            "time": exchange.now(),
            "seed": exchange.state.seed,
            "prices": {
                key: wire.amount(exchange.price(pair), pair.pair_decimals)
                for key, pair in PAIRS.items()
                if pairs is None or key in pairs
            },
            "accounts": accounts,
            "rate_limits": None if self.limits is None else self.limits.snapshot(exchange.clock.monotonic()),
            "faults": {"seed": self.faults.seed, "rules": len(self.faults.rules), "injected": len(self.faults.log)},
        }


class _ControlParams(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _SeedParams(_ControlParams):
    seed: int = Field(ge=0, le=2**63 - 1)


class _StateParams(_ControlParams):
    orders: bool = True
    pairs: str | None = None

    def pair_keys(self) -> list[str] | None:
        if self.pairs is None:
            return None
        keys = [key for key in self.pairs.split(",") if key]
        if any(key not in PAIRS for key in keys):
            raise InvalidArguments("pairs")
        return keys


class _FaultsParams(_ControlParams):
    rules: list[Any] | None = None
    spec: str | None = None


def reset(sandbox: Sandbox, params: Params) -> Json:
    sandbox.reset()
    return sandbox.state()


def seed(sandbox: Sandbox, params: Params) -> Json:
    sandbox.faults.reseed(parse(_SeedParams, params).seed)
    return list_faults(sandbox, params)


def list_faults(sandbox: Sandbox, params: Params) -> Json:
    return {"seed": sandbox.faults.seed, "rules": [rule.model_dump(mode="json") for rule in sandbox.faults.rules]}


def add_faults(sandbox: Sandbox, params: Params) -> Json:
    call = parse(_FaultsParams, params)
    given: list[Any] = (call.rules or []) + ([call.spec] if call.spec is not None else [])
    if not given:
        raise InvalidArguments("rules")
    try:
        sandbox.faults.add(*parse_rules(given))
    except FaultSpecError as exc:
        raise InvalidArguments(f"rules:{exc}") from None
    return list_faults(sandbox, params)


def clear_faults(sandbox: Sandbox, params: Params) -> Json:
    sandbox.faults.clear()
    return list_faults(sandbox, params)


def advance(sandbox: Sandbox, params: Params) -> Json:
    sandbox.advance(float(parse(AdvanceParams, params).seconds))
    return state(sandbox, params)


def state(sandbox: Sandbox, params: Params) -> Json:
    wanted = parse(_StateParams, params)
    return sandbox.state(orders=wanted.orders, pairs=wanted.pair_keys())


def fault_log(sandbox: Sandbox, params: Params) -> Json:
    return {"log": sandbox.faults.log_dicts()}


ControlHandler = Callable[[Sandbox, Params], Json]

ROUTES: dict[tuple[str, str], ControlHandler] = {
    ("POST", "/_sandbox/reset"): reset,
    ("POST", "/_sandbox/seed"): seed,
    ("GET", "/_sandbox/faults"): list_faults,
    ("POST", "/_sandbox/faults"): add_faults,
    ("DELETE", "/_sandbox/faults"): clear_faults,
    ("POST", "/_sandbox/advance"): advance,
    ("GET", "/_sandbox/state"): state,
    ("GET", "/_sandbox/fault-log"): fault_log,
}
