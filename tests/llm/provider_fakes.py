"""The two wire dialects, as the providers answer them, for respx routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from core.decision.llm.interface import ModelContext
from core.decision.llm.providers import AnthropicMessagesModel, ChatCompletionsModel, HttpModel
from core.domain.clock import VirtualClock
from core.domain.config import ModelPrice, ModelSlot
from core.domain.models import MarketSnapshot, Ticker
from core.exchange.ratelimit import TokenBucketRateLimiter

KEY_ENV = "TEST_PROVIDER_API_KEY"
KEY = "sk-test-7c1f0d9e55aa4b21SECRET"
CONTEXT = ModelContext("conflict", MarketSnapshot("BTC/USDT", 0.0, Ticker(Decimal(1), Decimal(1), Decimal(1)), {}))
PRICE = ModelPrice(input_per_mtok=Decimal("0.27"), output_per_mtok=Decimal("1.10"))


@dataclass(frozen=True)
class Dialect:
    """One provider family: where it is, how it answers, how it carries the key."""

    provider: str
    base_url: str
    url: str
    model_class: type[HttpModel]
    model: str
    answer: Callable[[str, int, int], dict[str, Any]]
    key_of: Callable[[httpx.Request], str | None]

    def slot(self, **changes: Any) -> ModelSlot:
        values: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "base_url": self.base_url,
            "api_key_env": KEY_ENV,
            "max_retries": 2,
            "timeout_s": 5,
        }
        return ModelSlot(**{**values, **changes})

    def build(
        self,
        http: httpx.AsyncClient,
        clock: VirtualClock,
        *,
        limiter: TokenBucketRateLimiter | None = None,
        price: ModelPrice | None = PRICE,
        **slot_changes: Any,
    ) -> HttpModel:
        return self.model_class(
            f"conflict:{self.model}", self.slot(**slot_changes), http=http, clock=clock, limiter=limiter, price=price
        )

    def ok(self, text: str, input_tokens: int = 1200, output_tokens: int = 80) -> httpx.Response:
        return httpx.Response(200, json=self.answer(text, input_tokens, output_tokens))


def _chat(text: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "deepseek-chat",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }


def _messages(text: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def _bearer(request: httpx.Request) -> str | None:
    value = request.headers.get("authorization")
    return value.removeprefix("Bearer ") if value else None


OPENAI_COMPATIBLE = Dialect(
    "openai",
    "https://api.deepseek.com",
    "https://api.deepseek.com/chat/completions",
    ChatCompletionsModel,
    "deepseek-chat",
    _chat,
    _bearer,
)
ANTHROPIC = Dialect(
    "anthropic",
    "https://api.anthropic.com",
    "https://api.anthropic.com/v1/messages",
    AnthropicMessagesModel,
    "claude-sonnet-4-5",
    _messages,
    lambda r: r.headers.get("x-api-key"),
)
DIALECTS = [OPENAI_COMPATIBLE, ANTHROPIC]
