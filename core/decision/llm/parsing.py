"""Turning a model's free text into a validated answer, or into a known fallback.

Models wrap JSON in prose and code fences, misname fields and break their own rules.
The ladder here is: recover the JSON object -> validate it against the task's schema
-> on failure ask the model once more, quoting the validation error -> give up with
the errors. `ask` runs that ladder around `generate()` and swallows every failure of
the model (exceptions, timeouts), because one model must never stop a trade cycle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.decision.llm.interface import LanguageModel, ModelContext
from core.domain.enums import Action, Bias, Regime
from core.domain.errors import ModelError

log = logging.getLogger(__name__)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_DECODER = json.JSONDecoder(parse_float=Decimal)


class Answer(BaseModel):
    # validate_by_name: each alias here lists the field's own name first, so accepting the
    # name changes nothing at runtime; it lets the pydantic mypy plugin type __init__
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False, validate_by_name=True)


def _lower_word(value: Any) -> Any:
    return value.strip().lower().replace("-", "_").replace(" ", "_") if isinstance(value, str) else value


class TAAnswer(Answer):
    bias: Bias
    confidence: float = Field(ge=0, le=1)
    trend: Literal["up", "down", "sideways"] | None = Field(
        default=None, validation_alias=AliasChoices("trend", "trend_direction")
    )
    signals: list[str] = []
    reasoning: str = ""

    @field_validator("bias", mode="before")
    @classmethod
    def _bias_word(cls, value: Any) -> Any:
        word = _lower_word(value)
        return {"bullish": "long", "bearish": "short"}.get(word, word)

    @field_validator("trend", mode="before")
    @classmethod
    def _trend_word(cls, value: Any) -> Any:
        return _lower_word(value)

    @classmethod
    def fallback(cls, errors: tuple[str, ...]) -> TAAnswer:
        """No usable analysis: neutral, and no confidence in it."""
        return cls(bias=Bias.NEUTRAL, confidence=0, reasoning="fallback: " + "; ".join(errors))


class RegimeAnswer(Answer):
    regime: Regime
    confidence: float = Field(ge=0, le=1)
    reasoning: str = ""

    @field_validator("regime", mode="before")
    @classmethod
    def _regime_word(cls, value: Any) -> Any:
        return _lower_word(value)

    @classmethod
    def fallback(cls, errors: tuple[str, ...]) -> RegimeAnswer:
        """No usable reading: assume choppy, whose preset is the most careful."""
        return cls(regime=Regime.CHOPPY, confidence=0, reasoning="fallback: " + "; ".join(errors))


class VoteAnswer(Answer):
    action: Action
    confidence: float = Field(ge=0, le=1)
    entry: Decimal | None = Field(default=None, gt=0, validation_alias=AliasChoices("entry", "entry_price"))
    stop_loss: Decimal | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("stop_loss", "stop", "sl", "stop_price")
    )
    take_profit: Decimal | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("take_profit", "target", "tp", "take_profit_price")
    )
    reasoning: str = ""

    @field_validator("action", mode="before")
    @classmethod
    def _action_word(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _levels_on_their_sides(self) -> VoteAnswer:
        if self.action is Action.HOLD:
            return self
        up = 1 if self.action is Action.BUY else -1  # which way a profit moves the price
        pairs = (
            ("stop_loss", self.stop_loss, "entry", self.entry, -up),
            ("take_profit", self.take_profit, "entry", self.entry, up),
            ("take_profit", self.take_profit, "stop_loss", self.stop_loss, up),
        )
        for name, level, other_name, other, direction in pairs:
            if level is not None and other is not None and (level - other) * direction <= 0:
                side = "above" if direction > 0 else "below"
                raise ValueError(f"for {self.action.value} {name} {level} must be {side} {other_name} {other}")
        return self


class ConflictAction(StrEnum):
    PROCEED = "proceed"
    WAIT = "wait"
    MODIFY = "modify"
    ABORT = "abort"


_DEFAULT_SIZE_FACTOR = {
    "proceed": Decimal(1),
    "modify": Decimal("0.5"),
    "wait": Decimal(0),
    "abort": Decimal(0),
}


class ConflictAnswer(Answer):
    """A resolver's ruling; a missing size_factor defaults by action (modify halves)."""

    action: ConflictAction
    reasoning: str = ""
    confidence: float = Field(ge=0, le=1)
    size_factor: Decimal = Field(ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        action = _lower_word(data.get("action"))
        size = data.get("size_factor")
        return {
            **data,
            "action": action,
            "size_factor": _DEFAULT_SIZE_FACTOR.get(action) if size is None else size,
        }


A = TypeVar("A", bound=Answer)


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in `text`, looking inside code fences first. Floats become Decimal."""
    for candidate in [*(m.group(1) for m in _FENCE.finditer(text)), text]:
        for start in (i for i, char in enumerate(candidate) if char == "{"):
            try:
                found, _ = _DECODER.raw_decode(candidate, start)
            except json.JSONDecodeError:
                continue
            if isinstance(found, dict):
                return found
    raise ModelError(f"the answer holds no JSON object; answer with one JSON object. Answer began: {text[:80]!r}")


def parse_answer(text: str, schema: type[A]) -> A:
    """Validate the JSON object in `text` against `schema`; ModelError says what is wrong."""
    data = extract_json(text)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'answer'}: {err['msg']}" for err in exc.errors()
        )
        raise ModelError(f"the answer does not fit {schema.__name__}: {problems}") from exc


Repair = Callable[[str, str], Awaitable[str]]
"""Given the invalid answer and the validation error, the model's next answer."""


@dataclass(frozen=True)
class Parsed(Generic[A]):
    answer: A | None  # None when no valid answer came
    errors: tuple[str, ...] = ()  # every failure on the way, first to last


async def parse_with_repair(text: str, schema: type[A], repair: Repair) -> Parsed[A]:
    """Parse `text`; if that fails, give the model one chance to correct itself."""
    try:
        return Parsed(parse_answer(text, schema))
    except ModelError as first:
        retry_text = await repair(text, str(first))
        try:
            return Parsed(parse_answer(retry_text, schema), (str(first),))
        except ModelError as second:
            return Parsed(None, (str(first), str(second)))


def repair_prompt(prompt: str, bad_answer: str, error: str) -> str:
    return (
        f"{prompt}\n\nYour previous answer was:\n{bad_answer}\n\n"
        f"It was rejected: {error}\nReply again with only the corrected JSON object."
    )


async def ask(
    model: LanguageModel,
    prompt: str,
    *,
    context: ModelContext,
    schema: type[A],
    timeout_s: float | None,
) -> Parsed[A]:
    """Ask `model`, parse its answer (one repair allowed) within `timeout_s` in all.

    Never raises for the model's faults: failures come back as Parsed(None, errors).
    """

    async def repair(bad_answer: str, error: str) -> str:
        reply = await model.generate(repair_prompt(prompt, bad_answer, error), context=context)
        return reply.text

    try:
        async with asyncio.timeout(timeout_s):
            reply = await model.generate(prompt, context=context)
            parsed = await parse_with_repair(reply.text, schema, repair)
    except TimeoutError:
        parsed = Parsed(None, (f"{model.name} gave no answer within {timeout_s}s",))
    except Exception as exc:  # noqa: BLE001 - any failure of a model is a missing answer, by design
        parsed = Parsed(None, (f"{model.name} failed: {type(exc).__name__}: {exc}",))
    if parsed.answer is None:
        log.warning("model %s gave no valid %s answer: %s", model.name, context.task, "; ".join(parsed.errors))
    return parsed
