"""Kraken's trading modes, set through the control plane: what SystemStatus reports,
which trading calls each mode refuses, and (simulator.matching_engine) that nothing
matches outside "online".

    online       everything may be sent; orders match
    maintenance  no order entry and no cancels: EService:Unavailable
    cancel_only  cancels only: EService:Market in cancel_only mode
    post_only    cancels, and new orders that are post-only limits:
                 EService:Market in post_only mode for anything else (amends too)

Reads (balances, orders, trades, the market) answer in every mode. The public market
goes on moving and trading in every mode: it is a function of time, and its published
tape never changes (simulator.tape); only the sandbox's own orders stop matching.

Control plane (see simulator.control for who may call it):

    GET  /_sandbox/status   the trading mode
    POST /_sandbox/status   status=online|maintenance|cancel_only|post_only
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from simulator.exceptions import KrakenError, MarketInCancelOnly, MarketInPostOnly, ServiceUnavailable
from simulator.models import OrderFlag, OrderSpec, OrderType, SystemStatus
from simulator.params import Params, parse

if TYPE_CHECKING:
    from simulator.control import Sandbox

Json = dict[str, Any]

ORDER_ENTRY = frozenset({"AddOrder", "AddOrderBatch", "EditOrder", "AmendOrder"})
CANCELS = frozenset({"CancelOrder", "CancelOrderBatch", "CancelAll", "CancelAllOrdersAfter"})

_REFUSED: dict[SystemStatus, tuple[frozenset[str], type[KrakenError]]] = {
    SystemStatus.MAINTENANCE: (ORDER_ENTRY | CANCELS, ServiceUnavailable),
    SystemStatus.CANCEL_ONLY: (ORDER_ENTRY, MarketInCancelOnly),
    SystemStatus.POST_ONLY: (frozenset({"AmendOrder"}), MarketInPostOnly),
}
"""By mode other than online: the trading calls it refuses outright, and the error."""


def admit(status: SystemStatus, method: str) -> None:
    """Refuse the trading call `method` (an endpoint name) if `status` forbids it."""
    refused, error = _REFUSED.get(status, (frozenset(), KrakenError))
    if method in refused:
        raise error()


def admit_order(status: SystemStatus, spec: OrderSpec) -> None:
    """In post_only mode only post-only limit orders may be entered."""
    if status is SystemStatus.POST_ONLY and (
        spec.ordertype is not OrderType.LIMIT or OrderFlag.POST not in spec.oflags
    ):
        raise MarketInPostOnly()


class _StatusParams(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: SystemStatus


def show(sandbox: Sandbox, params: Params) -> Json:
    return {"status": str(sandbox.exchange.state.system_status)}


def change(sandbox: Sandbox, params: Params) -> Json:
    sandbox.exchange.set_system_status(parse(_StatusParams, params).status)
    return show(sandbox, params)


ROUTES: dict[tuple[str, str], Callable[[Sandbox, Params], Json]] = {
    ("GET", "/_sandbox/status"): show,
    ("POST", "/_sandbox/status"): change,
}
