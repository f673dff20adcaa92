"""Accounts, keys, balances and holds: what an order may spend (see simulator.exchange
for the rules of funds)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from decimal import Decimal

from simulator.exceptions import (
    InvalidKey,
)
from simulator.exchange_base import DEFAULT_ACCOUNT
from simulator.ledger import Ledger
from simulator.models import (
    ApiKey,
    Order,
    OrderFlag,
    OrderSpec,
    Side,
)
from simulator.pairs import PAIRS, Asset, Pair


@dataclass(frozen=True)
class TradeBalance:
    """An account's worth in one asset, as Kraken's TradeBalance reports it for spot."""

    asset: Asset
    equivalent: Decimal
    """Every balance valued in `asset`."""
    unexecuted: Decimal
    """What the open orders would still trade, valued in `asset`."""


class Accounts(Ledger):
    def create_api_key(self, account: str = DEFAULT_ACCOUNT) -> ApiKey:
        """A new key pair for `account` (opened with the initial balances if new)."""
        if account not in self._state.accounts:
            self._open(account, self._state.initial_balances, self.now())
        api_key = ApiKey(
            key=base64.b64encode(secrets.token_bytes(42)).decode(),
            secret=base64.b64encode(secrets.token_bytes(64)).decode(),
            account=account,
        )
        self._state.api_keys[api_key.key] = api_key
        return api_key

    def api_key(self, key: str) -> ApiKey:
        try:
            return self._state.api_keys[key]
        except KeyError:
            raise InvalidKey() from None

    def balance(self, account: str) -> dict[str, Decimal]:
        self.sync()
        return dict(self._state.accounts[account].balances)

    def holds(self, account: str) -> dict[str, Decimal]:
        """What the open orders hold of each asset the account has."""
        self.sync()
        return {asset: self._held(account, asset, None) for asset in self._state.accounts[account].balances}

    def trade_volume(self, account: str) -> Decimal:
        """The 30-day US-dollar volume that sets the account's fee tier."""
        self.sync()
        return self._thirty_day_volume(account, self.now())

    def trade_balance(self, account: str, asset: Asset) -> TradeBalance:
        self.sync()
        now = self.now()
        unit = self._usd_price(asset.id, now)
        worth = sum(
            (amount * self._usd_price(name, now) for name, amount in self._state.accounts[account].balances.items()),
            Decimal(0),
        )
        unexecuted = Decimal(0)
        for order in self._live_of(account):
            pair = PAIRS[order.spec.pair]
            price = order.resting_limit or order.stop_price or self.price(pair)
            unexecuted += order.remaining * price * self._usd_price(pair.quote, now)
        return TradeBalance(asset, (worth / unit).quantize(asset.unit), (unexecuted / unit).quantize(asset.unit))

    def _can_pay(
        self,
        account: str,
        pair: Pair,
        side: Side,
        volume: Decimal,
        price: Decimal,
        excluding: Order | None,
        spec: OrderSpec,
    ) -> bool:
        fee = 1 + pair.highest_taker_fee
        if side is Side.BUY:
            return self._available(account, pair.quote, excluding) >= volume * price * fee
        need = volume * fee if OrderFlag.FCIB in spec.oflags else volume
        return self._available(account, pair.base, excluding) >= need

    def _available(self, account: str, asset: str, excluding: Order | None) -> Decimal:
        balance = self._state.accounts[account].balances.get(asset, Decimal(0))
        return balance - self._held(account, asset, excluding)

    def _held(self, account: str, asset: str, excluding: Order | None) -> Decimal:
        return self._index.held(account, asset, excluding)
