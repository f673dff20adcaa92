"""The one exception tree of tg. Every error tg raises on purpose is a TgError.

    TgError
    ├── ConfigError                 unreadable or invalid configuration
    ├── InputError                  bad user input (unknown symbol, bad volume...)
    ├── StorageError                the database refused or failed
    │   └── DatabaseWriteError      a write failed (the pending-writes spool takes it)
    ├── ModelError                  a language model failed to answer usefully
    ├── TaskTimeoutError            a coordinator task outran its time limit
    ├── RateLimiterError            a limiter request that can never be served
    ├── UnsafeActionError           refused: it would strand tg's money or records
    ├── BusyError                   another tg process holds what this one needs
    └── ExchangeError               anything the exchange said or failed to say
        ├── PermanentExchangeError  retrying cannot help
        │   ├── AuthenticationError        EAPI:Invalid key / Invalid signature
        │   ├── InvalidArgumentsError      EGeneral:Invalid arguments[:field]
        │   ├── UnknownMethodError         EGeneral:Unknown method
        │   ├── UnknownAssetPairError      EQuery:Unknown asset pair
        │   ├── InsufficientFundsError     EOrder:Insufficient funds
        │   ├── UnknownOrderError          EOrder:Unknown order
        │   ├── InvalidOrderError          EOrder:Invalid order
        │   ├── DuplicateOrderError        EOrder:Duplicate order (cl_ord_id of an open order)
        │   ├── OrderMinimumNotMetError    EOrder:Order minimum not met
        │   └── CostMinimumNotMetError     EOrder:Cost minimum not met
        ├── TransientExchangeError  the exchange did not act; retry after a wait
        │   ├── RateLimitExceededError     EAPI:Rate limit exceeded, EGeneral:Too many requests
        │   │   └── OrderRateLimitExceededError   EOrder:Rate limit exceeded
        │   ├── ServiceBusyError           EService:Busy
        │   ├── ServiceUnavailableError    EService:Unavailable (on reads)
        │   └── InvalidNonceError          EAPI:Invalid nonce
        └── AmbiguousExchangeError  the exchange may have acted: look before resending
            ├── ExchangeTimeoutError       no answer in time
            ├── ConnectionLostError        the connection dropped mid-request
            └── ExchangeInternalError      EGeneral:Internal error, HTML 5xx pages,
                                           EService:Unavailable on AddOrder/CancelOrder

Messages say what happened and what to do about it.
"""

from __future__ import annotations


class TgError(Exception):
    """Base of every error tg raises on purpose."""


class ConfigError(TgError):
    """Configuration could not be read or is invalid."""


class InputError(TgError):
    """The user asked for something that cannot be done as asked."""


class StorageError(TgError):
    """The database failed."""


class DatabaseWriteError(StorageError):
    """A write to the database failed."""


class ModelError(TgError):
    """A language model failed to give a usable answer."""


class TaskTimeoutError(TgError):
    """A coordinator task did not finish within its time limit."""


class RateLimiterError(TgError):
    """A rate-limiter request that could never be served."""


class UnsafeActionError(TgError):
    """tg refused to do something that would lose track of positions or orders."""


class BusyError(TgError):
    """Another tg process is in the middle of work this one would disturb."""


class ExchangeError(TgError):
    """Something the exchange said, or failed to say, with its context, as httpx's
    errors carry their request: the `method` called, the exchange's own error string
    (`kraken_error`, when there is one), and the order the call named (`txid` or
    `cl_ord_id`), so a caller decides without parsing the message.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        kraken_error: str | None = None,
        txid: str | None = None,
        cl_ord_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.kraken_error = kraken_error
        self.txid = txid
        self.cl_ord_id = cl_ord_id

    def add_context(self, *, method: str, txid: str | None = None, cl_ord_id: str | None = None) -> None:
        """What the call was, for an error raised where only the answer was known."""
        self.method = self.method or method
        self.txid = self.txid or txid
        self.cl_ord_id = self.cl_ord_id or cl_ord_id


class PermanentExchangeError(ExchangeError):
    """The exchange refused; sending the same request again cannot help."""


class AuthenticationError(PermanentExchangeError):
    """The API key or signature was refused."""


class InvalidArgumentsError(PermanentExchangeError):
    """The exchange refused an argument of the request."""


class UnknownMethodError(PermanentExchangeError):
    """The exchange does not know the endpoint."""


class UnknownAssetPairError(PermanentExchangeError):
    """The exchange does not list the pair."""


class InsufficientFundsError(PermanentExchangeError):
    """The account's balance cannot cover the order."""


class UnknownOrderError(PermanentExchangeError):
    """The exchange does not know the order."""


class InvalidOrderError(PermanentExchangeError):
    """The exchange refused the order as invalid."""


class DuplicateOrderError(PermanentExchangeError):
    """An open order already carries this client order id: the order was placed before."""


class OrderMinimumNotMetError(PermanentExchangeError):
    """The order volume is below the pair's minimum."""


class CostMinimumNotMetError(PermanentExchangeError):
    """The order cost is below the pair's minimum."""


class TransientExchangeError(ExchangeError):
    """The exchange did not act; the same request may succeed after a wait."""


class RateLimitExceededError(TransientExchangeError):
    """The exchange's rate counter for this key is over its limit."""


class OrderRateLimitExceededError(RateLimitExceededError):
    """The exchange's trading counter for this pair is over its limit."""


class ServiceBusyError(TransientExchangeError):
    """The exchange is busy."""


class ServiceUnavailableError(TransientExchangeError):
    """The exchange is unavailable."""


class InvalidNonceError(TransientExchangeError):
    """The nonce was not above the last one the exchange saw for this key."""


class AmbiguousExchangeError(ExchangeError):
    """The exchange may or may not have acted: look the order up before resending."""


class ExchangeTimeoutError(AmbiguousExchangeError):
    """No answer arrived in time."""


class ConnectionLostError(AmbiguousExchangeError):
    """The connection dropped before an answer arrived."""


class ExchangeInternalError(AmbiguousExchangeError):
    """The exchange failed internally (or answered with an HTML error page)."""
