"""Faults as data: a seeded schedule of rules that the request pipeline (app.py) reads
around every Kraken call, so that the failures that lose traders money happen on
demand, reproducibly, and on the record.

A rule names a fault of the catalog, which calls it hits (an endpoint and, for
AddOrder, an order role), when (a probability, or from the n-th matching call on, and
within a window of exchange time) and how often at most (`times`), with the fault's
own `params`. Each rule has an id, its place in the order rules were added. Unset fields take the
fault's defaults. Rules compose: all that fire on a call act, in order. Each rule
draws from its own RNG seeded from the schedule's seed, so the same seed and the same
calls give the same injections; each injection is written to `log`.

The catalog (name: what happens; default endpoint, role, times):

- stop-fail: a stop-loss AddOrder is refused, "EOrder:Invalid order" (AddOrder,
  stop_loss, every time). params: error.
- stop-fail-once: the first stop-loss AddOrder is refused with a transient
  "EService:Busy" (AddOrder, stop_loss, once). params: error.
- partial-fill: an entry fills only `ratio` of its volume at once, the rest stays open
  (AddOrder, entry, every time). params: ratio (default 0.5).
- vanish: AddOrder answers with a txid, then the order is absent from QueryOrders
  (EOrder:Invalid order), OpenOrders and ClosedOrders (AddOrder, any, once). With
  mode=dropped (default) the order never existed: the exchange only validated it and
  the txid is made up, so nothing fills and nothing is held. With mode=hidden it
  exists and trades, but the account's queries never show it.
- ghost: the order is placed but its answer is lost (AddOrder, any, once). params:
  variant = timeout (default; in-process httpx.ReadTimeout, over TCP the connection
  hangs until the client gives up), internal-error ("EGeneral:Internal error"), or
  html-5xx (a Cloudflare-style error page with HTTP `status`, default 502).
- rate-limit: "EOrder:Rate limit exceeded" on trading calls, "EAPI:Rate limit
  exceeded" on others (any endpoint, once). params: error.
- unavailable: "EService:Unavailable" (any endpoint, once).
- busy: "EService:Busy" (any endpoint, once).
- insufficient-funds: an entry is refused "EOrder:Insufficient funds" (AddOrder,
  entry, every time).
- latency: the call waits `seconds` (default 2) of the exchange's clock before it is
  handled (any endpoint, every time).
- invalid-nonce: "EAPI:Invalid nonce", after the nonce was consumed (any private
  endpoint, once).
- stale-visibility: a placed order shows in QueryOrders, OpenOrders and ClosedOrders
  only `seconds` (default 10) of exchange time after it was placed (AddOrder, any,
  every time).
- gap: once a stop-loss is placed, the price jumps `beyond_pct` (default 1) percent
  past its trigger `after_seconds` (default 60) later, so it fills far from its
  trigger (AddOrder, stop_loss, once).
- token-expiry: a WebSocket token stops working `seconds` (default 0) after it is
  issued, used or not (GetWebSocketsToken, once).

The WebSocket API's order methods are the REST calls they stand for (add_order is
AddOrder, so `ghost` on it loses the add_order answer while the order rests). What the
streams publish passes the schedule too, as calls named `ws:<channel>` (ws:book,
ws:executions...) that only the stream faults below can meet:

- ws-drop: the connection is closed under the client (any channel, once).
- ws-bad-checksum: a book update carries a checksum that does not match the book
  (ws:book, once; snapshots are left alone).
- ws-delay: a message is held back `seconds` (default 5) of the exchange's clock
  (ws:executions, every time).
- ws-lose: a message is never sent (ws:executions, once).
"""

from __future__ import annotations

import difflib
import json
import math
import random
import tomllib
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from simulator.exceptions import (
    ApiRateLimitExceeded,
    InsufficientFunds,
    InternalError,
    InvalidNonce,
    InvalidOrder,
    KrakenError,
    OrderRateLimitExceeded,
    ServiceBusy,
    ServiceUnavailable,
)
from simulator.exchange import Exchange
from simulator.fill_models import FillModel, ForcedFirstFill
from simulator.models import OrderSpec, Side
from simulator.pairs import PAIRS
from simulator.ratelimits import TRADING_METHODS
from simulator.websocket import tokens

Role = Literal["any", "entry", "stop_loss", "take_profit"]
ANY_ENDPOINT = "*"
STREAM_PREFIX = "ws:"
_KRAKEN_ERRORS = {cls.code: cls for cls in KrakenError.__subclasses__()}
_QUERY_METHODS = frozenset({"QueryOrders", "OpenOrders", "ClosedOrders"})


class FaultSpecError(ValueError):
    """A fault rule, spec or file that cannot be read; the message says which and why."""


def order_role(ordertype: object) -> Role | None:
    """What an AddOrder's order is for, judged by its ordertype."""
    if not isinstance(ordertype, str):
        return None
    if ordertype in ("market", "limit"):
        return "entry"
    if ordertype.startswith(("stop-loss", "trailing-stop")):
        return "stop_loss"
    if ordertype.startswith("take-profit"):
        return "take_profit"
    return None


@dataclass
class Call:
    """One Kraken call on its way through the pipeline. Faults read and change it:
    `params` before the handler sees them, and the models the exchange handles it with
    (`fills`), for this call alone."""

    method: str
    exchange: Exchange
    params: dict[str, object]
    account: str | None = None
    fills: FillModel | None = None
    """The fill model for this call alone (a fault's), else the exchange's own."""

    @property
    def role(self) -> Role | None:
        return order_role(self.params.get("ordertype")) if self.method == "AddOrder" else None

    @property
    def is_stream(self) -> bool:
        return self.method.startswith(STREAM_PREFIX)


class DroppedConnection(Exception):
    """A fault closes the WebSocket connection under its client."""


class LostResponse(Exception):
    """The call was handled but its answer must not reach the client."""

    def __init__(self, variant: Literal["timeout", "html-5xx"], status: int = 502) -> None:
        super().__init__(variant)
        self.variant = variant
        self.status = status


@dataclass
class FaultLogEntry:
    """One injection: when (exchange time), which rule, on which call, what it did and
    how the call ended ("ok", or the Kraken error it answered)."""

    time: float
    fault: str
    rule: int
    endpoint: str
    effect: str
    role: str | None = None
    txid: str | None = None
    cl_ord_id: str | None = None
    userref: str | None = None
    outcome: str = "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the catalog --------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _kraken_error(value: object) -> object:
    if value is not None and value not in _KRAKEN_ERRORS:
        raise ValueError(f"{value!r} is not a Kraken error string (e.g. 'EService:Busy')")
    return value


KrakenErrorCode = Annotated[str, BeforeValidator(_kraken_error)]


class ErrorParams(_Params):
    error: KrakenErrorCode | None = None
    """Another Kraken error string to answer with."""


class PartialFillParams(_Params):
    ratio: Decimal = Field(Decimal("0.5"), gt=0, lt=1, allow_inf_nan=False)


class VanishParams(_Params):
    mode: Literal["dropped", "hidden"] = "dropped"


class GhostParams(_Params):
    variant: Literal["timeout", "internal-error", "html-5xx"] = "timeout"
    status: int = Field(502, ge=500, le=599)


class SecondsParams(_Params):
    seconds: float = Field(2.0, ge=0, le=86_400, allow_inf_nan=False)


class StaleParams(_Params):
    seconds: float = Field(10.0, gt=0, le=86_400, allow_inf_nan=False)


class TokenExpiryParams(_Params):
    seconds: float = Field(0.0, ge=0, le=86_400, allow_inf_nan=False)


class DelayParams(_Params):
    seconds: float = Field(5.0, gt=0, le=86_400, allow_inf_nan=False)


class GapParams(_Params):
    beyond_pct: Decimal = Field(Decimal(1), gt=0, lt=50, allow_inf_nan=False)
    after_seconds: float = Field(60.0, ge=0, le=86_400, allow_inf_nan=False)


@dataclass(frozen=True)
class Defaults:
    endpoint: str = ANY_ENDPOINT
    match: Role = "any"
    times: int | None = None
    summary: str = ""
    """What the exchange does, in a line: the catalog's documentation."""


class Fault:
    """A fault's behaviour: `before` acts on the call before its handler (it may
    refuse it, delay it, or change what the handler does), `after` on the handler's
    result. Each returns what it did, for the log."""

    params_model: ClassVar[type[_Params]] = _Params
    stream: ClassVar[bool] = False
    """Acts on what a WebSocket channel publishes (calls named ws:<channel>), not on calls."""
    websocket_only: ClassVar[bool] = False
    """Only a WebSocket client can meet it (a stream, a token): REST clients never do."""

    def __init__(self, defaults: Defaults, *, private_only: bool = False) -> None:
        self.defaults = defaults
        self.private_only = private_only
        """Only an authenticated call can meet it (a nonce error, say)."""

    def meets(self, call: Call) -> bool:
        """Whether the fault can act on `call` at all (before its rule counts it)."""
        return call.is_stream == self.stream and (call.account is not None or not self.private_only)

    async def before(self, call: Call, params: Any, schedule: FaultSchedule) -> str | None:
        return None

    def after(self, call: Call, params: Any, result: dict[str, Any], schedule: FaultSchedule) -> str | None:
        return None


class Reject(Fault):
    params_model = ErrorParams

    def __init__(
        self,
        defaults: Defaults,
        error: type[KrakenError],
        on_trading: type[KrakenError] | None = None,
        *,
        private_only: bool = False,
    ) -> None:
        super().__init__(defaults, private_only=private_only)
        self.error = error
        self.on_trading = on_trading or error

    async def before(self, call: Call, params: ErrorParams, schedule: FaultSchedule) -> str | None:
        chosen = self.on_trading if call.method in TRADING_METHODS else self.error
        if params.error is not None:
            chosen = _KRAKEN_ERRORS[params.error]
        raise chosen()


class PartialFill(Fault):
    params_model = PartialFillParams

    async def before(self, call: Call, params: PartialFillParams, schedule: FaultSchedule) -> str:
        call.fills = ForcedFirstFill(params.ratio, call.fills or call.exchange.fill_model)
        return f"fills {params.ratio} of the volume at once"


class Vanish(Fault):
    params_model = VanishParams

    async def before(self, call: Call, params: VanishParams, schedule: FaultSchedule) -> str | None:
        if params.mode == "dropped":
            call.params["validate"] = "true"
            return "order dropped: only validated, never placed"
        return None

    def after(self, call: Call, params: VanishParams, result: dict[str, Any], schedule: FaultSchedule) -> str | None:
        if params.mode == "dropped":
            result["txid"] = [call.exchange.state.new_id("O")]
            return "acknowledged with a txid that names no order"
        for txid in result.get("txid", []):
            schedule.hide(txid, math.inf)
        return "order placed and hidden from the account's queries"


class Ghost(Fault):
    params_model = GhostParams

    def after(self, call: Call, params: GhostParams, result: dict[str, Any], schedule: FaultSchedule) -> str:
        if params.variant == "internal-error":
            raise InternalError()
        raise LostResponse(params.variant, params.status)


class Latency(Fault):
    params_model = SecondsParams

    async def before(self, call: Call, params: SecondsParams, schedule: FaultSchedule) -> str:
        await call.exchange.clock.sleep(params.seconds)
        return f"delayed {params.seconds:g} s"


class StaleVisibility(Fault):
    params_model = StaleParams

    def after(self, call: Call, params: StaleParams, result: dict[str, Any], schedule: FaultSchedule) -> str | None:
        until = call.exchange.now() + params.seconds
        for txid in result.get("txid", []):
            schedule.hide(txid, until)
        return f"hidden from queries for {params.seconds:g} s"


class Gap(Fault):
    params_model = GapParams

    def after(self, call: Call, params: GapParams, result: dict[str, Any], schedule: FaultSchedule) -> str | None:
        for txid in result.get("txid", []):
            order = call.exchange.order(txid)
            if order is not None and order.spec.price is not None:
                at = call.exchange.now() + params.after_seconds
                market = call.exchange.price(PAIRS[order.spec.pair])
                pct = _gap_through(order.spec, market, params.beyond_pct)
                call.exchange.add_price_gap(at, pct)
                return f"price gaps {pct:.4f}% at +{params.after_seconds:g} s, through the trigger"
        return None


class TokenExpiry(Fault):
    params_model = TokenExpiryParams
    websocket_only = True

    def after(self, call: Call, params: TokenExpiryParams, result: dict[str, Any], schedule: FaultSchedule) -> str:
        tokens.revoke(call.exchange, result["token"], call.exchange.now() + params.seconds)
        return f"token stops working after {params.seconds:g} s"


class StreamFault(Fault):
    stream = True
    websocket_only = True


class DropConnection(StreamFault):
    async def before(self, call: Call, params: _Params, schedule: FaultSchedule) -> str:
        raise DroppedConnection()


class BadChecksum(StreamFault):
    def meets(self, call: Call) -> bool:
        return super().meets(call) and call.params.get("type") == "update"

    def after(self, call: Call, params: _Params, result: dict[str, Any], schedule: FaultSchedule) -> str:
        for row in result.get("data", []):
            row["checksum"] = (row["checksum"] + 1) % 2**32
        return "book update sent with a wrong checksum"


class Delay(StreamFault):
    params_model = DelayParams

    def after(self, call: Call, params: DelayParams, result: dict[str, Any], schedule: FaultSchedule) -> str:
        call.params["release"] = call.exchange.now() + params.seconds
        return f"held back {params.seconds:g} s"


class Lose(StreamFault):
    def after(self, call: Call, params: _Params, result: dict[str, Any], schedule: FaultSchedule) -> str:
        raise LostResponse("timeout")


def _gap_through(spec: OrderSpec, market: Decimal, beyond_pct: Decimal) -> Decimal:
    """The percent move from `market` that lands `beyond_pct` past the stop's trigger."""
    assert spec.price is not None
    step = beyond_pct / 100
    target = spec.price * (1 - step) if spec.side is Side.SELL else spec.price * (1 + step)
    return (target - market) / market * 100


CATALOG: dict[str, Fault] = {
    "stop-fail": Reject(
        Defaults("AddOrder", "stop_loss", summary="refuses every stop-loss order (EOrder:Invalid order)"),
        InvalidOrder,
    ),
    "stop-fail-once": Reject(
        Defaults("AddOrder", "stop_loss", times=1, summary="answers the first stop-loss with EService:Busy"),
        ServiceBusy,
    ),
    "partial-fill": PartialFill(
        Defaults("AddOrder", "entry", summary="fills only part of an entry at once; the rest fills later")
    ),
    "vanish": Vanish(
        Defaults("AddOrder", times=1, summary="acknowledges an order that then never shows in the account's queries")
    ),
    "ghost": Ghost(
        Defaults(
            "AddOrder", times=1, summary="places the order but loses the answer (timeout, internal error, 5xx page)"
        )
    ),
    "rate-limit": Reject(
        Defaults(times=1, summary="refuses a call for a rate limit, once"), ApiRateLimitExceeded, OrderRateLimitExceeded
    ),
    "unavailable": Reject(Defaults(times=1, summary="answers EService:Unavailable, once"), ServiceUnavailable),
    "busy": Reject(Defaults(times=1, summary="answers EService:Busy, once"), ServiceBusy),
    "insufficient-funds": Reject(
        Defaults("AddOrder", "entry", summary="refuses the entry (EOrder:Insufficient funds)"), InsufficientFunds
    ),
    "latency": Latency(Defaults(summary="makes every call take simulated seconds")),
    "invalid-nonce": Reject(
        Defaults(times=1, summary="refuses a private call's nonce, once"), InvalidNonce, private_only=True
    ),
    "stale-visibility": StaleVisibility(
        Defaults("AddOrder", summary="shows a placed order in the account's queries only after a while")
    ),
    "gap": Gap(Defaults("AddOrder", "stop_loss", times=1, summary="makes the price jump through a stop once placed")),
    "token-expiry": TokenExpiry(
        Defaults("GetWebSocketsToken", times=1, summary="makes a WebSocket token stop working early")
    ),
    "ws-drop": DropConnection(Defaults(times=1, summary="closes a WebSocket connection under its client, once")),
    "ws-bad-checksum": BadChecksum(
        Defaults("ws:book", times=1, summary="sends a book update whose checksum does not match, once")
    ),
    "ws-delay": Delay(Defaults("ws:executions", summary="holds back what a channel publishes for a while")),
    "ws-lose": Lose(Defaults("ws:executions", times=1, summary="loses one message of a channel")),
}


@dataclass(frozen=True)
class OptionDoc:
    name: str
    default: str
    accepts: str


def option_docs(model: type[BaseModel]) -> list[OptionDoc]:
    """A fault's options as its params model defines them: name, default, what it takes."""
    docs = []
    for name, info in model.model_fields.items():
        accepts = _accepts(info.annotation, info.metadata)
        default = "" if info.default is None else str(info.default)
        docs.append(OptionDoc(name, default, accepts))
    return docs


def rule_option_docs() -> list[OptionDoc]:
    """The options every rule takes, besides its fault's own."""
    return [
        OptionDoc("endpoint", "the fault's", "a Kraken method name (AddOrder, QueryOrders...) or *"),
        OptionDoc("match", "the fault's", "any|entry|stop_loss|take_profit (AddOrder's order role)"),
        OptionDoc("probability", "1", "0 to 1: the chance to hit each call it could"),
        OptionDoc("nth", "", "1 or more: hit from the n-th call it could on"),
        OptionDoc("times", "the fault's", "1 or more: at most this many hits"),
        OptionDoc("active_from", "", "exchange time (epoch seconds) from which it may hit"),
        OptionDoc("active_until", "", "exchange time (epoch seconds) from which it no longer hits"),
    ]


def _accepts(annotation: Any, metadata: list[Any]) -> str:
    """What an option takes, in words: its choices, or its kind and bounds."""
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if args and all(isinstance(a, str) for a in args):
        return "|".join(args)
    if args:  # an optional value: what it takes when given
        return "a Kraken error string, e.g. EService:Busy"
    bounds = [
        f"{symbol}{getattr(m, name)}"
        for m in metadata
        for name, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
        if getattr(m, name, None) is not None
    ]
    kind = {"Decimal": "number", "float": "number", "int": "whole number"}.get(
        getattr(annotation, "__name__", ""), str(annotation)
    )
    return " ".join([kind, *bounds])


# --- rules --------------------------------------------------------------------


class FaultRule(BaseModel):
    """One line of a fault schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    fault: str
    endpoint: str = ANY_ENDPOINT
    """A method name (AddOrder, QueryOrders, Ticker...) or "*" for any."""
    match: Role = "any"
    """The AddOrder role it hits: entry (market, limit), stop_loss, take_profit, or any."""
    probability: float = Field(1.0, ge=0, le=1)
    nth: int | None = Field(None, ge=1)
    """Fire from the n-th matching call on (1 = the first)."""
    times: int | None = Field(None, ge=1)
    """At most this many injections; None: no limit."""
    params: dict[str, Any] = Field(default_factory=dict)
    active_from: float | None = None
    """Exchange time (epoch seconds) from which the rule may fire; None: from the start."""
    active_until: float | None = None
    """Exchange time from which it no longer fires; None: never stops."""

    @model_validator(mode="before")
    @classmethod
    def _fault_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("fault") in CATALOG:
            defaults = CATALOG[data["fault"]].defaults
            return {"endpoint": defaults.endpoint, "match": defaults.match, "times": defaults.times, **data}
        return data

    @field_validator("endpoint")
    @classmethod
    def _known_endpoint(cls, endpoint: str) -> str:
        """A method the sandbox serves, a stream (ws:<channel>) or any: a misspelt one
        (AddOrdr) would make a rule that never fires."""
        if endpoint == ANY_ENDPOINT or endpoint.startswith("ws:"):
            return endpoint
        from simulator.urls import PRIVATE, PUBLIC  # the routes' handlers: not needed to import the catalog

        methods = sorted({path.rsplit("/", 1)[-1] for path in (*PUBLIC, *PRIVATE)})
        if endpoint not in methods:
            close = difflib.get_close_matches(endpoint, methods, n=1)
            hint = f"did you mean {close[0]}?" if close else "give a Kraken method name (AddOrder, QueryOrders...) or *"
            raise ValueError(f"{endpoint!r} is no method the sandbox serves; {hint}")
        return endpoint

    @model_validator(mode="after")
    def _a_window_that_opens(self) -> FaultRule:
        """active_until at or before active_from leaves no time to fire in."""
        if self.active_from is not None and self.active_until is not None and self.active_until <= self.active_from:
            raise ValueError(
                f"active_until {self.active_until:g} is not after active_from {self.active_from:g}, so the rule "
                "would never fire"
            )
        return self

    @model_validator(mode="after")
    def _known_fault(self) -> FaultRule:
        if self.fault not in CATALOG:
            raise ValueError(f"unknown fault {self.fault!r}; known: {', '.join(CATALOG)}")
        CATALOG[self.fault].params_model.model_validate(self.params)
        return self

    def matches(self, call: Call) -> bool:
        if self.endpoint not in (ANY_ENDPOINT, call.method):
            return False
        now = call.exchange.now()
        if (self.active_from is not None and now < self.active_from) or (
            self.active_until is not None and now >= self.active_until
        ):
            return False
        return self.match == "any" or self.match == call.role


_RULE_FIELDS = frozenset({"endpoint", "match", "probability", "nth", "times", "active_from", "active_until"})


def parse_spec(spec: str) -> FaultRule:
    """A rule from a CLI spec: `NAME` or `NAME:key=value,...`, where the keys are the
    rule's fields (endpoint, match, probability, nth, times,
    active_from, active_until) or the fault's params."""
    name, _, rest = spec.strip().partition(":")
    fields: dict[str, Any] = {"fault": name}
    params: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise FaultSpecError(f"fault spec {spec!r}: {item!r} is not key=value")
        (fields if key.strip() in _RULE_FIELDS else params)[key.strip()] = value.strip()
    fields["params"] = params
    return _rule(fields, spec)


def _rule(data: object, source: str) -> FaultRule:
    if isinstance(data, str):
        return parse_spec(data)
    try:
        return FaultRule.model_validate(data)
    except ValidationError as exc:
        raise FaultSpecError(f"fault {source}: {_first_error(exc)}{_valid_options(data)}") from None


def _valid_options(data: object) -> str:
    """The options the rule's fault takes, to say next to a refused one."""
    name = data.get("fault") if isinstance(data, dict) else None
    if not isinstance(name, str) or name not in CATALOG:
        return ""
    own = [
        f"{o.name} ({o.accepts}{', default ' + o.default if o.default else ''})"
        for o in option_docs(CATALOG[name].params_model)
    ]
    return f"; {name} takes " + ", ".join(own + [o.name for o in rule_option_docs()])


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    if error["type"] == "extra_forbidden":
        return f"unknown option {loc[-1]!r}"
    where = ".".join(part for part in loc if part != "params")
    return f"option {where}: {error['msg']}" if where else str(error["msg"])


def parse_rules(items: list[object]) -> list[FaultRule]:
    """Rules given as objects or CLI specs."""
    return [_rule(item, f"#{index + 1}") for index, item in enumerate(items)]


def load_plan(path: Path) -> tuple[int | None, list[FaultRule]]:
    """The seed (if given) and the rules of a fault file: JSON or TOML (by suffix),
    `{"seed": 7, "rules": [{"fault": "stop-fail"}, "latency:seconds=3"]}` or, in TOML,
    `seed = 7` and `[[rules]]` tables. A JSON file may be a bare list of rules."""
    try:
        text = path.read_text(encoding="utf-8")
        document = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise FaultSpecError(f"cannot read the fault file {path}: {exc}") from exc
    except RecursionError:
        raise FaultSpecError(f"cannot read the fault file {path}: nested too deep") from None
    if isinstance(document, list):
        document = {"rules": document}
    if not isinstance(document, dict) or not isinstance(document.get("rules", []), list):
        raise FaultSpecError(f"{path}: expected a list of rules or a table with 'rules'")
    seed = document.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise FaultSpecError(f"{path}: seed must be an integer")
    return seed, parse_rules(document.get("rules", []))


# --- the schedule -------------------------------------------------------------


@dataclass
class _RuleState:
    id: int
    rng: random.Random
    params: Any
    """The rule's params as its fault's model: validated once, not on every firing."""
    seen: int = 0
    fired: int = 0


@dataclass
class _Firing:
    rule: FaultRule
    params: Any
    entry: FaultLogEntry


@dataclass
class FaultSchedule:
    """The rules in force, their ids, occurrence counts and RNGs, the orders they hide
    and the log of what they injected. A rule's id is its place in the order rules were
    added (0, 1, ...), kept when others are removed: the log names rules by id."""

    seed: int = 0
    rules: list[FaultRule] = field(default_factory=list)
    log: list[FaultLogEntry] = field(default_factory=list)
    _states: list[_RuleState] = field(default_factory=list, repr=False)
    _hidden: dict[str, float] = field(default_factory=dict, repr=False)
    _next_id: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self._states = [self._fresh_state(i, r) for i, r in enumerate(self.rules)]
        self._next_id = len(self.rules)

    @property
    def ids(self) -> list[int]:
        """The id of each rule in `rules`, in the same order."""
        return [state.id for state in self._states]

    def add(self, *rules: FaultRule) -> list[int]:
        """Install `rules`; their ids come back."""
        added = []
        for rule in rules:
            self.rules.append(rule)
            self._states.append(self._fresh_state(self._next_id, rule))
            added.append(self._next_id)
            self._next_id += 1
        return added

    def remove(self, rule_id: int) -> FaultRule:
        """Take out the rule `rule_id`; what it did stays in the log. KeyError: no such rule."""
        index = self.ids.index(rule_id) if rule_id in self.ids else None
        if index is None:
            raise KeyError(rule_id)
        del self._states[index]
        return self.rules.pop(index)

    def clear(self) -> None:
        """Remove every rule; what they did stays in the log."""
        self.rules.clear()
        self._states.clear()

    def reseed(self, seed: int) -> None:
        """Start the rules over with `seed`: counts and RNGs anew, log and hidden orders cleared."""
        self.seed = seed
        self.rewind()

    def rewind(self) -> None:
        self._states = [self._fresh_state(state.id, rule) for state, rule in zip(self._states, self.rules)]
        self._hidden.clear()
        self.log.clear()

    def rule_dicts(self) -> list[dict[str, Any]]:
        """The rules in force as JSON objects, each with its id."""
        return [{"id": rid, **rule.model_dump(mode="json")} for rid, rule in zip(self.ids, self.rules)]

    def hide(self, txid: str, until: float) -> None:
        self._hidden[txid] = until

    def hidden(self, txid: str, now: float) -> bool:
        return self._hidden.get(txid, -math.inf) > now

    def _fresh_state(self, rule_id: int, rule: FaultRule) -> _RuleState:
        params = CATALOG[rule.fault].params_model.model_validate(rule.params)
        return _RuleState(rule_id, random.Random(f"{self.seed}:{rule_id}:{rule.fault}"), params)

    def _fires(self, index: int, call: Call) -> bool:
        rule, state = self.rules[index], self._states[index]
        if not rule.matches(call) or not CATALOG[rule.fault].meets(call):
            return False
        state.seen += 1
        if rule.nth is not None and state.seen < rule.nth:
            return False
        if rule.times is not None and state.fired >= rule.times:
            return False
        if rule.probability < 1 and state.rng.random() >= rule.probability:
            return False
        state.fired += 1
        return True

    async def before(self, call: Call) -> list[_Firing]:
        """Fire the rules that hit `call` and run their before-effects. A refusal is
        logged and raised; the firings are returned for `after` and `finish`."""
        firings: list[_Firing] = []
        for index, rule in enumerate(list(self.rules)):
            if not self._fires(index, call):
                continue
            fault = CATALOG[rule.fault]
            firing = _Firing(
                rule,
                self._states[index].params,
                FaultLogEntry(
                    time=call.exchange.now(),
                    fault=rule.fault,
                    rule=self._states[index].id,
                    endpoint=call.method,
                    effect="",
                    role=call.role,
                    txid=_name(call.params, "txid"),
                    cl_ord_id=_name(call.params, "cl_ord_id"),
                    userref=_name(call.params, "userref"),
                ),
            )
            self.log.append(firing.entry)
            firings.append(firing)
            try:
                firing.entry.effect = await fault.before(call, firing.params, self) or ""
            except KrakenError as exc:
                firing.entry.effect = f"refused with {exc.wire}"
                self.finish(firings, exc.wire)
                raise
            except DroppedConnection:
                firing.entry.effect = "connection dropped"
                self.finish(firings, "connection dropped")
                raise
        return firings

    def after(self, call: Call, firings: list[_Firing], result: dict[str, Any]) -> dict[str, Any]:
        """Run the after-effects on the handler's result; a lost answer is logged and raised."""
        _attribute(call, firings, result)
        for firing in firings:
            fault = CATALOG[firing.rule.fault]
            try:
                effect = fault.after(call, firing.params, result, self)
            except KrakenError as exc:
                firing.entry.effect = f"handled, answered {exc.wire}"
                self.finish(firings, exc.wire)
                raise
            except LostResponse as lost:
                firing.entry.effect = f"handled, answer lost ({lost.variant})"
                self.finish(firings, "response lost")
                raise
            except DroppedConnection:
                firing.entry.effect = "connection dropped"
                self.finish(firings, "connection dropped")
                raise
            if effect:
                firing.entry.effect = "; ".join(filter(None, (firing.entry.effect, effect)))
        _attribute(call, firings, result)
        return result

    def finish(self, firings: list[_Firing], outcome: str) -> None:
        for firing in firings:
            firing.entry.outcome = outcome

    def filter_visible(self, call: Call, result: dict[str, Any]) -> dict[str, Any]:
        """Take the orders the faults hide out of a query's result."""
        if call.method not in _QUERY_METHODS or not self._hidden:
            return result
        now = call.exchange.now()
        if call.method == "QueryOrders":
            asked = call.params.get("txid")
            if isinstance(asked, str) and any(self.hidden(t, now) for t in asked.split(",")):
                raise InvalidOrder()
            return {txid: order for txid, order in result.items() if not self.hidden(txid, now)}
        key = "open" if call.method == "OpenOrders" else "closed"
        shown = {txid: order for txid, order in result[key].items() if not self.hidden(txid, now)}
        filtered = {**result, key: shown}
        if "count" in result:
            filtered["count"] = result["count"] - (len(result[key]) - len(shown))
        return filtered

    def log_dicts(self) -> list[dict[str, Any]]:
        return [entry.as_dict() for entry in self.log]


def _attribute(call: Call, firings: list[_Firing], result: dict[str, Any]) -> None:
    """Name the order an AddOrder placed in the log entries of the faults it met."""
    for txid in result.get("txid", []) if call.method == "AddOrder" else []:
        for firing in firings:
            firing.entry.txid = txid


def _name(params: dict[str, object], key: str) -> str | None:
    """An identifier a call carries, for the log."""
    value = params.get(key)
    return None if value is None else str(value)
