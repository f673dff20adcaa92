"""The two "same float" shortcuts the seeded market takes must give what the long way
gives: a price rounded to the tick by float formatting is Decimal(float).quantize(tick),
ties included, and a midnight price read from the day's anchor is the hour level's
first point."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from simulator.embedded import SANDBOX_EPOCH as EPOCH
from simulator.pairs import PAIRS
from simulator.price_path import DAY, SyntheticPricePath, synthetic_paths

PATHS = {
    key: path for key, path in synthetic_paths(7, PAIRS.values(), EPOCH).items() if isinstance(path, SyntheticPricePath)
}
PRICES = st.one_of(
    st.floats(min_value=1e-9, max_value=1e7, allow_nan=False, allow_infinity=False),
    # exact binary ties at some tick: rounding half to even decides them
    st.builds(lambda whole, eighths: whole + eighths / 8, st.integers(0, 10**6), st.integers(0, 7)),
)


@given(price=PRICES, pair=st.sampled_from(sorted(PAIRS)))
def test_a_price_on_the_tick_is_the_quantized_float(price: float, pair: str) -> None:
    rounded = PATHS[pair]._price(price)
    expected = Decimal(price).quantize(PAIRS[pair].tick_size)
    assert rounded == expected
    assert rounded.as_tuple() == expected.as_tuple()  # the same digits and exponent, so the same wire string


def test_midnight_is_the_day_anchor_the_hours_start_at() -> None:
    assert len(PATHS) == len(PAIRS)
    assets = {id(a): a for path in PATHS.values() for a in (path._base, path._quote) if a is not None}
    first_day = math.floor(EPOCH / DAY)
    for asset in assets.values():
        for day in range(first_day - 20, first_day + 20):
            anchor, first_point = asset.opening(day * 24), asset.hours(day).points[0]
            assert anchor == first_point and math.copysign(1.0, anchor) == math.copysign(1.0, first_point)
