"""The seeded market's parameters, per asset and per pair: how each asset moves, how
busy each pair is and how deep its book (simulator/data/market.toml).

Data, not code, so that listing a pair is an edit of two data files; price_path.py and
matching.py read them from here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from pydantic import TypeAdapter


@dataclass(frozen=True)
class AssetDynamics:
    start_price: float
    """USD price at the path's origin."""
    beta: float
    """Exposure to the market factor."""
    idio_vol: float
    """Daily log-volatility of the asset's own moves."""


@dataclass(frozen=True)
class PairActivity:
    minute_volume: float
    """Mean base volume traded per minute."""
    trade_size: float
    """Mean base volume of one trade, to count trades."""


@dataclass(frozen=True)
class Liquidity:
    half_spread_bps: Decimal
    depth: Decimal
    """Quote notional that pushes a market fill 10 bps further from the touch."""


_DATA: dict[str, Any] = tomllib.loads(resources.files("simulator").joinpath("data/market.toml").read_text())

ASSET_DYNAMICS = TypeAdapter(dict[str, AssetDynamics]).validate_python(_DATA["assets"])
PAIR_ACTIVITY = TypeAdapter(dict[str, PairActivity]).validate_python(
    {
        key: {"minute_volume": row["minute_volume"], "trade_size": row["trade_size"]}
        for key, row in _DATA["pairs"].items()
    }
)
LIQUIDITY = TypeAdapter(dict[str, Liquidity]).validate_python(
    {key: {"half_spread_bps": row["half_spread_bps"], "depth": row["depth"]} for key, row in _DATA["pairs"].items()}
)
