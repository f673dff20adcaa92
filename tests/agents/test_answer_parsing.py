"""Recovering answers from model text: JSON in prose and fences, one repair, then fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from core.decision.llm.interface import ModelContext, ModelReply
from core.decision.llm.parsing import (
    ConflictAction,
    ConflictAnswer,
    RegimeAnswer,
    TAAnswer,
    VoteAnswer,
    ask,
    extract_json,
    parse_answer,
    parse_with_repair,
)
from core.domain.enums import Action, Bias, Regime
from core.domain.errors import ModelError
from core.domain.models import MarketSnapshot, Ticker

VOTE = '{"action": "BUY", "confidence": 0.7, "entry": 45000.1, "stop_loss": 44000, "take_profit": 47000}'
CONTEXT = ModelContext(
    "trading_decision", MarketSnapshot("BTC/USDT", 0.0, Ticker(Decimal(1), Decimal(1), Decimal(1)), {})
)


def test_plain_json_numbers_become_exact_decimals() -> None:
    vote = parse_answer(VOTE, VoteAnswer)
    assert vote.action is Action.BUY
    assert vote.entry == Decimal("45000.1") and isinstance(vote.entry, Decimal)
    assert (vote.stop_loss, vote.take_profit) == (Decimal(44000), Decimal(47000))


def test_json_inside_prose_is_recovered() -> None:
    text = f"Looking at the chart {{not json}} I would say:\n{VOTE}\nGood luck!"
    assert parse_answer(text, VoteAnswer).action is Action.BUY


def test_fenced_json_wins_over_braces_in_the_prose() -> None:
    text = 'Weighing {"action": "SELL"} against the trend...\n```json\n' + VOTE + "\n```"
    assert parse_answer(text, VoteAnswer).action is Action.BUY


def test_seed_style_answers_with_aliases_and_loose_words() -> None:
    vote = parse_answer('{"action": "buy", "confidence": 0.8, "entry": 45000, "stop": 44000}', VoteAnswer)
    assert (vote.action, vote.stop_loss, vote.take_profit) == (Action.BUY, Decimal(44000), None)
    ta = parse_answer('{"trend": "up", "bias": "Bullish", "confidence": 0.8}', TAAnswer)
    assert (ta.trend, ta.bias, ta.confidence) == ("up", Bias.LONG, 0.8)
    regime = parse_answer('{"regime": "Trending Bull", "confidence": 0.9}', RegimeAnswer)
    assert regime.regime is Regime.TRENDING_BULL


def test_conflict_answer_defaults_size_by_action() -> None:
    reasoning = "Reduce position size by 50% due to high volatility"
    text = f'{{"action": "modify", "reasoning": "{reasoning}", "confidence": 0.85}}'
    answer = parse_answer(text, ConflictAnswer)
    assert (answer.action, answer.size_factor, answer.confidence) == (
        ConflictAction.MODIFY,
        Decimal("0.5"),
        0.85,
    )
    assert parse_answer('{"action": "abort", "confidence": 1}', ConflictAnswer).size_factor == 0
    explicit = parse_answer('{"action": "modify", "confidence": 1, "size_factor": 0.3}', ConflictAnswer)
    assert explicit.size_factor == Decimal("0.3")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("I would hold for now.", "no JSON object"),
        ('{"action": "BUY", "confidence": 1.5}', "confidence"),
        ('{"action": "MAYBE", "confidence": 0.5}', "action"),
        (
            '{"action": "BUY", "confidence": 0.5, "entry": 100, "stop_loss": 101}',
            "stop_loss 101 must be below entry 100",
        ),
        (
            '{"action": "SELL", "confidence": 0.5, "entry": 100, "take_profit": 101}',
            "must be below entry 100",
        ),
        (
            '{"action": "BUY", "confidence": 0.5, "stop_loss": 105, "take_profit": 101}',
            "must be above stop_loss",
        ),
        ('{"action": "BUY", "confidence": 0.5, "entry": -3}', "entry"),
    ],
)
def test_invalid_answers_raise_model_error_naming_the_problem(text: str, complaint: str) -> None:
    with pytest.raises(ModelError, match=complaint):
        parse_answer(text, VoteAnswer)


def test_extract_json_rejects_non_objects() -> None:
    with pytest.raises(ModelError, match="no JSON object"):
        extract_json("[1, 2, 3]")


async def test_one_repair_fixes_an_invalid_answer() -> None:
    asked: list[tuple[str, str]] = []

    async def repair(bad: str, error: str) -> str:
        asked.append((bad, error))
        return VOTE

    parsed = await parse_with_repair('{"action": "BUY", "confidence": 7}', VoteAnswer, repair)
    assert parsed.answer is not None and parsed.answer.action is Action.BUY
    assert len(asked) == 1 and "confidence" in asked[0][1]
    assert len(parsed.errors) == 1


async def test_a_failed_repair_gives_no_answer_and_both_errors() -> None:
    async def repair(bad: str, error: str) -> str:
        return "still not json"

    parsed = await parse_with_repair("nope", VoteAnswer, repair)
    assert parsed.answer is None
    assert len(parsed.errors) == 2 and all("no JSON object" in e for e in parsed.errors)


async def test_ask_repairs_through_the_model_with_the_error_in_the_prompt(
    scripted: Callable[..., Any],
) -> None:
    model = scripted("m", '{"action": "BUY", "confidence": "high"}', VOTE)
    parsed = await ask(model, "What now?", context=CONTEXT, schema=VoteAnswer, timeout_s=5)
    assert parsed.answer is not None and parsed.answer.action is Action.BUY
    assert len(model.prompts) == 2
    assert model.prompts[1].startswith("What now?") and "confidence" in model.prompts[1]


async def test_ask_turns_a_crashing_model_into_no_answer(scripted: Callable[..., Any]) -> None:
    parsed = await ask(
        scripted("boom", RuntimeError("provider 500")), "q", context=CONTEXT, schema=VoteAnswer, timeout_s=5
    )
    assert parsed.answer is None
    assert parsed.errors == ("boom failed: RuntimeError: provider 500",)


class _Hanging:
    name = "hanging"

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.mark.looptime
async def test_ask_times_out_a_hanging_model() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    parsed = await ask(_Hanging(), "q", context=CONTEXT, schema=VoteAnswer, timeout_s=7)
    assert parsed.answer is None
    assert parsed.errors == ("hanging gave no answer within 7s",)
    assert loop.time() - start == pytest.approx(7)


def test_fallbacks_are_neutral_ta_and_choppy_regime() -> None:
    ta = TAAnswer.fallback(("bad",))
    assert (ta.bias, ta.confidence) == (Bias.NEUTRAL, 0)
    regime = RegimeAnswer.fallback(("bad",))
    assert (regime.regime, regime.confidence) == (Regime.CHOPPY, 0)
    assert "bad" in regime.reasoning
