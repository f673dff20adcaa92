"""Kraken's error strings as exceptions: a handler raises one and the app puts its
string in the response envelope, so every refusal reads exactly as Kraken's would.

The simulator has its own errors, not tg's: it plays the exchange, and sharing tg's
error tree would let a misunderstanding of Kraken hide on both sides.
"""

from __future__ import annotations

from typing import ClassVar


class KrakenError(Exception):
    """An error Kraken reports in the `error` list of its envelope.

    `detail` is appended after a colon, as Kraken does for
    "EGeneral:Invalid arguments:volume".
    """

    code: ClassVar[str] = "EGeneral:Internal error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(self.wire)

    @property
    def wire(self) -> str:
        return self.code if self.detail is None else f"{self.code}:{self.detail}"


class InvalidKey(KrakenError):
    code = "EAPI:Invalid key"


class InvalidSignature(KrakenError):
    code = "EAPI:Invalid signature"


class InvalidNonce(KrakenError):
    code = "EAPI:Invalid nonce"


class ApiRateLimitExceeded(KrakenError):
    code = "EAPI:Rate limit exceeded"


class OrderRateLimitExceeded(KrakenError):
    code = "EOrder:Rate limit exceeded"


class OrdersLimitExceeded(KrakenError):
    """Too many open orders in one pair for the account's tier."""

    code = "EOrder:Orders limit exceeded"


class TooManyRequests(KrakenError):
    code = "EGeneral:Too many requests"


class ServiceUnavailable(KrakenError):
    code = "EService:Unavailable"


class MarketInCancelOnly(KrakenError):
    code = "EService:Market in cancel_only mode"


class MarketInPostOnly(KrakenError):
    code = "EService:Market in post_only mode"


class ServiceBusy(KrakenError):
    code = "EService:Busy"


class InternalError(KrakenError):
    code = "EGeneral:Internal error"


class InsufficientFunds(KrakenError):
    code = "EOrder:Insufficient funds"


class UnknownOrder(KrakenError):
    code = "EOrder:Unknown order"


class InvalidOrder(KrakenError):
    code = "EOrder:Invalid order"


class InvalidPrice(KrakenError):
    """A price Kraken will not take, its detail saying why in Kraken's words."""

    code = "EOrder:Invalid price"

    @classmethod
    def too_many_decimals(cls, pair_key: str, decimals: int) -> InvalidPrice:
        """Kraken's answer to a price past the pair's pair_decimals, word for word
        ("XXBTZUSD price can only be specified up to 1 decimals.")."""
        return cls(f"{pair_key} price can only be specified up to {decimals} decimals.")


class DuplicateOrder(KrakenError):
    """An order's cl_ord_id is already used by an open order of the account."""

    code = "EOrder:Duplicate order"


class OrderMinimumNotMet(KrakenError):
    code = "EOrder:Order minimum not met"


class CostMinimumNotMet(KrakenError):
    code = "EOrder:Cost minimum not met"


class InvalidArguments(KrakenError):
    """The detail, when given, names the refused parameter."""

    code = "EGeneral:Invalid arguments"


class UnknownAssetPair(KrakenError):
    code = "EQuery:Unknown asset pair"


class UnknownAsset(KrakenError):
    code = "EQuery:Unknown asset"


class UnknownMethod(KrakenError):
    code = "EGeneral:Unknown method"


class PermissionDenied(KrakenError):
    code = "EGeneral:Permission denied"


class InvalidToken(KrakenError):
    """A WebSocket token that was never issued, has expired unused, or was revoked."""

    code = "EAPI:Invalid token"


class SandboxStateError(Exception):
    """The saved sandbox state cannot be read; it is not a Kraken error but the
    harness's own."""


class SandboxInUse(Exception):
    """Another process has the embedded sandbox open: it serves one process at a time."""


class ControlRefused(Exception):
    """The control plane (/_sandbox/) refused a call of the sandbox's Python client
    (simulator.client): `route` is what was called, `errors` Kraken's error strings
    it answered (e.g. ["EGeneral:Invalid arguments:pct"]), `status` the HTTP status
    (0: no answer at all)."""

    def __init__(self, route: str, errors: list[str], status: int = 200) -> None:
        self.route = route
        self.errors = errors
        self.status = status
        said = "; ".join(errors)
        super().__init__(said if status == 0 else f"the sandbox refused {route}: {said}")
