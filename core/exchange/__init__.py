"""tg's async client of Kraken's spot REST API."""

from core.exchange.call_costs import CallCosts
from core.exchange.client import AddOrderAck, ConditionalClose, KrakenClient
from core.exchange.errors import exception_for
from core.exchange.pairs import PairInfo
from core.exchange.signing import Credentials, NonceSource, sign
from core.exchange.wire import ExchangeOrder

__all__ = [
    "AddOrderAck",
    "CallCosts",
    "ConditionalClose",
    "Credentials",
    "ExchangeOrder",
    "KrakenClient",
    "NonceSource",
    "PairInfo",
    "exception_for",
    "sign",
]
