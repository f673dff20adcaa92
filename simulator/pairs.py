"""The sandbox's listing: the assets and pairs it trades, with the precision, minimums
and fee schedules Kraken's Assets and AssetPairs endpoints publish for them.

The listing is data (simulator/data/pairs.toml, shipped with the package), read once
into the dataclasses below; a pair is added there, not here.

Clients name pairs many ways (key XXBTZUSD, altname XBTUSD, wsname XBT/USD, and users
say BTC for XBT and DOGE for XDG); `find_pair` accepts all of them so the endpoints
answer like Kraken.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from pydantic import TypeAdapter

from simulator.exceptions import UnknownAsset, UnknownAssetPair

FeeTiers = tuple[tuple[Decimal, Decimal], ...]
"""(30-day volume in USD from which the tier applies, fee in percent)."""


@dataclass(frozen=True)
class Asset:
    id: str
    altname: str
    decimals: int
    display_decimals: int
    stable: bool = False
    """A fiat currency or a stablecoin (not on Kraken's wire): see `Pair.counts_toward_volume`."""

    @property
    def unit(self) -> Decimal:
        """The smallest amount a balance of this asset holds."""
        return Decimal(1).scaleb(-self.decimals)


@dataclass(frozen=True)
class Pair:
    key: str
    altname: str
    wsname: str
    base: str
    quote: str
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    ordermin: Decimal
    costmin: Decimal
    fees: FeeTiers
    fees_maker: FeeTiers
    counts_toward_volume: bool = True
    """Kraken's 30-day volume (and so the fee tier) counts crypto markets only: not a
    pair whose base is a fiat currency or a stablecoin (USDT/USD, EUR/USD)."""

    def __hash__(self) -> int:
        """By key alone: a pair keys the tape's and the ticker's caches on every
        request, and hashing every field (its fee schedules too) cost microseconds."""
        return hash(self.key)

    @property
    def tick_size(self) -> Decimal:
        return Decimal(1).scaleb(-self.pair_decimals)

    @property
    def lot_size(self) -> Decimal:
        return Decimal(1).scaleb(-self.lot_decimals)

    @functools.cached_property
    def highest_taker_fee(self) -> Decimal:
        """The top of the taker schedule, as a fraction: what a resting buy holds for
        its fee, whatever fee it ends up paying."""
        return max(percent for _, percent in self.fees) / 100


def _load() -> tuple[dict[str, dict[str, FeeTiers]], dict[str, Asset], dict[str, Pair]]:
    data: dict[str, Any] = tomllib.loads(resources.files("simulator").joinpath("data/pairs.toml").read_text())
    schedules = {
        name: {side: _TIERS.validate_python(rows) for side, rows in sides.items()}
        for name, sides in data["fee_schedules"].items()
    }
    assets = {key: _ASSET.validate_python({"id": key, **fields}) for key, fields in data["assets"].items()}
    pairs = {}
    for key, fields in data["pairs"].items():
        stable = assets[fields["base"]].stable
        schedule = schedules["stable" if stable else "crypto"]
        pairs[key] = _PAIR.validate_python(
            {
                "key": key,
                **fields,
                "fees": schedule["taker"],
                "fees_maker": schedule["maker"],
                "counts_toward_volume": not stable,
            }
        )
    return schedules, assets, pairs


_TIERS: TypeAdapter[FeeTiers] = TypeAdapter(FeeTiers)
_ASSET = TypeAdapter(Asset)
_PAIR = TypeAdapter(Pair)
_SCHEDULES, ASSETS, PAIRS = _load()
TAKER_FEES = _SCHEDULES["crypto"]["taker"]
"""The schedule of crypto markets; stablecoin and FX markets have their own."""
MAKER_FEES = _SCHEDULES["crypto"]["maker"]

USD_QUOTES = frozenset({"ZUSD", "USDT", "USDC"})
"""Quote assets the sandbox values at one US dollar (as a base, a stablecoin trades
around its peg: USDT/USD has a path of its own)."""

_USER_NAMES = {"BTC": "XBT", "DOGE": "XDG"}


def _canonical(name: str) -> str:
    wanted = name.strip().upper()
    for user, kraken in _USER_NAMES.items():
        wanted = wanted.replace(user, kraken)
    return wanted


def find_pair(name: str) -> Pair:
    """The pair a client names by key, altname or wsname (BTC accepted for XBT)."""
    wanted = _canonical(name)
    for pair in PAIRS.values():
        if wanted in (pair.key, pair.altname, pair.wsname):
            return pair
    raise UnknownAssetPair()


def find_asset(name: str) -> Asset:
    """The asset a client names by id or altname (BTC accepted for XBT)."""
    wanted = _canonical(name)
    for asset in ASSETS.values():
        if wanted in (asset.id, asset.altname):
            return asset
    raise UnknownAsset()
