"""The sandbox's listing: the assets and pairs it trades, with the precision, minimums
and fee schedules Kraken's Assets and AssetPairs endpoints publish for them.

Clients name pairs many ways (key XXBTZUSD, altname XBTUSD, wsname XBT/USD, and users
say BTC for XBT); `find_pair` accepts all of them so the endpoints answer like Kraken.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from simulator.exceptions import UnknownAsset, UnknownAssetPair

FeeTiers = tuple[tuple[Decimal, Decimal], ...]
"""(30-day volume in USD from which the tier applies, fee in percent)."""


def _tiers(*rows: tuple[int, str]) -> FeeTiers:
    return tuple((Decimal(volume), Decimal(percent)) for volume, percent in rows)


TAKER_FEES = _tiers(
    (0, "0.26"),
    (50_000, "0.24"),
    (100_000, "0.22"),
    (250_000, "0.20"),
    (500_000, "0.18"),
    (1_000_000, "0.16"),
    (2_500_000, "0.14"),
    (5_000_000, "0.12"),
    (10_000_000, "0.10"),
)
MAKER_FEES = _tiers(
    (0, "0.16"),
    (50_000, "0.14"),
    (100_000, "0.12"),
    (250_000, "0.10"),
    (500_000, "0.08"),
    (1_000_000, "0.06"),
    (2_500_000, "0.04"),
    (5_000_000, "0.02"),
    (10_000_000, "0.00"),
)


@dataclass(frozen=True)
class Asset:
    id: str
    altname: str
    decimals: int
    display_decimals: int

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
    fees: FeeTiers = TAKER_FEES
    fees_maker: FeeTiers = MAKER_FEES

    @property
    def tick_size(self) -> Decimal:
        return Decimal(1).scaleb(-self.pair_decimals)

    @property
    def lot_size(self) -> Decimal:
        return Decimal(1).scaleb(-self.lot_decimals)


ASSETS: dict[str, Asset] = {
    asset.id: asset
    for asset in (
        Asset("XXBT", "XBT", decimals=10, display_decimals=5),
        Asset("ZUSD", "USD", decimals=4, display_decimals=2),
        Asset("USDT", "USDT", decimals=8, display_decimals=4),
        Asset("XETH", "ETH", decimals=10, display_decimals=5),
        Asset("XXRP", "XRP", decimals=8, display_decimals=5),
    )
}

PAIRS: dict[str, Pair] = {
    pair.key: pair
    for pair in (
        Pair(
            "XXBTZUSD",
            "XBTUSD",
            "XBT/USD",
            "XXBT",
            "ZUSD",
            pair_decimals=1,
            lot_decimals=8,
            cost_decimals=5,
            ordermin=Decimal("0.0001"),
            costmin=Decimal("0.5"),
        ),
        Pair(
            "XBTUSDT",
            "XBTUSDT",
            "XBT/USDT",
            "XXBT",
            "USDT",
            pair_decimals=1,
            lot_decimals=8,
            cost_decimals=5,
            ordermin=Decimal("0.0001"),
            costmin=Decimal("0.5"),
        ),
        Pair(
            "XETHZUSD",
            "ETHUSD",
            "ETH/USD",
            "XETH",
            "ZUSD",
            pair_decimals=2,
            lot_decimals=8,
            cost_decimals=5,
            ordermin=Decimal("0.002"),
            costmin=Decimal("0.5"),
        ),
        Pair(
            "XRPUSDT",
            "XRPUSDT",
            "XRP/USDT",
            "XXRP",
            "USDT",
            pair_decimals=5,
            lot_decimals=8,
            cost_decimals=5,
            ordermin=Decimal("10"),
            costmin=Decimal("0.5"),
        ),
        Pair(
            "XXRPXXBT",
            "XRPXBT",
            "XRP/XBT",
            "XXRP",
            "XXBT",
            pair_decimals=8,
            lot_decimals=8,
            cost_decimals=10,
            ordermin=Decimal("10"),
            costmin=Decimal("0.00002"),
        ),
    )
}

USD_QUOTES = frozenset({"ZUSD", "USDT"})
"""Quote assets the sandbox values at one US dollar."""


def _canonical(name: str) -> str:
    return name.strip().upper().replace("BTC", "XBT")


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
