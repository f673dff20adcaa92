"""Coordinators over scripted models and a recording venue, closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import pytest

from core.decision.agents import RegimeDetectionAgent, TechnicalAnalysisAgent, TradingDecisionAgent
from core.decision.coordinator import CoordinatorAgent
from core.decision.llm.interface import LanguageModel
from core.storage.store import Store
from tests.coordinator.fakes import BULL, TA_LONG, RecordingVenue, ScriptedModel, traders, vote


class MakeCoordinator(Protocol):
    def __call__(
        self,
        *,
        votes: Sequence[LanguageModel] | None = None,
        ta: LanguageModel | None = None,
        regime: LanguageModel | None = None,
        conflict: LanguageModel | None = None,
        model_timeout_s: float = 30.0,
        **kwargs: Any,
    ) -> CoordinatorAgent: ...


@pytest.fixture
def venue() -> RecordingVenue:
    return RecordingVenue()


@pytest.fixture
async def make_coordinator(venue: RecordingVenue, store: Store) -> AsyncIterator[MakeCoordinator]:
    made: list[CoordinatorAgent] = []

    def make(
        *,
        votes: Sequence[LanguageModel] | None = None,
        ta: LanguageModel | None = None,
        regime: LanguageModel | None = None,
        conflict: LanguageModel | None = None,
        model_timeout_s: float = 30.0,
        **kwargs: Any,
    ) -> CoordinatorAgent:
        """Unanimous BUY votes in a bull market with a long bias, unless told otherwise."""
        models: list[LanguageModel] = list(votes) if votes is not None else list(traders(*[vote("BUY")] * 6))
        kwargs.setdefault("store", store)
        made.append(
            CoordinatorAgent(
                kwargs.pop("venue", venue),
                ta_agent=TechnicalAnalysisAgent(ta or ScriptedModel("ta", TA_LONG), timeout_s=model_timeout_s),
                regime_agent=RegimeDetectionAgent(regime or ScriptedModel("regime", BULL), timeout_s=model_timeout_s),
                decision_agent=TradingDecisionAgent(models, model_timeout_s=model_timeout_s),
                conflict_model=conflict,
                **kwargs,
            )
        )
        return made[-1]

    yield make
    for coordinator in made:
        await coordinator.close()


@pytest.fixture
def scripted() -> Callable[..., ScriptedModel]:
    return ScriptedModel
