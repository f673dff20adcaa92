"""Kraken's spot REST API, async. Every failure becomes a core.domain.errors class here, once,
so callers decide on retries and reconciliation by exception class alone."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import TypeAdapter, ValidationError

from core.domain.clock import Clock, SystemClock
from core.domain.enums import OrderType, Side
from core.domain.errors import (
    AmbiguousExchangeError,
    ConfigError,
    ExchangeError,
    InputError,
    InvalidNonceError,
    InvalidOrderError,
    OrderRateLimitExceededError,
    RateLimitExceededError,
    TransientExchangeError,
    UnknownOrderError,
)
from core.domain.models import Candle, Ticker
from core.exchange.call_costs import CallCosts, CostLedger
from core.exchange.errors import (
    ORDER_METHODS,
    RESENDABLE_ORDER_METHODS,
    exception_for,
    exception_for_http_status,
    exception_for_malformed,
    exception_for_transport,
)
from core.exchange.order_ages import OrderAges
from core.exchange.pairs import PairDirectory, PairInfo, pair_info
from core.exchange.ratelimit import KrakenRateLimiter
from core.exchange.ratelimit.kraken import OrderAction
from core.exchange.retry import retrying
from core.exchange.signing import KEY_ENV, KEY_FILE_ENV, SECRET_ENV, Credentials, NonceSource, sign
from core.exchange.transport import Sender
from core.exchange.wire import (
    AddOrderResult,
    AssetPair,
    CancelOrderResult,
    ClosedOrdersResult,
    ExchangeOrder,
    OhlcRow,
    OpenOrdersResult,
    ServerTime,
    TickerEntry,
)

OHLC_INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})
QUERY_ORDERS_MAX_TXIDS = 50  # Kraken's limit per QueryOrders call
NONCE_RESENDS = 3
_ORDER_TYPES_WITH_PRICE2 = frozenset({OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT})
_INT32 = range(-(2**31), 2**31)
_USER_AGENT = "tg-kraken-client/0.1"

_SERVER_TIME = TypeAdapter(ServerTime)
_ASSET_PAIRS = TypeAdapter(dict[str, AssetPair])
_TICKERS = TypeAdapter(dict[str, TickerEntry])
_OHLC_ROWS = TypeAdapter(list[OhlcRow])
_BALANCE = TypeAdapter(dict[str, Decimal])
_ADD_ORDER = TypeAdapter(AddOrderResult)
_CANCEL_ORDER = TypeAdapter(CancelOrderResult)
_RAW_ORDERS = TypeAdapter(dict[str, dict[str, Any]])
_OPEN_ORDERS = TypeAdapter(OpenOrdersResult)
_CLOSED_ORDERS = TypeAdapter(ClosedOrdersResult)
_JSON = json.JSONDecoder(parse_float=Decimal)
"""One decoder for every answer (json.loads(..., parse_float=Decimal) builds one per call);
the body is decoded as json.loads decodes bytes."""


@dataclass(frozen=True)
class AddOrderAck:
    """Kraken's acknowledgement of AddOrder. txid is "" when the order was only
    validated (validate=True): Kraken assigns no id to an order it did not place."""

    txid: str
    description: str


@contextmanager
def _expect_shape(method: str) -> Iterator[None]:
    try:
        yield
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "result"
        raise exception_for_malformed(f"{where}: {first['msg']}", method=method) from exc


def _wire_decimal(value: Decimal, name: str) -> str:
    """Plain notation: Kraken refuses exponents such as 1E-8."""
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}: money is never float")
    if not value.is_finite():
        raise InputError(f"{name} must be a finite number, got {value}")
    return format(value, "f")


def _result(method: str, response: httpx.Response) -> Any:
    """The `result` of Kraken's envelope, or the exception for what came instead."""
    try:
        content = response.content
        payload = _JSON.decode(content.decode(json.detect_encoding(content), "surrogatepass"))
    except ValueError as exc:
        raise exception_for_http_status(response.status_code, method=method, is_json=False) from exc
    errors = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(errors, list):
        # The list may also carry warnings ("W..."), which do not fail the call.
        first_error = next((e for e in errors if isinstance(e, str) and e.startswith("E")), None)
        if first_error is not None:
            raise exception_for(first_error, method=method)
    if not response.is_success:
        raise exception_for_http_status(response.status_code, method=method, is_json=True)
    if not isinstance(payload, dict) or not isinstance(errors, list) or "result" not in payload:
        raise exception_for_malformed("no error list and result", method=method)
    return payload["result"]


@dataclass(frozen=True)
class ConditionalClose:
    """Kraken's conditional close: an order the exchange itself opens when the parent fills."""

    order_type: OrderType
    price: Decimal


@dataclass(frozen=True)
class _TradingCharge:
    """What an order transaction costs on its pair's trading counter."""

    pair: str
    action: OrderAction
    order_age_s: float | None = None


def account_of(base_url: str) -> str:
    """A short, stable name of the exchange at `base_url`, the same for every spelling
    of its address (localhost or 127.0.0.1) and every key: Kraken does not say which
    account a key belongs to, so two keys are taken for one account, which is the safe
    side for leases."""
    url = httpx.URL(base_url)
    host = (url.host or "").lower()
    host = "127.0.0.1" if host in ("localhost", "::1", "[::1]") else host
    port = url.port or {"http": 80, "https": 443}.get(url.scheme, 0)
    return hashlib.sha256(f"{url.scheme}://{host}:{port}".encode()).hexdigest()[:12]


class KrakenClient:
    """Kraken's spot REST API over httpx.

    With a `rate_limiter`, every private call first waits for room on the key's REST
    counter, and every order transaction for room on its pair's trading counter, so
    the exchange never has to refuse one. `retries`, `retry_wait_s` and
    `rate_limit_wait_s` total what retries and rate-limit waits cost; measure() counts
    them for one caller.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        timeout_s: float = 10.0,
        nonce_source: NonceSource | None = None,
        retry_attempts: int = 4,
        retry_deadline_s: float = 30.0,
        rate_limit_backoff_s: float = 3.0,
        rate_limiter: KrakenRateLimiter | None = None,
    ) -> None:
        self._credentials = credentials
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._retry_attempts = retry_attempts
        self._retry_deadline_s = retry_deadline_s
        self._rate_limit_backoff_s = rate_limit_backoff_s
        self._rate_limiter = rate_limiter
        self._costs = CostLedger()
        self._orders = OrderAges(self._clock)
        self._nonces = nonce_source if nonce_source is not None else NonceSource()
        self._timeout_s = timeout_s
        self._sender = Sender(base_url, transport=transport, timeout=timeout_s, headers={"User-Agent": _USER_AGENT})
        self._http = self._sender.client
        self._directory: PairDirectory | None = None
        self._directory_lock = asyncio.Lock()
        self._private_in_flight = asyncio.Lock()

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    @property
    def account(self) -> str:
        """The exchange this client trades on: see `account_of`."""
        return account_of(str(self._http.base_url))

    async def __aenter__(self) -> KrakenClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._sender.aclose()

    @property
    def retries(self) -> int:
        return self._costs.totals.retries

    @property
    def retry_wait_s(self) -> float:
        return self._costs.totals.retry_wait_s

    @property
    def rate_limit_wait_s(self) -> float:
        """Seconds the rate limiter held calls back, in total."""
        return self._costs.totals.rate_limit_wait_s

    def measure(self) -> AbstractContextManager[CallCosts]:
        """Count the retries and waits of the calls made inside the block by this task
        and the tasks it starts: an execution reports its own, not its neighbours'."""
        return self._costs.measure()

    async def _request(
        self,
        method_name: str,
        path: str,
        params: Mapping[str, str] | None,
        *,
        private: bool,
        charge: _TradingCharge | None = None,
    ) -> Any:
        """One call, its `result` returned. Reads and cancels are retried on transient errors
        and on lost answers (asking again changes nothing); other calls that change orders
        are not, because only their caller knows how to tell whether the exchange acted (by
        client order id). An error leaves carrying the call's method and the order it named."""
        try:
            return await self._retried(method_name, path, params, private=private, charge=charge)
        except ExchangeError as exc:
            named = params or {}
            exc.add_context(method=method_name, txid=named.get("txid"), cl_ord_id=named.get("cl_ord_id"))
            raise

    async def _retried(
        self,
        method_name: str,
        path: str,
        params: Mapping[str, str] | None,
        *,
        private: bool,
        charge: _TradingCharge | None,
    ) -> Any:
        if method_name in ORDER_METHODS and method_name not in RESENDABLE_ORDER_METHODS:
            return await self._attempt(method_name, path, params, private=private, charge=charge)
        async for attempt in retrying(
            self._clock,
            attempts=self._retry_attempts,
            deadline_s=self._retry_deadline_s,
            rate_limit_wait_s=self._rate_limit_backoff_s,
            retry_on=(TransientExchangeError, AmbiguousExchangeError),
            never_on=(InvalidNonceError,),  # _attempt already resynced and resent it
            on_retry=self._count_retry,
        ):
            with attempt:
                return await self._attempt(method_name, path, params, private=private, charge=charge)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _count_retry(self, error: ExchangeError | None, wait: float) -> None:
        self._costs.retried(wait)

    async def _attempt(
        self,
        method_name: str,
        path: str,
        params: Mapping[str, str] | None,
        *,
        private: bool,
        charge: _TradingCharge | None = None,
    ) -> Any:
        """One request. A refused nonce is sent again after a resync, up to
        NONCE_RESENDS times: Kraken refuses such a request before acting on it, so even
        an AddOrder is safe to resend."""
        if not private:
            return await self._send(method_name, self._sender.build_request("GET", path, params=params))
        credentials = self._credentials
        if credentials is None:
            raise ConfigError(
                f"{method_name} is a private Kraken call and needs an API key: set {KEY_ENV} "
                f"and {SECRET_ENV} (or {KEY_FILE_ENV})"
            )
        for _ in range(NONCE_RESENDS):
            try:
                return await self._send_private(method_name, credentials, path, params, charge)
            except InvalidNonceError:
                self._nonces.resync()
        return await self._send_private(method_name, credentials, path, params, charge)

    async def _send_private(
        self,
        method_name: str,
        credentials: Credentials,
        path: str,
        params: Mapping[str, str] | None,
        charge: _TradingCharge | None,
    ) -> Any:
        """Wait for room on the counters, then sign and send. Private requests go out one
        at a time: Kraken refuses a nonce below the last one it processed, and two
        requests in flight may reach it in either order. A rate-limit refusal teaches
        the limiter that something else spends this key's counters."""
        await self._pace(method_name, charge)
        try:
            async with self._private_in_flight, self._nonces.reserved() as nonce:
                return await self._send(method_name, self._signed(credentials, path, params, nonce))
        except RateLimitExceededError as exc:
            self._learn(exc, charge)
            raise

    async def _pace(self, method_name: str, charge: _TradingCharge | None) -> None:
        limiter = self._rate_limiter
        if limiter is None:
            return
        waited = await limiter.acquire_call(method_name)
        if charge is not None:
            waited += await limiter.acquire_order(charge.pair, charge.action, charge.order_age_s)
        if waited > 0:
            self._costs.held_back(waited)

    def _learn(self, error: RateLimitExceededError, charge: _TradingCharge | None) -> None:
        limiter = self._rate_limiter
        if limiter is None:
            return
        if not isinstance(error, OrderRateLimitExceededError):
            limiter.on_rate_limit_error("rest")
        elif charge is not None:
            limiter.on_rate_limit_error("order", charge.pair)

    def _signed(
        self, credentials: Credentials, path: str, params: Mapping[str, str] | None, nonce_value: int
    ) -> httpx.Request:
        nonce = str(nonce_value)
        body = urlencode({"nonce": nonce, **dict(sorted((params or {}).items()))})
        request = self._sender.build_request(
            "POST",
            path,
            content=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        request.headers["API-Key"] = credentials.api_key
        request.headers["API-Sign"] = sign(request.url.path, nonce, body, credentials.api_secret)
        return request

    async def _send(self, method_name: str, request: httpx.Request) -> Any:
        try:
            response = await self._sender.send(request)
        except httpx.TransportError as exc:
            raise exception_for_transport(exc, method=method_name, timeout_s=self._timeout_s) from exc
        try:
            return _result(method_name, response)
        except RateLimitExceededError:
            self._costs.refused()
            raise

    async def _public(self, method_name: str, params: Mapping[str, str] | None = None) -> Any:
        return await self._request(method_name, f"/0/public/{method_name}", params, private=False)

    async def _private(
        self,
        method_name: str,
        params: Mapping[str, str] | None = None,
        *,
        charge: _TradingCharge | None = None,
    ) -> Any:
        return await self._request(method_name, f"/0/private/{method_name}", params, private=True, charge=charge)

    async def server_time(self) -> int:
        result = await self._public("Time")
        with _expect_shape("Time"):
            return _SERVER_TIME.validate_python(result).unixtime

    async def _pair_directory(self) -> PairDirectory:
        async with self._directory_lock:
            if self._directory is None:
                result = await self._public("AssetPairs")
                with _expect_shape("AssetPairs"):
                    wire = _ASSET_PAIRS.validate_python(result)
                infos = (pair_info(key, pair) for key, pair in wire.items())
                self._directory = PairDirectory({info.key: info for info in infos if info is not None})
            return self._directory

    async def asset_pairs(self) -> dict[str, PairInfo]:
        """Pairs by Kraken key; fetched once per client (they change a few times a year)."""
        return dict((await self._pair_directory()).pairs)

    async def resolve_pair(self, symbol: str) -> PairInfo:
        """The pair a user means by "BTC/USDT", "btc/usdt", "XBTUSDT", "XBT/USDT" or its key."""
        return (await self._pair_directory()).resolve(symbol)

    async def ticker(self, symbol: str) -> Ticker:
        pair = await self.resolve_pair(symbol)
        result = await self._public("Ticker", {"pair": pair.altname})
        with _expect_shape("Ticker"):
            entry = _TICKERS.validate_python(result).get(pair.key)
        if entry is None:
            raise exception_for_malformed(f"no entry for {pair.key}", method="Ticker")
        return Ticker(bid=entry.b[0], ask=entry.a[0], last=entry.c[0])

    async def ohlc(self, symbol: str, interval: int = 60, since: int | None = None) -> list[Candle]:
        """Candles oldest first, as Kraken gives them: the last one is still forming."""
        if interval not in OHLC_INTERVALS:
            raise InputError(f"Kraken has no {interval}-minute candles; use one of {sorted(OHLC_INTERVALS)}")
        pair = await self.resolve_pair(symbol)
        params = {"pair": pair.altname, "interval": str(interval)}
        if since is not None:
            params["since"] = str(since)
        result = await self._public("OHLC", params)
        rows = result.get(pair.key) if isinstance(result, dict) else None
        if rows is None:
            raise exception_for_malformed(f"no entry for {pair.key}", method="OHLC")
        with _expect_shape("OHLC"):
            parsed = _OHLC_ROWS.validate_python(rows)
        return [
            Candle(time=t, open=o, high=h, low=low, close=c, volume=volume)
            for t, o, h, low, c, _vwap, volume, _count in parsed
        ]

    async def balance(self) -> dict[str, Decimal]:
        """Amounts by Kraken asset id (XXBT, ZUSD, USDT...)."""
        result = await self._private("Balance")
        with _expect_shape("Balance"):
            return _BALANCE.validate_python(result)

    async def add_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        volume: Decimal,
        price: Decimal | None = None,
        *,
        price2: Decimal | None = None,
        cl_ord_id: str | None = None,
        userref: int | None = None,
        validate: bool = False,
        close: ConditionalClose | None = None,
    ) -> AddOrderAck:
        """Place one order, volume and prices sent exactly as given (round them with
        PairInfo first). price is the limit price, or the trigger of a stop or target;
        price2 is the limit price of stop-loss-limit and take-profit-limit orders;
        `close` asks Kraken to open that order for whatever volume this one fills."""
        side, order_type = Side(side), OrderType(order_type)
        _check_order_arguments(order_type, volume, price, price2, userref)
        pair = await self.resolve_pair(symbol)
        params = {
            "pair": pair.altname,
            "type": side.value,
            "ordertype": order_type.value,
            "volume": _wire_decimal(volume, "volume"),
        }
        if price is not None:
            params["price"] = _wire_decimal(price, "price")
        if price2 is not None:
            params["price2"] = _wire_decimal(price2, "price2")
        if cl_ord_id is not None:
            params["cl_ord_id"] = cl_ord_id
        if userref is not None:
            params["userref"] = str(userref)
        if validate:
            params["validate"] = "true"
        if close is not None:
            params["close[ordertype]"] = close.order_type.value
            params["close[price]"] = _wire_decimal(close.price, "close[price]")
        result = await self._private("AddOrder", params, charge=_TradingCharge(pair.key, "add"))
        with _expect_shape("AddOrder"):
            ack = _ADD_ORDER.validate_python(result)
        if not ack.txid and not validate:
            raise exception_for_malformed("no txid for a placed order", method="AddOrder")
        if ack.txid:
            self._orders.placed(pair.key, ack.txid[0], cl_ord_id)
        return AddOrderAck(txid=ack.txid[0] if ack.txid else "", description=ack.descr.order)

    async def query_orders(self, txids: Sequence[str], *, trades: bool = False) -> dict[str, ExchangeOrder]:
        """The orders the exchange knows among `txids`, asked QUERY_ORDERS_MAX_TXIDS at a time.

        Kraken refuses a whole batch when one txid is unknown; the batch is then asked
        one txid at a time so the unknown ones are simply absent from the answer.
        """
        orders: dict[str, ExchangeOrder] = {}
        for start in range(0, len(txids), QUERY_ORDERS_MAX_TXIDS):
            batch = list(txids[start : start + QUERY_ORDERS_MAX_TXIDS])
            try:
                orders |= await self._query_batch(batch, trades)
            except (InvalidOrderError, UnknownOrderError):
                if len(batch) > 1:
                    orders |= await self._query_each(batch, trades)
        return orders

    async def _query_each(self, txids: list[str], trades: bool) -> dict[str, ExchangeOrder]:
        orders: dict[str, ExchangeOrder] = {}
        for txid in txids:
            try:
                orders |= await self._query_batch([txid], trades)
            except (InvalidOrderError, UnknownOrderError):
                continue
        return orders

    async def _query_batch(self, txids: list[str], trades: bool) -> dict[str, ExchangeOrder]:
        params = {"txid": ",".join(txids)}
        if trades:
            params["trades"] = "true"
        result = await self._private("QueryOrders", params)
        with _expect_shape("QueryOrders"):
            orders = _orders(_RAW_ORDERS.validate_python(result))
        return await self._noted(orders)

    async def open_orders(self, *, cl_ord_id: str | None = None) -> dict[str, ExchangeOrder]:
        """The open orders, or only the one carrying `cl_ord_id`."""
        result = await self._private("OpenOrders", _by_client_id(cl_ord_id))
        with _expect_shape("OpenOrders"):
            orders = _orders(_OPEN_ORDERS.validate_python(result).open)
        return await self._noted(orders)

    async def closed_orders(self, *, cl_ord_id: str | None = None) -> dict[str, ExchangeOrder]:
        """The most recent closed orders: Kraken's first page (50); or those carrying `cl_ord_id`."""
        result = await self._private("ClosedOrders", _by_client_id(cl_ord_id))
        with _expect_shape("ClosedOrders"):
            orders = _orders(_CLOSED_ORDERS.validate_python(result).closed)
        return await self._noted(orders)

    async def cancel_order(self, ref: str) -> int:
        """Cancel by txid, userref or cl_ord_id; the number of orders cancelled."""
        charge = await self._cancel_charge(ref) if self._rate_limiter is not None else None
        result = await self._private("CancelOrder", {"txid": ref}, charge=charge)
        with _expect_shape("CancelOrder"):
            count = _CANCEL_ORDER.validate_python(result).count
        self._orders.forget(ref)
        return count

    async def _cancel_charge(self, ref: str) -> _TradingCharge | None:
        """The pair and age of the order `ref` (a txid or cl_ord_id) names. An order this
        client has not seen is looked up among the open ones; one that is not open costs
        nothing, as Kraken refuses its cancel without touching a counter. (A userref may
        name several orders: tg never cancels by one, so such a cancel is not paced.)"""
        known = self._orders.charge(ref)
        if known is None:
            await self.open_orders()
            known = self._orders.charge(ref)
        return None if known is None else _TradingCharge(known.pair, "cancel", known.age_s)

    async def _noted(self, orders: dict[str, ExchangeOrder]) -> dict[str, ExchangeOrder]:
        """Learn the pairs of the orders a listing shows, for pricing their cancels."""
        if self._rate_limiter is None:
            return orders
        directory = await self._pair_directory()
        for order in orders.values():
            try:
                pair = directory.resolve(order.pair).key
            except InputError:
                continue
            self._orders.seen(pair, order.txid, order.cl_ord_id, order.status)
        return orders


def _by_client_id(cl_ord_id: str | None) -> dict[str, str] | None:
    return None if cl_ord_id is None else {"cl_ord_id": cl_ord_id}


def _orders(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, ExchangeOrder]:
    return {txid: ExchangeOrder.from_wire(txid, order) for txid, order in raw.items()}


def _check_order_arguments(
    order_type: OrderType,
    volume: Decimal,
    price: Decimal | None,
    price2: Decimal | None,
    userref: int | None,
) -> None:
    """Refuse before the wire what Kraken would refuse with a vaguer message."""
    if volume <= 0:
        raise InputError(f"order volume must be positive, got {volume}")
    if order_type is OrderType.MARKET and price is not None:
        raise InputError("a market order takes no price; use a limit order to bound the price")
    if order_type is not OrderType.MARKET and price is None:
        raise InputError(f"a {order_type.value} order needs a price (the limit price, or the trigger price)")
    needs_price2 = order_type in _ORDER_TYPES_WITH_PRICE2
    if needs_price2 and price2 is None:
        raise InputError(f"a {order_type.value} order needs price2, its limit price")
    if not needs_price2 and price2 is not None:
        raise InputError(f"a {order_type.value} order takes no price2")
    if userref is not None and userref not in _INT32:
        raise InputError(f"userref must fit a signed 32-bit integer, got {userref}")
