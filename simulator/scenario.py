"""Scenarios as data: a TOML file that schedules price moves and faults on the
exchange's clock, counted from when the scenario is loaded ("at +10m the price drops
8% in 2 minutes; at +11m AddOrder answers EService:Unavailable for 90 s").

    name = "flash crash, the stop-loss refused"

    [[event]]
    at = "10m"
    price = { shape = "flash-crash", pair = "XBT/USD", pct = -8, over = "2m", recover = "15m" }

    [[event]]
    at = "10m"
    for = "20m"
    fault = "stop-fail"

    [[event]]
    at = "11m"
    for = "90s"
    fault = { fault = "unavailable", endpoint = "AddOrder" }

An event holds one `price` move (the fields of POST /_sandbox/price), one `fault`
(a spec or a rule table, as POST /_sandbox/faults takes) or one `status` (a trading
mode, as POST /_sandbox/status takes), at `at` after the start. A fault with `for`
acts only in [at, at + for), as often as it matches unless the rule sets `times`; a
status with `for` gives way to online at its end. Loading lays the price shapes over the market and installs the rules
with their windows at once: nothing is left to a timer, so the same seed and the same
scenario give the same exchange, request for request.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from simulator.exceptions import KrakenError
from simulator.faults import FaultRule, FaultSpecError, parse_rules
from simulator.models import PriceShape, ShapeKind, SystemStatus
from simulator.pairs import find_pair

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_DURATION = re.compile(r"(\d+)([smhd])")
MAX_SHAPE_SECONDS = 30 * 86_400


class ScenarioError(ValueError):
    """A scenario that cannot be read; the message says which event and why."""


def duration_seconds(text: str) -> int:
    """Seconds in a duration such as 90s, 15m, 6h, 2d or 1h30m; ValueError otherwise."""
    cleaned = text.strip().lower()
    if not re.fullmatch(r"(\d+[smhd])+", cleaned):
        raise ValueError(f"{text!r} is not a duration: write e.g. 90s, 15m, 6h, 2d or 1h30m")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(cleaned))


def _seconds(value: object) -> object:
    return duration_seconds(value) if isinstance(value, str) and value.strip()[-1:].isalpha() else value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0, le=MAX_SHAPE_SECONDS, allow_inf_nan=False)]
"""Seconds, as a number or a duration (90s, 2m, 1h30m)."""


def _pair_key(value: object) -> object:
    if isinstance(value, str):
        try:
            return find_pair(value).key
        except KrakenError:
            raise ValueError(f"unknown pair {value!r}") from None
    return value


class PriceMove(BaseModel):
    """A price shape as a caller gives it (POST /_sandbox/price, a scenario's `price`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    shape: ShapeKind
    pair: Annotated[str | None, BeforeValidator(_pair_key)] = None
    """A pair's key, altname or wsname (XBT/USD, BTC/USD); none: every pair."""
    pct: Decimal = Field(Decimal(0), gt=-100, lt=1_000, allow_inf_nan=False)
    """The move in percent: -8 is a fall of 8%. flat takes none."""
    over: Seconds = 0.0
    """trend, flat, flash-crash: how long the move (or the fall, or the calm) lasts."""
    recover: Seconds | None = None
    """flash-crash: how long the way back takes (default: as long as the fall)."""

    @model_validator(mode="after")
    def _complete(self) -> PriceMove:
        if self.shape != "jump" and self.over <= 0:
            raise ValueError(f"{self.shape} needs over > 0 (how long it lasts)")
        if self.shape != "flat" and self.pct == 0:
            raise ValueError(f"{self.shape} needs pct, the move in percent (e.g. -8)")
        if self.shape == "flat" and self.pct != 0:
            raise ValueError("flat takes no pct: it holds the price")
        if self.recover is not None and self.shape != "flash-crash":
            raise ValueError("only flash-crash takes recover")
        return self

    def at(self, start: float) -> PriceShape:
        recover = (self.recover or self.over) if self.shape == "flash-crash" else 0.0
        over = 0.0 if self.shape == "jump" else self.over
        return PriceShape(self.shape, start, self.pair, self.pct, over, recover)


class ScenarioEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    at: Seconds
    price: PriceMove | None = None
    fault: str | dict[str, Any] | None = None
    status: SystemStatus | None = None
    """A trading mode (maintenance, cancel_only, post_only, online) from `at` on."""
    lasts: Seconds | None = Field(None, alias="for")
    """A fault's or a mode's window; none: from `at` on, for good (a mode with `for`
    goes back to online after it)."""

    @model_validator(mode="after")
    def _one_thing(self) -> ScenarioEvent:
        if sum(thing is not None for thing in (self.price, self.fault, self.status)) != 1:
            raise ValueError("an event holds one price move, one fault or one status")
        if self.lasts is not None and self.price is not None:
            raise ValueError("for is a fault's or a status's window; a price move says how long it lasts with over")
        if self.lasts is not None and self.lasts <= 0:
            raise ValueError("for is how long the fault or status lasts: give more than 0s, or leave it out for good")
        return self


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = ""
    description: str = ""
    event: list[ScenarioEvent] = Field(default_factory=list)

    def shapes(self, start: float) -> list[PriceShape]:
        """The price moves, on the clock from `start`."""
        return [e.price.at(start + e.at) for e in self.event if e.price is not None]

    def status_changes(self, start: float) -> list[tuple[float, SystemStatus]]:
        """The trading-mode changes, on the clock from `start`: a mode with `for` is
        followed by online at its end."""
        changes: list[tuple[float, SystemStatus]] = []
        for e in self.event:
            if e.status is None:
                continue
            changes.append((start + e.at, e.status))
            if e.lasts is not None:
                changes.append((start + e.at + e.lasts, SystemStatus.ONLINE))
        return changes

    def rules(self, start: float) -> list[FaultRule]:
        """The faults, each with its window on the clock from `start`."""
        rules = []
        for index, e in enumerate(self.event):
            if e.fault is None:
                continue
            try:
                [rule] = parse_rules([e.fault])
            except FaultSpecError as exc:
                raise ScenarioError(f"event {index + 1}: {exc}") from None
            window: dict[str, Any] = {"active_from": start + e.at}
            if e.lasts is not None:
                window["active_until"] = start + e.at + e.lasts
                if "times" not in (e.fault if isinstance(e.fault, dict) else _spec_keys(e.fault)):
                    window["times"] = None
            rules.append(rule.model_copy(update=window))
        return rules


def _spec_keys(spec: str) -> set[str]:
    return {item.partition("=")[0].strip() for item in spec.partition(":")[2].split(",") if item}


def parse_scenario(text: str, source: str = "scenario") -> Scenario:
    """A scenario from TOML text; ScenarioError names the event and the reason."""
    try:
        document = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer past int()'s 4,300 digits
        raise ScenarioError(f"{source} is not TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{source} is not TOML: nested too deep") from None
    try:
        scenario = Scenario.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part + 1) if isinstance(part, int) else str(part) for part in error["loc"])
        reason = str(error["msg"]).removeprefix("Value error, ")
        raise ScenarioError(f"{source}: {where}: {reason}") from None
    scenario.rules(0.0)  # every fault checked now, not when it is due
    return scenario


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read the scenario {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"cannot read the scenario {path}: not UTF-8 text ({exc.reason})") from None
    return parse_scenario(text, str(path))
