"""Every way Kraken or the wire can fail becomes one core.domain.errors class, with the
ambiguity of order-changing calls kept."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import respx

from core.domain.enums import OrderType, Side
from core.domain.errors import (
    AmbiguousExchangeError,
    AuthenticationError,
    ConnectionLostError,
    CostMinimumNotMetError,
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
    TransientExchangeError,
    UnknownAssetPairError,
    UnknownMethodError,
    UnknownOrderError,
)
from core.exchange import KrakenClient, exception_for
from tests.exchange.kraken_fakes import API_KEY, SECRET, ok, refused

KRAKEN_ERRORS: list[tuple[str, type[ExchangeError]]] = [
    ("EAPI:Invalid key", AuthenticationError),
    ("EAPI:Invalid signature", AuthenticationError),
    ("EGeneral:Permission denied", AuthenticationError),
    ("EAPI:Invalid nonce", InvalidNonceError),
    ("EAPI:Rate limit exceeded", RateLimitExceededError),
    ("EGeneral:Too many requests", RateLimitExceededError),
    ("EOrder:Rate limit exceeded", OrderRateLimitExceededError),
    ("EOrder:Orders limit exceeded", PermanentExchangeError),
    ("EService:Busy", ServiceBusyError),
    ("EService:Unavailable", ServiceUnavailableError),
    ("EGeneral:Internal error", ExchangeInternalError),
    ("EOrder:Insufficient funds", InsufficientFundsError),
    ("EOrder:Unknown order", UnknownOrderError),
    ("EOrder:Invalid order", InvalidOrderError),
    ("EOrder:Order minimum not met", OrderMinimumNotMetError),
    ("EOrder:Cost minimum not met", CostMinimumNotMetError),
    ("EGeneral:Invalid arguments", InvalidArgumentsError),
    ("EGeneral:Invalid arguments:volume", InvalidArgumentsError),
    ("EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals.", InvalidOrderError),
    ("EQuery:Unknown asset pair", UnknownAssetPairError),
    ("EGeneral:Unknown method", UnknownMethodError),
]
ORDER_METHODS = ["AddOrder", "AddOrderBatch", "CancelOrder", "EditOrder", "AmendOrder"]
READ_METHODS = ["Balance", "QueryOrders", "OpenOrders", "Ticker", "AssetPairs"]


def assert_no_credentials_in(exc: BaseException) -> None:
    assert API_KEY not in str(exc) and SECRET not in str(exc)


@pytest.mark.parametrize(("error", "expected"), KRAKEN_ERRORS)
def test_each_kraken_error_maps_to_its_class_on_a_read(error: str, expected: type[ExchangeError]) -> None:
    exc = exception_for(error, method="Balance")
    assert type(exc) is expected
    assert exc.kraken_error == error
    assert f"Kraken answered {error} to Balance; " in str(exc)


@pytest.mark.parametrize("method", ORDER_METHODS)
@pytest.mark.parametrize("error", ["EService:Unavailable", "EGeneral:Internal error"])
def test_unavailable_or_internal_error_on_an_order_call_is_ambiguous(error: str, method: str) -> None:
    exc = exception_for(error, method=method)
    assert type(exc) is ExchangeInternalError
    assert exc.kraken_error == error
    assert "look the order up" in str(exc)


@pytest.mark.parametrize("method", READ_METHODS)
def test_unavailable_on_a_read_is_only_transient(method: str) -> None:
    exc = exception_for("EService:Unavailable", method=method)
    assert type(exc) is ServiceUnavailableError
    assert not isinstance(exc, AmbiguousExchangeError)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("EService:Busy", ServiceBusyError),
        ("EOrder:Insufficient funds", InsufficientFundsError),
        ("EAPI:Rate limit exceeded", RateLimitExceededError),
    ],
)
def test_clear_refusals_of_an_order_are_not_ambiguous(error: str, expected: type[ExchangeError]) -> None:
    assert type(exception_for(error, method="AddOrder")) is expected


def test_an_unknown_error_string_is_permanent_and_kept_verbatim() -> None:
    exc = exception_for("EFunding:Unknown withdraw key", method="WithdrawFunds")
    assert type(exc) is PermanentExchangeError
    assert exc.kraken_error == "EFunding:Unknown withdraw key"
    assert "EFunding:Unknown withdraw key" in str(exc)


@pytest.mark.parametrize(("error", "expected"), KRAKEN_ERRORS)
async def test_the_client_raises_the_class_of_the_error_kraken_answers(
    client: KrakenClient, kraken: respx.MockRouter, error: str, expected: type[ExchangeError]
) -> None:
    kraken.post("/0/private/Balance").mock(return_value=refused(error))
    with pytest.raises(expected) as caught:
        await client.balance()
    assert type(caught.value) is expected
    assert caught.value.kraken_error == error
    assert_no_credentials_in(caught.value)


@pytest.mark.parametrize("error", ["EService:Unavailable", "EGeneral:Internal error"])
async def test_the_client_reports_a_failed_add_order_as_ambiguous(
    client: KrakenClient, kraken: respx.MockRouter, error: str
) -> None:
    kraken.post("/0/private/AddOrder").mock(return_value=refused(error))
    with pytest.raises(ExchangeInternalError, match="look the order up"):
        await client.add_order("BTC/USD", Side.BUY, OrderType.MARKET, Decimal("0.01"))


async def test_the_client_reports_a_failed_cancel_as_ambiguous(client: KrakenClient, kraken: respx.MockRouter) -> None:
    kraken.post("/0/private/CancelOrder").mock(return_value=refused("EService:Unavailable"))
    with pytest.raises(ExchangeInternalError):
        await client.cancel_order("OUF4EM-FRGI2-MQMWZD")


@pytest.mark.parametrize("method", ["CancelAll", "CancelAllOrdersAfter", "CancelOrderBatch", "AmendOrder"])
def test_every_call_that_changes_orders_is_ambiguous_when_kraken_fails(method: str) -> None:
    assert isinstance(exception_for("EService:Unavailable", method=method), AmbiguousExchangeError)
    assert isinstance(exception_for("EService:Unavailable", method="OpenOrders"), ServiceUnavailableError)


async def test_an_error_carries_its_context_as_attributes(client: KrakenClient, kraken: respx.MockRouter) -> None:
    """As httpx's errors carry their request: the method, Kraken's own string, and the
    order the call named, so a caller need not parse the message."""
    kraken.post("/0/private/AddOrder").mock(return_value=refused("EOrder:Insufficient funds"))
    with pytest.raises(InsufficientFundsError) as caught:
        await client.add_order("BTC/USD", Side.BUY, OrderType.MARKET, Decimal("0.01"), cl_ord_id="my-order-1")
    error = caught.value
    assert (error.method, error.kraken_error, error.cl_ord_id, error.txid) == (
        "AddOrder",
        "EOrder:Insufficient funds",
        "my-order-1",
        None,
    )
    kraken.post("/0/private/CancelOrder").mock(return_value=refused("EOrder:Unknown order"))
    with pytest.raises(UnknownOrderError) as cancelled:
        await client.cancel_order("OUF4EM-FRGI2-MQMWZD")
    assert (cancelled.value.method, cancelled.value.txid) == ("CancelOrder", "OUF4EM-FRGI2-MQMWZD")


async def test_warnings_without_errors_do_not_fail_the_call(client: KrakenClient, kraken: respx.MockRouter) -> None:
    kraken.post("/0/private/Balance").mock(
        return_value=httpx.Response(200, json={"error": ["WGeneral:Deprecated"], "result": {"ZUSD": "1.0"}})
    )
    assert await client.balance() == {"ZUSD": Decimal("1.0")}


class TestTransportFailures:
    @pytest.mark.parametrize("timeout", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.PoolTimeout])
    async def test_a_timeout_is_an_exchange_timeout(
        self, client: KrakenClient, kraken: respx.MockRouter, timeout: type[httpx.TimeoutException]
    ) -> None:
        kraken.post("/0/private/AddOrder").mock(side_effect=timeout)
        with pytest.raises(ExchangeTimeoutError, match=r"within 2s; .*look the order up") as caught:
            await client.add_order("BTC/USD", Side.BUY, OrderType.MARKET, Decimal("0.01"))
        assert isinstance(caught.value.__cause__, timeout)
        assert_no_credentials_in(caught.value)

    @pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError])
    async def test_a_dropped_connection_is_connection_lost(
        self, client: KrakenClient, kraken: respx.MockRouter, failure: type[httpx.TransportError]
    ) -> None:
        kraken.post("/0/private/Balance").mock(side_effect=failure)
        with pytest.raises(ConnectionLostError, match=f"during Balance \\({failure.__name__}\\)") as caught:
            await client.balance()
        assert isinstance(caught.value.__cause__, failure)
        assert_no_credentials_in(caught.value)

    @pytest.mark.parametrize("status", [502, 200])
    async def test_an_html_page_is_an_internal_error(
        self, client: KrakenClient, kraken: respx.MockRouter, status: int
    ) -> None:
        page = "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
        kraken.post("/0/private/AddOrder").mock(return_value=httpx.Response(status, text=page))
        with pytest.raises(ExchangeInternalError, match=f"HTTP {status} with a non-JSON body") as caught:
            await client.add_order("BTC/USD", Side.SELL, OrderType.LIMIT, Decimal("0.01"), Decimal("40000"))
        assert caught.value.kraken_error is None
        assert_no_credentials_in(caught.value)

    async def test_a_5xx_with_a_kraken_error_maps_by_the_error(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        kraken.post("/0/private/Balance").mock(
            return_value=httpx.Response(503, json={"error": ["EService:Unavailable"]})
        )
        with pytest.raises(ServiceUnavailableError):
            await client.balance()

    async def test_a_5xx_without_a_kraken_error_is_an_internal_error(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        kraken.post("/0/private/Balance").mock(return_value=httpx.Response(500, json={"error": []}))
        with pytest.raises(ExchangeInternalError, match="HTTP 500 to Balance"):
            await client.balance()

    async def test_http_429_is_a_rate_limit(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        kraken.post("/0/private/Balance").mock(return_value=httpx.Response(429, text="slow down"))
        with pytest.raises(RateLimitExceededError) as caught:
            await client.balance()
        assert isinstance(caught.value, TransientExchangeError)

    async def test_http_404_is_permanent(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        kraken.post("/0/private/Balance").mock(return_value=httpx.Response(404, text="not found"))
        with pytest.raises(PermanentExchangeError, match="check the base URL"):
            await client.balance()

    @pytest.mark.parametrize("body", [[], {"result": {}}, {"error": "EService:Busy"}])
    async def test_json_that_is_not_krakens_envelope_is_an_internal_error(
        self, client: KrakenClient, kraken: respx.MockRouter, body: object
    ) -> None:
        kraken.post("/0/private/Balance").mock(return_value=httpx.Response(200, json=body))
        with pytest.raises(ExchangeInternalError, match="expected shape"):
            await client.balance()

    async def test_a_result_of_the_wrong_shape_is_an_internal_error(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        kraken.post("/0/private/Balance").mock(return_value=ok({"ZUSD": "lots"}))
        with pytest.raises(ExchangeInternalError, match="expected shape \\(ZUSD: "):
            await client.balance()
