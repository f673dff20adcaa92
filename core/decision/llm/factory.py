"""From the `models` settings to the models of each slot.

A slot is offline (a deterministic rule set, the default) or a provider over HTTP;
switching is configuration only. Remote slots share one HTTP client, and the slots
that share a base URL share its rate limiter, because the provider counts their
requests together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

import httpx

from core.decision.llm.interface import LanguageModel
from core.decision.llm.offline import (
    Breakout,
    ContrarianRisk,
    MeanReverter,
    Momentum,
    OfflineConflictResolver,
    OfflineRegimeClassifier,
    OfflineTechnicalAnalyst,
    RegimeAligned,
    TrendFollower,
)
from core.decision.llm.providers import AnthropicMessagesModel, ChatCompletionsModel, HttpModel
from core.domain.clock import Clock, SystemClock
from core.domain.config import ModelSettings, ModelSlot, Settings
from core.domain.errors import ConfigError
from core.exchange.ratelimit import TokenBucketRateLimiter

SlotKind = Literal["trader", "ta", "regime", "conflict"]
TRADER_SLOTS: Final = ("trader_1", "trader_2", "trader_3", "trader_4", "trader_5", "trader_6")

OFFLINE_MODELS: Final[dict[SlotKind, dict[str, Callable[[], LanguageModel]]]] = {
    "trader": {
        cls.name: cls for cls in (TrendFollower, MeanReverter, Momentum, Breakout, RegimeAligned, ContrarianRisk)
    },
    "ta": {OfflineTechnicalAnalyst.name: OfflineTechnicalAnalyst},
    "regime": {OfflineRegimeClassifier.name: OfflineRegimeClassifier},
    "conflict": {OfflineConflictResolver.name: OfflineConflictResolver},
}
"""The offline models a slot of each kind may name."""

OFFLINE_DEFAULTS: Final[dict[str, str]] = {
    "trader_1": TrendFollower.name,
    "trader_2": MeanReverter.name,
    "trader_3": Momentum.name,
    "trader_4": Breakout.name,
    "trader_5": RegimeAligned.name,
    "trader_6": ContrarianRisk.name,
    "ta": OfflineTechnicalAnalyst.name,
    "regime": OfflineRegimeClassifier.name,
    "conflict": OfflineConflictResolver.name,
}
"""The offline model of each slot when its `model` is not set."""

_PROVIDERS: Final[dict[str, type[HttpModel]]] = {
    "openai": ChatCompletionsModel,
    "anthropic": AnthropicMessagesModel,
}


@dataclass
class ModelSet:
    """The model of every slot, with what the agents need to ask them. Close it after use."""

    ta: LanguageModel
    regime: LanguageModel
    traders: list[LanguageModel]
    conflict: LanguageModel
    quorum: int
    answer_timeout_s: float
    http: httpx.AsyncClient | None = field(default=None, repr=False)

    async def aclose(self) -> None:
        if self.http is not None:
            await self.http.aclose()


SLOT_KINDS: Final[dict[str, SlotKind]] = {
    **dict.fromkeys(TRADER_SLOTS, "trader"),
    "ta": "ta",
    "regime": "regime",
    "conflict": "conflict",
}


class _Builder:
    def __init__(self, settings: ModelSettings, clock: Clock, transport: httpx.AsyncBaseTransport | None) -> None:
        self._settings = settings
        self._clock = clock
        self._transport = transport
        self._limiters: dict[str, TokenBucketRateLimiter] = {}
        self.http: httpx.AsyncClient | None = None

    def build(self, slot_name: str) -> LanguageModel:
        slot: ModelSlot = getattr(self._settings, slot_name)
        if slot.provider == "offline":
            return self._offline(slot_name, slot)
        model_class = _PROVIDERS[slot.provider]
        base_url = (slot.base_url or model_class.default_base_url).rstrip("/")
        if self.http is None:
            self.http = httpx.AsyncClient(transport=self._transport)
        return model_class(
            f"{slot_name}:{slot.model}",
            slot,
            http=self.http,
            clock=self._clock,
            limiter=self._limiter(base_url),
            price=self._settings.prices.get(slot.model or ""),
        )

    def _offline(self, slot_name: str, slot: ModelSlot) -> LanguageModel:
        kind = SLOT_KINDS[slot_name]
        name = slot.model or OFFLINE_DEFAULTS[slot_name]
        known = OFFLINE_MODELS[kind]
        if name not in known:
            raise ConfigError(
                f"models.{slot_name}: {name!r} is not an offline {kind} model; use one of {', '.join(known)}"
            )
        return known[name]()

    def _limiter(self, base_url: str) -> TokenBucketRateLimiter:
        if base_url not in self._limiters:
            configured = {url.rstrip("/"): limit for url, limit in self._settings.rate_limits.items()}
            limit = configured.get(base_url, self._settings.default_rate_limit)
            self._limiters[base_url] = TokenBucketRateLimiter(
                limit.requests_per_minute / 60, limit.burst, clock=self._clock
            )
        return self._limiters[base_url]


def build_models(
    settings: Settings | ModelSettings,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ModelSet:
    """The models the settings configure. `transport` replaces the network (tests)."""
    models = settings.models if isinstance(settings, Settings) else settings
    builder = _Builder(models, clock or SystemClock(), transport)
    return ModelSet(
        ta=builder.build("ta"),
        regime=builder.build("regime"),
        traders=[builder.build(name) for name in TRADER_SLOTS],
        conflict=builder.build("conflict"),
        quorum=models.quorum,
        answer_timeout_s=models.answer_timeout_s,
        http=builder.http,
    )
