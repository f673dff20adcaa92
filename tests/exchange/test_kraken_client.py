"""The client against a respx-mocked Kraken: what goes on the wire, and what comes back."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from pydantic import BaseModel

from core.domain.clock import VirtualClock
from core.domain.enums import OrderType, Side
from core.domain.errors import (
    ConfigError,
    ExchangeInternalError,
    InputError,
    InvalidNonceError,
)
from core.domain.models import Candle, Ticker
from core.exchange import (
    AddOrderAck,
    Credentials,
    ExchangeOrder,
    KrakenClient,
    NonceSource,
    sign,
)
from core.exchange.client import NONCE_RESENDS
from tests.exchange.kraken_fakes import (
    API_KEY,
    ASSET_PAIRS,
    BASE_URL,
    BTC_USDT,
    SECRET,
    START,
    form,
    ok,
    order_wire,
    refused,
)

START_US = int(START * 1_000_000)
ADD_ORDER_ACK = {
    "descr": {"order": "buy 1.25000000 XBTUSD @ limit 37500.0"},
    "txid": ["OUF4EM-FRGI2-MQMWZD"],
}


def assert_no_floats(value: Any, *, allowed: frozenset[str] = frozenset({"opentm", "closetm"})) -> None:
    """Money and volumes must be Decimal all the way; only epoch times may be float."""
    if isinstance(value, BaseModel):
        fields = {name: getattr(value, name) for name in type(value).model_fields}
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif isinstance(value, dict):
        fields = {str(k): v for k, v in value.items()}
    elif isinstance(value, list | tuple):
        fields = {str(i): v for i, v in enumerate(value)}
    else:
        assert not isinstance(value, float), f"float {value!r} in a parsed result"
        return
    for name, inner in fields.items():
        if name not in allowed:
            assert_no_floats(inner, allowed=allowed)


class _KrakensExampleNonce(NonceSource):
    def next(self) -> int:
        return 1616492376594


class TestPrivateRequests:
    async def test_add_order_sends_krakens_example_body_and_signature(
        self, kraken: respx.MockRouter, credentials: Credentials
    ) -> None:
        route = kraken.post("/0/private/AddOrder").mock(return_value=ok(ADD_ORDER_ACK))
        async with KrakenClient(BASE_URL, credentials, nonce_source=_KrakensExampleNonce()) as client:
            ack = await client.add_order("XBTUSD", Side.BUY, OrderType.LIMIT, Decimal("1.25"), Decimal("37500"))
        assert ack == AddOrderAck(txid="OUF4EM-FRGI2-MQMWZD", description="buy 1.25000000 XBTUSD @ limit 37500.0")
        request = route.calls.last.request
        assert request.content == (b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25")
        assert request.headers["API-Key"] == API_KEY
        assert request.headers["API-Sign"] == (
            "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
        )
        assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")

    async def test_every_field_is_signed_nonce_first_then_in_key_order(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        route = kraken.post("/0/private/AddOrder").mock(return_value=ok(ADD_ORDER_ACK))
        await client.add_order(
            "BTC/USD",
            Side.SELL,
            OrderType.STOP_LOSS_LIMIT,
            Decimal("0.5"),
            Decimal("36000"),
            price2=Decimal("35900.5"),
            cl_ord_id="tg-entry-1",
            userref=7,
        )
        request = route.calls.last.request
        assert form(request) == [
            ("nonce", str(START_US)),
            ("cl_ord_id", "tg-entry-1"),
            ("ordertype", "stop-loss-limit"),
            ("pair", "XBTUSD"),
            ("price", "36000"),
            ("price2", "35900.5"),
            ("type", "sell"),
            ("userref", "7"),
            ("volume", "0.5"),
        ]
        assert request.headers["API-Sign"] == sign("/0/private/AddOrder", str(START_US), request.content, SECRET)

    async def test_decimals_go_on_the_wire_without_exponents(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        route = kraken.post("/0/private/AddOrder").mock(return_value=ok(ADD_ORDER_ACK))
        await client.add_order("XRP/BTC", Side.BUY, OrderType.LIMIT, Decimal("1E+2"), Decimal("5E-8"))
        fields = dict(form(route.calls.last.request))
        assert (fields["volume"], fields["price"]) == ("100", "0.00000005")

    async def test_a_validated_order_has_no_txid(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        route = kraken.post("/0/private/AddOrder").mock(
            return_value=ok({"descr": {"order": "buy 0.01000000 XBTUSD @ market"}})
        )
        ack = await client.add_order("BTC/USD", Side.BUY, OrderType.MARKET, Decimal("0.01"), validate=True)
        assert ack == AddOrderAck(txid="", description="buy 0.01000000 XBTUSD @ market")
        assert ("validate", "true") in form(route.calls.last.request)

    async def test_a_placed_order_without_txid_is_an_internal_error(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        kraken.post("/0/private/AddOrder").mock(return_value=ok({"descr": {"order": "buy"}}))
        with pytest.raises(ExchangeInternalError, match=r"no txid.*look the order up"):
            await client.add_order("BTC/USD", Side.BUY, OrderType.MARKET, Decimal("0.01"))

    @pytest.mark.parametrize(
        ("order_type", "volume", "price", "price2", "userref", "complaint"),
        [
            (OrderType.MARKET, Decimal("0"), None, None, None, "volume must be positive"),
            (
                OrderType.MARKET,
                Decimal("0.1"),
                Decimal("1"),
                None,
                None,
                "market order takes no price",
            ),
            (OrderType.LIMIT, Decimal("0.1"), None, None, None, "limit order needs a price"),
            (
                OrderType.STOP_LOSS,
                Decimal("0.1"),
                None,
                None,
                None,
                "stop-loss order needs a price",
            ),
            (OrderType.STOP_LOSS_LIMIT, Decimal("0.1"), Decimal("1"), None, None, "needs price2"),
            (OrderType.LIMIT, Decimal("0.1"), Decimal("1"), Decimal("1"), None, "takes no price2"),
            (OrderType.LIMIT, Decimal("0.1"), Decimal("NaN"), None, None, "finite"),
            (OrderType.MARKET, Decimal("0.1"), None, None, 2**31, "32-bit"),
        ],
    )
    async def test_an_order_kraken_would_refuse_is_refused_before_the_wire(
        self,
        client: KrakenClient,
        kraken: respx.MockRouter,
        order_type: OrderType,
        volume: Decimal,
        price: Decimal | None,
        price2: Decimal | None,
        userref: int | None,
        complaint: str,
    ) -> None:
        route = kraken.post("/0/private/AddOrder").mock(return_value=ok(ADD_ORDER_ACK))
        with pytest.raises(InputError, match=complaint):
            await client.add_order("BTC/USD", Side.BUY, order_type, volume, price, price2=price2, userref=userref)
        assert not route.called

    async def test_a_float_volume_is_a_programming_error(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        route = kraken.post("/0/private/AddOrder").mock(return_value=ok(ADD_ORDER_ACK))
        with pytest.raises(TypeError, match="never float"):
            await client.add_order("BTC/USD", Side.BUY, OrderType.MARKET, 0.1)  # type: ignore[arg-type]
        assert not route.called

    async def test_a_private_call_without_credentials_says_how_to_set_them(self, kraken: respx.MockRouter) -> None:
        route = kraken.post("/0/private/Balance").mock(return_value=ok({}))
        async with KrakenClient(BASE_URL) as client:
            with pytest.raises(ConfigError, match="set TG_KRAKEN_API_KEY and TG_KRAKEN_API_SECRET"):
                await client.balance()
        assert not route.called

    async def test_a_public_call_is_a_get_without_credentials(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        route = kraken.get("/0/public/Time").mock(
            return_value=ok({"unixtime": 1_700_000_123, "rfc1123": "Tue, 14 Nov 23 22:15:23 +0000"})
        )
        assert await client.server_time() == 1_700_000_123
        request = route.calls.last.request
        assert "API-Key" not in request.headers and "API-Sign" not in request.headers


class TestNonces:
    async def test_an_invalid_nonce_is_retried_once_after_a_resync(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        route = kraken.post("/0/private/Balance").mock(
            side_effect=[refused("EAPI:Invalid nonce"), ok({"ZUSD": "10.0000"})]
        )
        assert await client.balance() == {"ZUSD": Decimal("10.0000")}
        first, second = (int(dict(form(call.request))["nonce"]) for call in route.calls)
        assert route.call_count == 2
        assert first == START_US and second >= START_US + 1_000_000

    async def test_a_nonce_refused_again_and_again_is_raised_in_the_end(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        route = kraken.post("/0/private/Balance").mock(return_value=refused("EAPI:Invalid nonce"))
        with pytest.raises(InvalidNonceError):
            await client.balance()
        assert route.call_count == 1 + NONCE_RESENDS

    async def test_an_order_whose_nonce_was_refused_twice_is_sent_again(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        """Kraken refuses a bad nonce before acting: even an AddOrder is safe to resend."""
        route = kraken.post("/0/private/Balance").mock(
            side_effect=[refused("EAPI:Invalid nonce"), refused("EAPI:Invalid nonce"), ok({"ZUSD": "1"})]
        )
        assert await client.balance() == {"ZUSD": Decimal("1")}
        nonces = [int(dict(form(call.request))["nonce"]) for call in route.calls]
        assert nonces == sorted(nonces) and len(set(nonces)) == 3

    async def test_other_errors_are_not_retried(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        route = kraken.post("/0/private/AddOrder").mock(return_value=refused("EGeneral:Internal error"))
        with pytest.raises(ExchangeInternalError):
            await client.add_order("BTC/USD", Side.BUY, OrderType.MARKET, Decimal("0.01"))
        assert route.call_count == 1

    async def test_100_concurrent_calls_each_sign_a_distinct_nonce(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        route = kraken.post("/0/private/Balance").mock(return_value=ok({}))
        await asyncio.gather(*(client.balance() for _ in range(100)))
        nonces = [int(dict(form(call.request))["nonce"]) for call in route.calls]
        # The clock stands still: only strict increments keep them apart.
        assert sorted(nonces) == list(range(START_US, START_US + 100))
        for call in route.calls:
            body = call.request.content
            nonce = dict(form(call.request))["nonce"]
            assert call.request.headers["API-Sign"] == sign("/0/private/Balance", nonce, body, SECRET)

    async def test_a_restarted_client_signs_above_the_previous_ones_nonces(
        self, kraken: respx.MockRouter, credentials: Credentials, clock: VirtualClock
    ) -> None:
        route = kraken.post("/0/private/Balance").mock(return_value=ok({}))
        async with KrakenClient(BASE_URL, credentials, clock=clock, nonce_source=NonceSource(clock)) as first_run:
            await asyncio.gather(*(first_run.balance() for _ in range(20)))
        clock.advance(1.0)
        async with KrakenClient(BASE_URL, credentials, clock=clock, nonce_source=NonceSource(clock)) as second_run:
            await second_run.balance()
        nonces = [int(dict(form(call.request))["nonce"]) for call in route.calls]
        assert nonces[-1] > max(nonces[:-1])


class TestPairs:
    @pytest.mark.parametrize(
        ("symbol", "key"),
        [
            ("BTC/USDT", "XBTUSDT"),
            ("btc/usdt", "XBTUSDT"),
            (" XBTUSDT ", "XBTUSDT"),
            ("XBT/USDT", "XBTUSDT"),
            ("BTCUSDT", "XBTUSDT"),
            ("BTC/USD", "XXBTZUSD"),
            ("XXBTZUSD", "XXBTZUSD"),
            ("xbtusd", "XXBTZUSD"),
            ("eth/usd", "XETHZUSD"),
            ("XRP/BTC", "XXRPXXBT"),
            ("XRPXBT", "XXRPXXBT"),
        ],
    )
    async def test_resolve_pair_knows_every_name_of_a_pair(self, client: KrakenClient, symbol: str, key: str) -> None:
        assert (await client.resolve_pair(symbol)).key == key

    async def test_an_unknown_symbol_suggests_listed_ones(self, client: KrakenClient) -> None:
        with pytest.raises(InputError) as caught:
            await client.resolve_pair("zzz/usd")
        assert str(caught.value) == (
            "unknown symbol ZZZ/USD: Kraken lists no such pair; try one of ETH/USD, BTC/USD, XRP/USDT, BTC/USDT, ..."
        )

    async def test_a_pair_without_a_websocket_name_is_left_out(self, client: KrakenClient) -> None:
        assert "XXBTZUSD.d" not in await client.asset_pairs()
        with pytest.raises(InputError, match="try one of BTC/USD, BTC/USDT, ETH/USD"):
            await client.resolve_pair("XBTUSD.d")

    async def test_pair_info_is_read_from_asset_pairs(self, client: KrakenClient) -> None:
        pairs = await client.asset_pairs()
        assert pairs["XBTUSDT"] == BTC_USDT
        assert sorted(pairs) == sorted(k for k in ASSET_PAIRS if k != "XXBTZUSD.d")
        assert_no_floats(pairs)

    async def test_asset_pairs_are_fetched_once(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        await asyncio.gather(*(client.resolve_pair("BTC/USD") for _ in range(5)))
        await client.asset_pairs()
        assert kraken.routes[0].call_count == 1

    async def test_prices_round_to_the_tick_and_volumes_down_to_the_lot(self, client: KrakenClient) -> None:
        btc = await client.resolve_pair("BTC/USD")
        xrp_btc = await client.resolve_pair("XRP/BTC")
        assert btc.round_price(Decimal("37500.06")) == Decimal("37500.1")
        assert btc.round_price(Decimal("37500.04")) == Decimal("37500.0")
        assert xrp_btc.round_price(Decimal("0.0000123456")) == Decimal("0.00001235")
        assert btc.round_volume(Decimal("0.123456789")) == Decimal("0.12345678")
        assert btc.round_volume(Decimal("0.999999999")) == Decimal("0.99999999")

    async def test_a_tick_coarser_than_the_decimals_wins(self, client: KrakenClient) -> None:
        half_dollar = dataclasses.replace(await client.resolve_pair("BTC/USD"), tick_size=Decimal("0.5"))
        assert half_dollar.round_price(Decimal("37500.3")) == Decimal("37500.5")
        assert half_dollar.round_price(Decimal("37500.2")) == Decimal("37500.0")


class TestMarketData:
    async def test_ticker(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        route = kraken.get("/0/public/Ticker").mock(
            return_value=ok(
                {
                    "XXBTZUSD": {
                        "a": ["37500.10000", "1", "1.000"],
                        "b": ["37499.90000", "2", "2.000"],
                        "c": ["37500.00000", "0.01000000"],
                        "v": ["100.1", "200.2"],
                        "p": ["37400.1", "37300.2"],
                        "t": [1000, 2000],
                        "l": ["37000.0", "36900.0"],
                        "h": ["38000.0", "38100.0"],
                        "o": "37100.00000",
                    }
                }
            )
        )
        ticker = await client.ticker("BTC/USD")
        assert ticker == Ticker(bid=Decimal("37499.9"), ask=Decimal("37500.1"), last=Decimal("37500"))
        assert_no_floats(ticker)
        assert route.calls.last.request.url.params["pair"] == "XBTUSD"

    async def test_ticker_without_the_pairs_entry_is_an_internal_error(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        kraken.get("/0/public/Ticker").mock(return_value=ok({}))
        with pytest.raises(ExchangeInternalError, match="no entry for XXBTZUSD"):
            await client.ticker("BTC/USD")

    async def test_ohlc_keeps_every_row_oldest_first(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        route = kraken.get("/0/public/OHLC").mock(
            return_value=ok(
                {
                    "XETHZUSD": [
                        [
                            1700000000,
                            "2000.10",
                            "2010.00",
                            "1995.50",
                            "2005.25",
                            "2003.1",
                            "12.50000000",
                            40,
                        ],
                        [
                            1700003600,
                            "2005.25",
                            "2020.00",
                            "2001.00",
                            "2019.75",
                            "2010.2",
                            "3.25000000",
                            9,
                        ],
                    ],
                    "last": 1700000000,
                }
            )
        )
        candles = await client.ohlc("ETH/USD", interval=60, since=1699990000)
        assert candles == [
            Candle(
                1700000000,
                Decimal("2000.10"),
                Decimal("2010.00"),
                Decimal("1995.50"),
                Decimal("2005.25"),
                Decimal("12.50000000"),
            ),
            Candle(
                1700003600,
                Decimal("2005.25"),
                Decimal("2020.00"),
                Decimal("2001.00"),
                Decimal("2019.75"),
                Decimal("3.25000000"),
            ),
        ]
        assert_no_floats(candles)
        params = route.calls.last.request.url.params
        assert (params["pair"], params["interval"], params["since"]) == (
            "ETHUSD",
            "60",
            "1699990000",
        )

    async def test_ohlc_refuses_an_interval_kraken_has_not(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        route = kraken.get("/0/public/OHLC").mock(return_value=ok({}))
        with pytest.raises(InputError, match="no 7-minute candles"):
            await client.ohlc("ETH/USD", interval=7)
        assert not route.called


class TestAccount:
    async def test_balance_is_decimal(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        kraken.post("/0/private/Balance").mock(
            return_value=ok({"XXBT": "0.5000000000", "ZUSD": "1000.0000", "USDT": "12.34567890"})
        )
        balance = await client.balance()
        assert balance == {
            "XXBT": Decimal("0.5000000000"),
            "ZUSD": Decimal("1000.0000"),
            "USDT": Decimal("12.34567890"),
        }
        assert_no_floats(balance)

    async def test_json_numbers_keep_every_digit(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        body = b'{"error": [], "result": {"ZUSD": 1234567.123456789012345, "XXBT": 0.1}}'
        kraken.post("/0/private/Balance").mock(return_value=httpx.Response(200, content=body))
        assert await client.balance() == {
            "ZUSD": Decimal("1234567.123456789012345"),
            "XXBT": Decimal("0.1"),
        }

    async def test_query_orders_parses_krakens_order_objects(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        route = kraken.post("/0/private/QueryOrders").mock(
            return_value=ok({"OUF4EM-FRGI2-MQMWZD": order_wire(trades=["TZX2WP-XSEOP-FP7WYR"], cl_ord_id="c1")})
        )
        orders = await client.query_orders(["OUF4EM-FRGI2-MQMWZD"], trades=True)
        order = orders["OUF4EM-FRGI2-MQMWZD"]
        assert (order.txid, order.status, order.pair, order.side, order.ordertype) == (
            "OUF4EM-FRGI2-MQMWZD",
            "closed",
            "XBTUSD",
            "buy",
            "limit",
        )
        assert (order.volume, order.volume_executed, order.cost, order.fee, order.avg_price) == (
            Decimal("1.25"),
            Decimal("1.25"),
            Decimal("46875"),
            Decimal("121.875"),
            Decimal("37500"),
        )
        assert order.price == order.limit_price == Decimal("37500.0")
        assert order.stop_price is None
        assert (order.userref, order.cl_ord_id, order.reason) == (42, "c1", None)
        assert (order.opentm, order.closetm) == (1688665496.7808, 1688665499.1922)
        assert order.description == "buy 1.25000000 XBTUSD @ limit 37500.0"
        assert order.trades == ["TZX2WP-XSEOP-FP7WYR"]
        assert_no_floats(order)
        assert form(route.calls.last.request)[1:] == [
            ("trades", "true"),
            ("txid", "OUF4EM-FRGI2-MQMWZD"),
        ]

    async def test_a_market_order_has_no_price(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        kraken.post("/0/private/QueryOrders").mock(
            return_value=ok({"OMKT01-AAAAA-BBBBBB": order_wire("open", ordertype="market", price="0", vol_exec="0")})
        )
        order = (await client.query_orders(["OMKT01-AAAAA-BBBBBB"]))["OMKT01-AAAAA-BBBBBB"]
        assert order.price is None and order.closetm is None and order.trades == []
        assert order.volume_executed == Decimal("0")

    async def test_query_orders_asks_fifty_txids_at_a_time(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            txids = dict(form(request))["txid"].split(",")
            return ok({txid: order_wire() for txid in txids})

        route = kraken.post("/0/private/QueryOrders").mock(side_effect=answer)
        txids = [f"O{i:05d}-AAAAA-BBBBBB" for i in range(51)]
        orders = await client.query_orders(txids)
        assert sorted(orders) == txids
        assert [len(dict(form(c.request))["txid"].split(",")) for c in route.calls] == [50, 1]

    async def test_query_orders_of_nothing_asks_nothing(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        route = kraken.post("/0/private/QueryOrders").mock(return_value=ok({}))
        assert await client.query_orders([]) == {}
        assert not route.called

    async def test_open_and_closed_orders(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        kraken.post("/0/private/OpenOrders").mock(
            return_value=ok({"open": {"OOPEN1-AAAAA-BBBBBB": order_wire("open", vol_exec="0.5")}})
        )
        kraken.post("/0/private/ClosedOrders").mock(
            return_value=ok({"closed": {"OCLSD1-AAAAA-BBBBBB": order_wire("canceled")}, "count": 1})
        )
        open_orders = await client.open_orders()
        closed_orders = await client.closed_orders()
        assert isinstance(open_orders["OOPEN1-AAAAA-BBBBBB"], ExchangeOrder)
        assert open_orders["OOPEN1-AAAAA-BBBBBB"].volume_executed == Decimal("0.5")
        assert closed_orders["OCLSD1-AAAAA-BBBBBB"].status == "canceled"

    async def test_an_order_missing_a_field_is_an_internal_error(
        self, client: KrakenClient, kraken: respx.MockRouter
    ) -> None:
        broken = order_wire("open")
        del broken["vol"]
        kraken.post("/0/private/OpenOrders").mock(return_value=ok({"open": {"OOPEN1-AAAAA-BBBBBB": broken}}))
        with pytest.raises(ExchangeInternalError, match="OpenOrders did not have the expected shape \\(vol"):
            await client.open_orders()

    async def test_cancel_order_by_client_order_id(self, client: KrakenClient, kraken: respx.MockRouter) -> None:
        route = kraken.post("/0/private/CancelOrder").mock(return_value=ok({"count": 1}))
        assert await client.cancel_order("tg-entry-1") == 1
        assert form(route.calls.last.request)[1:] == [("txid", "tg-entry-1")]
