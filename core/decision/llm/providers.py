"""Language models behind HTTP APIs: any OpenAI-compatible chat-completions API
(OpenAI, DeepSeek, xAI, a local Ollama) and Anthropic's Messages API.

Both speak core.decision.llm.interface.LanguageModel. What they share lives in HttpModel:
the key is read from its environment variable at call time (so it is never held,
shown in a repr, logged, or quoted in an error); every attempt waits its turn at
the provider's rate limiter; 429s, 5xx answers, timeouts and dropped connections
are retried, waiting what Retry-After asks (on the injected clock, so tests do not
sleep); every failure surfaces as ModelError. Each reply carries its tokens, its
latency and its cost from the configured price table.
"""

from __future__ import annotations

import email.utils
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from core.decision.llm.interface import ModelContext, ModelReply
from core.domain.clock import Clock
from core.domain.config import ModelPrice, ModelSlot
from core.domain.errors import ModelError
from core.exchange.ratelimit import TokenBucketRateLimiter

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are one model in an automated crypto trading system. "
    "Answer with exactly one JSON object as the prompt describes, and nothing else."
)
OPENAI_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
MAX_RETRY_AFTER_S = 60.0
"""A provider asking for a longer pause is out for longer than a trade cycle can wait."""
_RETRIED_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})  # 529: Anthropic overloaded
_MILLION = Decimal(1_000_000)
_ERROR_SNIPPET = 200


class _RetryableError(ModelError):
    """A failure worth another attempt, with the pause the provider asked for, if any."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Completion:
    """What a provider's answer body holds that tg uses."""

    text: str
    input_tokens: int
    output_tokens: int


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP date; None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def cost_of(price: ModelPrice | None, input_tokens: int, output_tokens: int) -> Decimal:
    if price is None:
        return Decimal(0)
    return (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / _MILLION


def _redacted(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


_BACKOFF = wait_exponential_jitter(initial=1, max=20, jitter=1)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)


B = TypeVar("B", bound=_Body)


class _ChatMessage(_Body):
    content: str | None = None


class _ChatChoice(_Body):
    message: _ChatMessage


class _ChatUsage(_Body):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _ChatCompletion(_Body):
    choices: list[_ChatChoice] = Field(min_length=1)
    usage: _ChatUsage = _ChatUsage()


class _ContentBlock(_Body):
    type: str
    text: str = ""


class _MessagesUsage(_Body):
    input_tokens: int = 0
    output_tokens: int = 0


class _MessagesResponse(_Body):
    content: list[_ContentBlock]
    usage: _MessagesUsage = _MessagesUsage()


class HttpModel(ABC):
    """One model slot served over HTTP. Holds no key: it reads `slot.api_key_env` per call."""

    default_base_url: str

    def __init__(
        self,
        name: str,
        slot: ModelSlot,
        *,
        http: httpx.AsyncClient,
        clock: Clock,
        limiter: TokenBucketRateLimiter | None = None,
        price: ModelPrice | None = None,
    ) -> None:
        if slot.model is None:
            raise ModelError(f"{name}: a {slot.provider} slot needs a model name")
        self.name = name
        self.model = slot.model
        self.base_url = (slot.base_url or self.default_base_url).rstrip("/")
        self._slot = slot
        self._http = http
        self._clock = clock
        self._limiter = limiter
        self._price = price

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, model={self.model!r}, "
            f"base_url={self.base_url!r}, api_key_env={self._slot.api_key_env!r})"
        )

    @property
    @abstractmethod
    def url(self) -> str:
        """Where requests go."""

    @abstractmethod
    def _headers(self, key: str | None) -> dict[str, str]:
        """The request's headers, the key among them when there is one."""

    @abstractmethod
    def _body(self, prompt: str) -> dict[str, Any]:
        """The request's JSON body."""

    @abstractmethod
    def _completion(self, response: httpx.Response) -> Completion:
        """The answer's text and token counts; ModelError when the body is not an answer."""

    async def generate(self, prompt: str, *, context: ModelContext) -> ModelReply:
        key = self._key()
        started = self._clock.monotonic()
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_RetryableError),
            stop=stop_after_attempt(self._slot.max_retries + 1),
            wait=self._wait,
            sleep=self._clock.sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._attempt(prompt, key)
        except _RetryableError as exc:
            attempts = self._slot.max_retries + 1
            raise ModelError(f"{self.name}: {exc}; gave up after {attempts} attempt(s)") from None
        completion = self._completion(response)
        return ModelReply(
            text=completion.text,
            model=self.name,
            latency_ms=(self._clock.monotonic() - started) * 1000,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cost_usd=cost_of(self._price, completion.input_tokens, completion.output_tokens),
        )

    def _key(self) -> str | None:
        env = self._slot.api_key_env
        if env is None:
            return None
        key = os.environ.get(env, "").strip()
        if not key:
            raise ModelError(
                f"{self.name}: the environment variable {env} should hold the API key but is not set; "
                f"export {env}, or point api_key_env of this slot at the variable that holds it"
            )
        return key

    async def _attempt(self, prompt: str, key: str | None) -> httpx.Response:
        if self._limiter is not None:
            await self._limiter.acquire()
        try:
            response = await self._http.post(
                self.url, json=self._body(prompt), headers=self._headers(key), timeout=self._slot.timeout_s
            )
        except httpx.TimeoutException:
            raise _RetryableError(f"no answer from {self.url} within {self._slot.timeout_s}s") from None
        except httpx.TransportError as exc:
            raise _RetryableError(f"cannot reach {self.url}: {type(exc).__name__}") from None
        if response.is_success:
            return response
        raise self._status_error(response, key)

    def _status_error(self, response: httpx.Response, key: str | None) -> ModelError:
        status = response.status_code
        if status in (401, 403):
            # The body may quote part of the key back, so it is not repeated here.
            return ModelError(
                f"{self.name}: {self.url} refused the API key from {self._slot.api_key_env} "
                f"(HTTP {status}); check that the variable holds a valid key for this provider"
            )
        detail = _redacted(response.text[:_ERROR_SNIPPET], key)
        message = f"{self.url} answered HTTP {status}: {detail}"
        if status in _RETRIED_STATUSES:
            pause = retry_after_seconds(response.headers.get("retry-after"), self._clock.time())
            if pause is not None and pause > MAX_RETRY_AFTER_S:
                return ModelError(
                    f"{self.name}: {message}; the provider asks for a {pause:.0f}s pause, "
                    f"longer than the {MAX_RETRY_AFTER_S:.0f}s a cycle waits; try again later"
                )
            return _RetryableError(message, pause)
        return ModelError(f"{self.name}: {message}; fix the slot's model or base_url")

    @staticmethod
    def _wait(state: RetryCallState) -> float:
        """Retry-After when the provider sent one, else exponential backoff."""
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _RetryableError) and error.retry_after_s is not None:
            return error.retry_after_s
        return _BACKOFF(state)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        pause = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("model %s: %s; attempt %d, retrying in %.1fs", self.name, error, state.attempt_number, pause)

    def _decoded(self, response: httpx.Response, shape: type[B]) -> B:
        try:
            return shape.model_validate_json(response.content)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise ModelError(
                f"{self.name}: {self.url} answered HTTP {response.status_code} with a body that is not "
                f"a {shape.__name__.lstrip('_')} ({where}: {first['msg']}); is base_url the right API?"
            ) from None


class ChatCompletionsModel(HttpModel):
    """An OpenAI-compatible POST {base_url}/chat/completions, key as a Bearer token."""

    default_base_url = OPENAI_BASE_URL

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _body(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": prompt},
            ],
            "temperature": self._slot.temperature,
            "max_tokens": self._slot.max_tokens,
        }

    def _completion(self, response: httpx.Response) -> Completion:
        body = self._decoded(response, _ChatCompletion)
        text = body.choices[0].message.content
        if not text:
            raise ModelError(f"{self.name}: {self.url} answered with an empty message")
        return Completion(text, body.usage.prompt_tokens, body.usage.completion_tokens)


class AnthropicMessagesModel(HttpModel):
    """Anthropic's POST {base_url}/v1/messages, key in x-api-key."""

    default_base_url = ANTHROPIC_BASE_URL

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/messages"

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    def _body(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "system": SYSTEM_PROMPT,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self._slot.temperature,
            "max_tokens": self._slot.max_tokens,
        }

    def _completion(self, response: httpx.Response) -> Completion:
        body = self._decoded(response, _MessagesResponse)
        text = "".join(block.text for block in body.content if block.type == "text")
        if not text:
            raise ModelError(f"{self.name}: {self.url} answered with no text block")
        return Completion(text, body.usage.input_tokens, body.usage.output_tokens)
