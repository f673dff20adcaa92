"""The order methods of WebSocket v2, each run as the REST call it stands for (add_order
is AddOrder, batch_cancel is CancelOrderBatch...), through the app's pipeline: the same
validation, the same trading rate counters, the same faults. One exchange, two wires.

Each method answers one or more results: cancel_order answers once per order it names.
A fault that loses the REST answer (ghost) loses the WebSocket answer too, while what
the call did (an order resting) stands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from simulator.exceptions import KrakenError
from simulator.exchange import Exchange
from simulator.faults import LostResponse
from simulator.websocket import tokens
from simulator.websocket.protocol import (
    ORDER_METHODS,
    AddOrder,
    AmendOrder,
    BatchAdd,
    BatchCancel,
    CancelAll,
    CancelAllAfter,
    CancelOrder,
    Conditional,
    EditOrder,
    Json,
    OrderRequest,
    PriceType,
    ProtocolError,
    Triggers,
    epoch,
    pair_of,
    read,
)

RestCall = Callable[[str, str, dict[str, object]], Awaitable[dict[str, Any]]]
"""(REST method, account, params) -> the REST result; raises as the REST call would."""

_ORDER_TYPES = {
    "limit": "limit",
    "iceberg": "limit",
    "market": "market",
    "stop-loss": "stop-loss",
    "stop-loss-limit": "stop-loss-limit",
    "take-profit": "take-profit",
    "take-profit-limit": "take-profit-limit",
    "trailing-stop": "trailing-stop",
}
"""v2's order types the sandbox's engine has (an iceberg is a limit order showing part)."""
_TRIGGERED = frozenset({"stop-loss", "stop-loss-limit", "take-profit", "take-profit-limit", "trailing-stop"})
_WORDS = {name: name.replace("_", " ") for name in ORDER_METHODS}


@dataclass(frozen=True)
class Outcome:
    """One answer of a method: its result, or Kraken's error text."""

    result: Any = None
    error: str | None = None


async def run(exchange: Exchange, rest: RestCall, method: str, params: Json) -> list[Outcome]:
    """The answers to order method `method`; a lost answer is left out."""
    try:
        request = read(ORDER_METHODS[method], params, _WORDS[method])
        account = tokens.redeem(exchange, request.token)
        plan = _plan(exchange, request)
    except ProtocolError as exc:
        return [Outcome(error=exc.message)]
    except KrakenError as exc:
        return [Outcome(error=exc.wire)]
    outcomes = []
    for rest_method, rest_params, shape in plan:
        try:
            result = await rest(rest_method, account, {"nonce": 0, **rest_params})
        except LostResponse:
            continue
        except KrakenError as exc:
            outcomes.append(Outcome(error=exc.wire))
            continue
        outcomes.append(Outcome(result=shape(result)))
    return outcomes


Shape = Callable[[dict[str, Any]], Any]


def _plan(exchange: Exchange, request: Any) -> list[tuple[str, dict[str, object], Shape]]:
    """The REST calls a method makes, each with how its result reads on v2."""
    if isinstance(request, AddOrder):
        pair = pair_of(request.symbol)
        params = {**_order(request), "pair": pair.key, "validate": request.validate_only}
        if request.deadline is not None:
            params["deadline"] = request.deadline
        return [("AddOrder", params, lambda result: _placed(request, (result.get("txid") or [None])[0]))]
    if isinstance(request, BatchAdd):
        pair = pair_of(request.symbol)
        params = {"pair": pair.key, "orders": [_order(o) for o in request.orders], "validate": request.validate_only}
        return [("AddOrderBatch", params, lambda result: _batch(request, result))]
    if isinstance(request, AmendOrder):
        return [("AmendOrder", _amend(request), lambda result: _amended(request, result))]
    if isinstance(request, EditOrder):
        return [("EditOrder", _edit(exchange, request), lambda result: _edited(request, result))]
    if isinstance(request, CancelOrder):
        return _cancels(request)
    if isinstance(request, CancelAll):
        return [("CancelAll", {}, lambda result: {"count": result["count"]})]
    if isinstance(request, CancelAllAfter):
        return [("CancelAllOrdersAfter", {"timeout": request.timeout}, lambda result: result)]
    assert isinstance(request, BatchCancel)
    params = {"orders": [str(o) for o in request.orders], "cl_ord_ids": request.cl_ord_id or []}
    return [("CancelOrderBatch", params, lambda result: {"count": result["count"]})]


def _order(order: OrderRequest) -> dict[str, object]:
    """One v2 order as AddOrder's parameters."""
    kind = _ORDER_TYPES.get(order.order_type)
    if kind is None:
        raise ProtocolError("EGeneral:Invalid arguments:order_type")
    if order.margin:
        raise ProtocolError("EGeneral:Invalid arguments:margin")
    if order.order_qty is None:
        raise ProtocolError("EGeneral:Invalid arguments:order_qty")
    params: dict[str, object] = {"type": str(order.side), "ordertype": kind, "volume": order.order_qty}
    if order.order_type in _TRIGGERED:
        if order.triggers is None:
            raise ProtocolError("EGeneral:Invalid arguments:triggers")
        params["price"] = _trigger(order.triggers, trailing=order.order_type == "trailing-stop")
        if kind.endswith("-limit"):
            params["price2"] = _limit(order.limit_price, order.limit_price_type)
    elif kind == "limit":
        params["price"] = _limit(order.limit_price, order.limit_price_type)
    if order.order_type == "iceberg" and order.display_qty is not None:
        params["displayvol"] = order.display_qty
    flags = [
        flag
        for flag, wanted in (
            ("post", order.post_only),
            ("fcib", order.fee_preference == "base"),
            ("fciq", order.fee_preference == "quote"),
            ("nompp", order.no_mpp),
        )
        if wanted
    ]
    if flags:
        params["oflags"] = ",".join(flags)
    params["timeinforce"] = order.time_in_force.upper()
    if order.effective_time is not None:
        params["starttm"] = str(epoch(order.effective_time, "effective_time"))
    if order.expire_time is not None:
        params["expiretm"] = str(epoch(order.expire_time, "expire_time"))
    if order.order_userref is not None:
        params["userref"] = order.order_userref
    if order.cl_ord_id is not None:
        params["cl_ord_id"] = order.cl_ord_id
    if order.reduce_only:
        params["reduce_only"] = True
    if order.conditional is not None:
        params.update(_close(order.conditional))
    return params


def _relative(value: Decimal, price_type: PriceType) -> str:
    """A price relative to the last trade, in REST's notation: +5, -2.5%."""
    sign = "-" if value < 0 else "+"
    return f"{sign}{abs(value):f}{'%' if price_type == 'pct' else ''}"


def _static(value: Decimal, field: str) -> Decimal:
    """A price as it is: REST reads a price written "-1" as 1 below the last trade, so a
    static price must be positive or it would place or move an order near the market."""
    if value <= 0:
        raise ProtocolError(f"EGeneral:Invalid arguments:{field}")
    return value


def _limit(value: Decimal | None, price_type: PriceType, field: str = "limit_price") -> object:
    if value is None:
        raise ProtocolError(f"EGeneral:Invalid arguments:{field}")
    return _price(value, price_type, field)


def _trigger(triggers: Triggers, *, trailing: bool) -> object:
    if trailing:
        if triggers.price_type == "static":
            raise ProtocolError("EGeneral:Invalid arguments:triggers.price_type")
        return _relative(abs(triggers.price), triggers.price_type)
    return _price(triggers.price, triggers.price_type, "triggers.price")


def _price(value: Decimal, price_type: PriceType, field: str) -> object:
    """REST's form of a v2 price: as it is if static, else relative to the last trade."""
    return _static(value, field) if price_type == "static" else _relative(value, price_type)


def _close(conditional: Conditional) -> dict[str, object]:
    kind = _ORDER_TYPES.get(conditional.order_type)
    if kind is None or kind == "trailing-stop":
        raise ProtocolError("EGeneral:Invalid arguments:conditional.order_type")
    params: dict[str, object] = {"close[ordertype]": kind}
    trigger, limit = conditional.trigger_price, conditional.limit_price
    if conditional.order_type in _TRIGGERED:
        if trigger is not None:
            params["close[price]"] = _price(trigger, conditional.trigger_price_type, "conditional.trigger_price")
        if kind.endswith("-limit") and limit is not None:
            params["close[price2]"] = _limit(limit, conditional.limit_price_type, "conditional.limit_price")
    elif limit is not None:
        params["close[price]"] = _limit(limit, conditional.limit_price_type, "conditional.limit_price")
    return params


def _amend(request: AmendOrder) -> dict[str, object]:
    params: dict[str, object] = {"post_only": request.post_only}
    names = {"txid": request.order_id, "cl_ord_id": request.cl_ord_id, "order_qty": request.order_qty}
    params.update({name: value for name, value in names.items() if value is not None})
    if request.limit_price is not None:
        params["limit_price"] = _limit(request.limit_price, request.limit_price_type)
    if request.trigger_price is not None:
        params["trigger_price"] = _price(request.trigger_price, request.trigger_price_type, "trigger_price")
    if request.display_qty is not None:
        params["display_qty"] = request.display_qty
    return params


def _edit(exchange: Exchange, request: EditOrder) -> dict[str, object]:
    """EditOrder's parameters: `price` is a limit order's limit or a stop's trigger,
    `price2` a stop-limit's limit, so the order's own type decides where limit_price goes."""
    params: dict[str, object] = {
        "txid": request.order_id,
        "pair": pair_of(request.symbol).key,
        "validate": request.validate_only,
    }
    if request.order_qty is not None:
        params["volume"] = request.order_qty
    target = exchange.order(request.order_id)
    triggered = target is not None and target.spec.ordertype.is_trigger
    if request.triggers is not None:
        params["price"] = _trigger(request.triggers, trailing=False)
    if request.limit_price is not None:
        params["price2" if triggered else "price"] = _static(request.limit_price, "limit_price")
    flags = [
        flag
        for flag, wanted in (
            ("post", request.post_only is True),
            ("fcib", request.fee_preference == "base"),
            ("fciq", request.fee_preference == "quote"),
            ("nompp", request.no_mpp),
        )
        if wanted
    ]
    if flags:
        params["oflags"] = ",".join(flags)
    if request.order_userref is not None:
        params["userref"] = request.order_userref
    return params


def _cancels(request: CancelOrder) -> list[tuple[str, dict[str, object], Shape]]:
    """One CancelOrder per order named, each answered with the name it was given."""
    named: list[tuple[dict[str, object], Json]] = [({"txid": t}, {"order_id": t}) for t in request.order_id or []]
    named += [({"cl_ord_id": c}, {"cl_ord_id": c}) for c in request.cl_ord_id or []]
    named += [({"txid": str(r)}, {"order_userref": r}) for r in request.order_userref or []]
    if not named:
        raise ProtocolError("EGeneral:Invalid arguments:order_id")
    return [("CancelOrder", params, _echo(answer)) for params, answer in named]


def _echo(answer: Json) -> Shape:
    return lambda _result: answer


def _placed(order: OrderRequest, txid: str | None) -> Json:
    result: Json = {} if txid is None else {"order_id": txid}
    if order.cl_ord_id is not None:
        result["cl_ord_id"] = order.cl_ord_id
    if order.order_userref is not None:
        result["order_userref"] = order.order_userref
    return result


def _batch(request: BatchAdd, result: dict[str, Any]) -> list[Json]:
    answers = []
    for order, placed in zip(request.orders, result["orders"]):
        if "error" in placed:
            answers.append({"error": placed["error"]})
        else:
            answers.append(_placed(order, placed.get("txid")))
    return answers


def _amended(request: AmendOrder, result: dict[str, Any]) -> Json:
    answer: Json = {"amend_id": result["amend_id"]}
    if request.order_id is not None:
        answer["order_id"] = request.order_id
    if request.cl_ord_id is not None:
        answer["cl_ord_id"] = request.cl_ord_id
    return answer


def _edited(request: EditOrder, result: dict[str, Any]) -> Json:
    return {"order_id": result.get("txid", request.order_id), "original_order_id": result["originaltxid"]}
