"""How the exchange's failures become core.domain.errors: Kraken's error strings, and the
failures of the wire itself (timeouts, dropped connections, HTTP error pages).

The table `_KRAKEN_ERRORS` is the one place that says what each error string means,
on a read and on a call that changes orders (ORDER_METHODS): the exception's class
says whether retrying cannot help (Permanent...), the exchange did not act and a retry
after a wait may succeed (Transient...), or it may have acted and the order must be
looked up before anything is resent (Ambiguous...). EService:Unavailable on a read
only means "try later", but on AddOrder the order may have been placed. Every
exception carries the method it answered and, where Kraken gave one, its error string.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from core.domain.errors import (
    AmbiguousExchangeError,
    AuthenticationError,
    ConnectionLostError,
    CostMinimumNotMetError,
    DuplicateOrderError,
    ExchangeError,
    ExchangeInternalError,
    ExchangeTimeoutError,
    InsufficientFundsError,
    InvalidArgumentsError,
    InvalidNonceError,
    InvalidOrderError,
    OrderMinimumNotMetError,
    OrderRateLimitExceededError,
    PermanentExchangeError,
    RateLimitExceededError,
    ServiceBusyError,
    ServiceUnavailableError,
    UnknownAssetPairError,
    UnknownMethodError,
    UnknownOrderError,
)

ORDER_METHODS = frozenset(
    {
        "AddOrder",
        "AddOrderBatch",
        "AmendOrder",
        "EditOrder",
        "CancelOrder",
        "CancelOrderBatch",
        "CancelAll",
        "CancelAllOrdersAfter",
    }
)
"""Methods that change orders: a failure without a clear refusal may have acted, so
the client never resends one on its own (only its caller can tell, by client order id),
except the RESENDABLE ones."""

RESENDABLE_ORDER_METHODS = frozenset({"CancelOrder", "CancelOrderBatch", "CancelAll", "CancelAllOrdersAfter"})
"""Order methods whose repeat changes nothing the first did not: a cancel sent twice
cancels once (the second answers that the order is gone). The client resends these on
a transient or lost answer, as it does reads, so that a busy exchange cannot leave a
stop live behind a position that closed."""

_LOOK_BEFORE_RESENDING = (
    "the exchange may have acted: look the order up (QueryOrders/OpenOrders by txid, "
    "cl_ord_id or userref) before resending"
)


@dataclass(frozen=True)
class _Mapping:
    """What one Kraken error string means: the exception on a read, the one on a call
    that changes orders (where "the exchange failed" may mean it acted), and advice."""

    error_class: type[ExchangeError]
    advice: str
    on_order_methods: type[ExchangeError] | None = None
    """None: the same as on a read."""


_INVALID_ARGUMENTS = "EGeneral:Invalid arguments"
_INVALID_PRICE = "EOrder:Invalid price"

_KRAKEN_ERRORS: dict[str, _Mapping] = {
    "EAPI:Invalid key": _Mapping(
        AuthenticationError, "check TG_KRAKEN_API_KEY, and that the key still exists on Kraken"
    ),
    "EAPI:Invalid signature": _Mapping(
        AuthenticationError,
        "check that TG_KRAKEN_API_SECRET is the private key of TG_KRAKEN_API_KEY",
    ),
    "EGeneral:Permission denied": _Mapping(
        AuthenticationError,
        "grant the API key the permission this call needs in Kraken's API settings",
    ),
    "EAPI:Invalid nonce": _Mapping(
        InvalidNonceError,
        "another client may be using the same API key; give each process its own key",
    ),
    "EAPI:Rate limit exceeded": _Mapping(RateLimitExceededError, "wait before sending more requests"),
    "EGeneral:Too many requests": _Mapping(RateLimitExceededError, "wait before sending more requests"),
    "EOrder:Rate limit exceeded": _Mapping(
        OrderRateLimitExceededError, "wait before placing or cancelling more orders on this pair"
    ),
    "EOrder:Orders limit exceeded": _Mapping(
        PermanentExchangeError,
        "Kraken caps the open orders per pair: cancel some of this pair's open orders first",
    ),
    "EService:Busy": _Mapping(ServiceBusyError, "retry after a short wait"),
    "EService:Unavailable": _Mapping(
        ServiceUnavailableError, "retry after a wait", on_order_methods=ExchangeInternalError
    ),
    "EGeneral:Internal error": _Mapping(ExchangeInternalError, "retry after a wait"),
    "EGeneral:Unknown method": _Mapping(UnknownMethodError, "check the base URL points at Kraken's REST API"),
    "EQuery:Unknown asset pair": _Mapping(UnknownAssetPairError, "name a pair Kraken lists (see AssetPairs)"),
    "EOrder:Insufficient funds": _Mapping(InsufficientFundsError, "reduce the volume or fund the account"),
    "EOrder:Unknown order": _Mapping(UnknownOrderError, "check the txid or client order id"),
    "EOrder:Invalid order": _Mapping(InvalidOrderError, "check the order's type, prices and flags"),
    "EOrder:Duplicate order": _Mapping(
        DuplicateOrderError, "an open order already has this client order id: look it up by it"
    ),
    "EOrder:Order minimum not met": _Mapping(
        OrderMinimumNotMetError, "raise the volume to at least the pair's ordermin"
    ),
    "EOrder:Cost minimum not met": _Mapping(
        CostMinimumNotMetError, "raise volume x price to at least the pair's costmin"
    ),
    _INVALID_ARGUMENTS: _Mapping(InvalidArgumentsError, "fix the named argument"),
    _INVALID_PRICE: _Mapping(InvalidOrderError, "round the price to the pair's tick (its pair_decimals in AssetPairs)"),
}
_DETAILED = (_INVALID_ARGUMENTS, _INVALID_PRICE)
"""Errors Kraken follows with a detail after a colon (the argument, or why the price)."""

_UNKNOWN = _Mapping(PermanentExchangeError, "see Kraken's API documentation for this error")


def _lookup(error: str) -> tuple[str, _Mapping]:
    if error in _KRAKEN_ERRORS:
        return error, _KRAKEN_ERRORS[error]
    for code in _DETAILED:
        if error.startswith(code + ":"):
            return code, _KRAKEN_ERRORS[code]
    return error, _UNKNOWN


def exception_for(error: str, *, method: str) -> ExchangeError:
    """The exception for one Kraken error string answered to `method` (e.g. "AddOrder")."""
    _, mapping = _lookup(error)
    order_call = method in ORDER_METHODS
    error_class = (mapping.on_order_methods if order_call else None) or mapping.error_class
    if order_call and issubclass(error_class, AmbiguousExchangeError):
        advice = _LOOK_BEFORE_RESENDING
    else:
        advice = mapping.advice
    return error_class(f"Kraken answered {error} to {method}; {advice}", method=method, kraken_error=error)


def exception_for_transport(exc: httpx.TransportError, *, method: str, timeout_s: float) -> AmbiguousExchangeError:
    """The exception for a request that got no answer at all."""
    if isinstance(exc, httpx.TimeoutException):
        return ExchangeTimeoutError(
            f"Kraken did not answer {method} within {timeout_s:g}s; {_advice_when_unsure(method)}", method=method
        )
    return ConnectionLostError(
        f"the connection to Kraken failed during {method} ({type(exc).__name__}); {_advice_when_unsure(method)}",
        method=method,
    )


def exception_for_http_status(status_code: int, *, method: str, is_json: bool) -> ExchangeError:
    """The exception for an HTTP error answer, or a body that is not Kraken's JSON,
    when it carries no Kraken error string."""
    if status_code == 429:
        return RateLimitExceededError(
            f"Kraken answered HTTP 429 to {method}; wait before sending more requests", method=method
        )
    if 400 <= status_code < 500:
        return PermanentExchangeError(
            f"Kraken answered HTTP {status_code} to {method}; check the base URL and the request", method=method
        )
    what = f"HTTP {status_code}" + ("" if is_json else " with a non-JSON body (an error page)")
    return ExchangeInternalError(f"Kraken answered {what} to {method}; {_advice_when_unsure(method)}", method=method)


def exception_for_malformed(detail: str, *, method: str) -> ExchangeInternalError:
    """The exception for an answer that parsed but did not have Kraken's shape."""
    return ExchangeInternalError(
        f"Kraken's answer to {method} did not have the expected shape ({detail}); {_advice_when_unsure(method)}",
        method=method,
    )


def _advice_when_unsure(method: str) -> str:
    if method in ORDER_METHODS:
        return _LOOK_BEFORE_RESENDING
    return "retry after a wait; if it persists, check the base URL and Kraken's status page"
