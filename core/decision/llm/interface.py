"""The one interface every language model slot speaks, offline or remote.

A remote provider answers the prompt text; an offline model reads the structured
ModelContext instead, so the same agent code can run either without a network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol

from core.domain.models import MarketSnapshot, RegimeOutput, TAOutput, TradingDecisionOutput

Task = Literal["technical_analysis", "regime", "trading_decision", "conflict"]


@dataclass(frozen=True)
class ModelContext:
    """The structured inputs behind a prompt, for models that do not read prose."""

    task: Task
    snapshot: MarketSnapshot
    indicators: Mapping[str, Decimal] = field(default_factory=dict)
    ta: TAOutput | None = None
    regime: RegimeOutput | None = None
    decision: TradingDecisionOutput | None = None
    stop_atr_multiple: Decimal | None = None  # the regime's preset, for trade votes
    conflict_type: str | None = None


@dataclass(frozen=True)
class ModelReply:
    text: str
    model: str
    latency_ms: float = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


class LanguageModel(Protocol):
    name: str

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        """Answer `prompt`; may raise or hang, callers bound and catch both."""
        ...
