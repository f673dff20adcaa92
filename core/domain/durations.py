"""Durations as people write them (90s, 15m, 6h, 2d, 1h30m), read and shown alike."""

from __future__ import annotations

import re

from core.domain.errors import InputError

_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([smhd])")


def parse_duration(text: str) -> int:
    """Seconds in a duration; zero or anything else is refused with an example."""
    cleaned = text.strip().lower()
    if not re.fullmatch(r"(\d+[smhd])+", cleaned):
        raise InputError(
            f"{text!r} is not a duration: write a whole number and a unit s, m, h or d, e.g. 90s, 15m, 6h, 2d or 1h30m"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(cleaned))
    if seconds == 0:
        raise InputError(f"{text!r} is no time at all: give a duration longer than zero, e.g. 1h")
    return seconds


def format_duration(seconds: float) -> str:
    """The largest units first, whole seconds: 2592000 -> '30d', 5400 -> '1h30m'."""
    left = round(seconds)
    if left <= 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
