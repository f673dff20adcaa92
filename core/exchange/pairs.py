"""Kraken's tradable pairs as tg uses them: precision, minimums, fees, and the
names a user may give a pair ("BTC/USDT", "XBTUSDT", "XBT/USDT", ...)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from core.domain.errors import InputError
from core.exchange.wire import AssetPair

_USER_ASSET_NAMES = {"XBT": "BTC", "XDG": "DOGE"}
"""Kraken's own asset codes where they differ from the names users know."""

_SUGGESTIONS = 6


@dataclass(frozen=True)
class PairInfo:
    key: str
    altname: str
    wsname: str
    base: str  # Kraken asset id, e.g. XXBT
    quote: str  # e.g. USDT
    symbol: str  # user form, e.g. BTC/USDT
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    ordermin: Decimal
    costmin: Decimal | None
    tick_size: Decimal | None
    taker_fee_pct: Decimal  # first tier, in percent (0.26 means 0.26%)
    maker_fee_pct: Decimal

    def round_price(self, p: Decimal) -> Decimal:
        """The nearest price Kraken accepts: a multiple of the tick, at pair_decimals."""
        places = Decimal(1).scaleb(-self.pair_decimals)
        if self.tick_size:
            p = (p / self.tick_size).to_integral_value(rounding=ROUND_HALF_UP) * self.tick_size
        return p.quantize(places, rounding=ROUND_HALF_UP)

    @property
    def lot_size(self) -> Decimal:
        """The smallest step of a volume."""
        return Decimal(1).scaleb(-self.lot_decimals)

    def round_volume(self, v: Decimal) -> Decimal:
        """Down to lot_decimals, so a rounded volume never exceeds what was meant."""
        return v.quantize(self.lot_size, rounding=ROUND_DOWN)


def user_asset(altname: str) -> str:
    """The name users know for a Kraken asset's altname: XBT is BTC, XDG is DOGE."""
    return _USER_ASSET_NAMES.get(altname, altname)


def user_symbol(wsname: str) -> str:
    """BASE/QUOTE as users write it, from Kraken's wsname: XBT/USD is BTC/USD."""
    return "/".join(user_asset(part) for part in wsname.split("/"))


def pair_info(key: str, wire: AssetPair) -> PairInfo | None:
    """None for a pair without a wsname: it has no BASE/QUOTE form to show users."""
    if wire.wsname is None:
        return None
    taker = wire.fees[0][1] if wire.fees else Decimal("0")
    maker = wire.fees_maker[0][1] if wire.fees_maker else taker
    return PairInfo(
        key=key,
        altname=wire.altname,
        wsname=wire.wsname,
        base=wire.base,
        quote=wire.quote,
        symbol=user_symbol(wire.wsname),
        pair_decimals=wire.pair_decimals,
        lot_decimals=wire.lot_decimals,
        cost_decimals=wire.cost_decimals,
        ordermin=wire.ordermin,
        costmin=wire.costmin,
        tick_size=wire.tick_size,
        taker_fee_pct=taker,
        maker_fee_pct=maker,
    )


class PairDirectory:
    """The listed pairs, and every name each one answers to (case-insensitive)."""

    def __init__(self, pairs: Mapping[str, PairInfo]) -> None:
        self.pairs = dict(pairs)
        derived = {
            name: info
            for info in self.pairs.values()
            for name in (info.symbol, info.symbol.replace("/", ""), info.wsname)
        }
        # Kraken's own identifiers win over names derived from them.
        kraken = {name: info for info in self.pairs.values() for name in (info.key, info.altname)}
        self._by_name = {name.upper(): info for name, info in (derived | kraken).items()}

    def resolve(self, symbol: str) -> PairInfo:
        wanted = symbol.strip().upper()
        found = self._by_name.get(wanted)
        if found is not None:
            return found
        suggestions = self._suggest(wanted)
        raise InputError(f"unknown symbol {wanted}: Kraken lists no such pair; try one of {suggestions}")

    def _suggest(self, wanted: str) -> str:
        symbols = sorted({info.symbol for info in self.pairs.values()})
        close = difflib.get_close_matches(wanted, symbols, n=_SUGGESTIONS, cutoff=0.5)
        shown = close or symbols[:_SUGGESTIONS]
        return ", ".join(shown) + (", ..." if len(symbols) > len(shown) else "")
