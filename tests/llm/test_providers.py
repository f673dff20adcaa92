"""The HTTP providers against their mocked APIs (respx): answers, retries that honour
Retry-After on a virtual clock, failures as ModelError, and a key that never leaks."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest
import respx

from core.decision.llm.parsing import ConflictAction, ConflictAnswer, ask
from core.decision.llm.providers import MAX_RETRY_AFTER_S, SYSTEM_PROMPT, retry_after_seconds
from core.domain.clock import VirtualClock
from core.domain.errors import ModelError
from core.exchange.ratelimit import TokenBucketRateLimiter
from tests.llm.provider_fakes import ANTHROPIC, CONTEXT, KEY, KEY_ENV, OPENAI_COMPATIBLE, Dialect

RULING = '{"action": "modify", "reasoning": "Reduce position size by 50% due to high volatility", "confidence": 0.85}'


@respx.mock
async def test_answer_carries_text_tokens_cost_and_the_request_is_well_formed(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    route = respx.post(dialect.url).mock(return_value=dialect.ok(RULING, 1200, 80))
    model = dialect.build(http, clock)

    reply = await model.generate("rule on this conflict", context=CONTEXT)

    assert (reply.text, reply.model) == (RULING, f"conflict:{dialect.model}")
    assert (reply.input_tokens, reply.output_tokens) == (1200, 80)
    # 1200 * 0.27 / 1e6 + 80 * 1.10 / 1e6, exactly
    assert reply.cost_usd == Decimal("0.000412") and isinstance(reply.cost_usd, Decimal)
    request = route.calls.last.request
    assert dialect.key_of(request) == KEY
    body = json.loads(request.content)
    assert body["model"] == dialect.model
    assert body["messages"][-1] == {"role": "user", "content": "rule on this conflict"}
    assert SYSTEM_PROMPT in json.dumps(body)


@respx.mock
async def test_openai_compatible_sends_a_system_message_and_anthropic_a_version_header(
    http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    chat = respx.post(OPENAI_COMPATIBLE.url).mock(return_value=OPENAI_COMPATIBLE.ok("{}"))
    messages = respx.post(ANTHROPIC.url).mock(return_value=ANTHROPIC.ok("{}"))
    await OPENAI_COMPATIBLE.build(http, clock).generate("p", context=CONTEXT)
    await ANTHROPIC.build(http, clock).generate("p", context=CONTEXT)

    system = json.loads(chat.calls.last.request.content)["messages"][0]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    anthropic_request = messages.calls.last.request
    assert anthropic_request.headers["anthropic-version"] == "2023-06-01"
    assert json.loads(anthropic_request.content)["system"] == SYSTEM_PROMPT
    assert "authorization" not in anthropic_request.headers


@respx.mock
async def test_a_local_model_without_a_key_sends_no_authorization(http: httpx.AsyncClient, clock: VirtualClock) -> None:
    route = respx.post("http://localhost:11434/v1/chat/completions").mock(return_value=OPENAI_COMPATIBLE.ok("{}"))
    model = OPENAI_COMPATIBLE.build(http, clock, base_url="http://localhost:11434/v1/", api_key_env=None)
    await model.generate("p", context=CONTEXT)
    assert "authorization" not in route.calls.last.request.headers


@respx.mock
async def test_429_waits_exactly_the_retry_after_seconds_on_the_clock(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    route = respx.post(dialect.url).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow down"}),
            dialect.ok("{}"),
        ]
    )
    reply = await dialect.build(http, clock).generate("p", context=CONTEXT)

    assert route.call_count == 2
    assert clock.monotonic() == 7.0
    assert reply.latency_ms == 7000.0


@respx.mock
async def test_retry_after_as_an_http_date(dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock) -> None:
    when = format_datetime(datetime.fromtimestamp(clock.time() + 12, UTC), usegmt=True)
    respx.post(dialect.url).mock(side_effect=[httpx.Response(429, headers={"Retry-After": when}), dialect.ok("{}")])
    await dialect.build(http, clock).generate("p", context=CONTEXT)
    assert clock.monotonic() == pytest.approx(12, abs=1)  # an HTTP date has whole seconds


@respx.mock
async def test_a_retry_after_longer_than_a_cycle_waits_fails_at_once(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    route = respx.post(dialect.url).mock(
        return_value=httpx.Response(429, headers={"Retry-After": str(int(MAX_RETRY_AFTER_S) * 10)})
    )
    with pytest.raises(ModelError, match="600s pause"):
        await dialect.build(http, clock).generate("p", context=CONTEXT)
    assert route.call_count == 1 and clock.monotonic() == 0


@pytest.mark.parametrize("status", [500, 502, 503, 529])
@respx.mock
async def test_5xx_is_retried_with_backoff_then_succeeds(
    status: int, dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    route = respx.post(dialect.url).mock(
        side_effect=[httpx.Response(status, text="upstream trouble"), httpx.Response(status), dialect.ok("{}")]
    )
    await dialect.build(http, clock).generate("p", context=CONTEXT)
    assert route.call_count == 3
    assert 1 <= clock.monotonic() <= 1 + 2 + 2  # backoff 1s then 2s, each with up to 1s of jitter


@respx.mock
async def test_5xx_every_time_is_a_model_error_after_max_retries(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    route = respx.post(dialect.url).mock(return_value=httpx.Response(503, text="overloaded"))
    with pytest.raises(ModelError, match=r"HTTP 503: overloaded.*gave up after 3 attempt"):
        await dialect.build(http, clock, max_retries=2).generate("p", context=CONTEXT)
    assert route.call_count == 3


@respx.mock
async def test_timeouts_are_retried_then_a_model_error(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    route = respx.post(dialect.url).mock(side_effect=httpx.ReadTimeout("read timed out"))
    with pytest.raises(ModelError, match=r"no answer from .* within 5(\.0)?s.*gave up after 2"):
        await dialect.build(http, clock, max_retries=1).generate("p", context=CONTEXT)
    assert route.call_count == 2


@respx.mock
async def test_a_dropped_connection_then_an_answer_recovers(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    respx.post(dialect.url).mock(side_effect=[httpx.ConnectError("refused"), dialect.ok("{}")])
    reply = await dialect.build(http, clock).generate("p", context=CONTEXT)
    assert reply.text == "{}"


@pytest.mark.parametrize("status", [400, 404, 422])
@respx.mock
async def test_other_4xx_fail_at_once(
    status: int, dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    route = respx.post(dialect.url).mock(return_value=httpx.Response(status, json={"error": "model not found"}))
    with pytest.raises(ModelError, match=f"HTTP {status}.*model not found"):
        await dialect.build(http, clock).generate("p", context=CONTEXT)
    assert route.call_count == 1


@respx.mock
async def test_a_body_that_is_not_an_answer_is_a_model_error(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    respx.post(dialect.url).mock(return_value=httpx.Response(200, json={"unexpected": True}))
    with pytest.raises(ModelError, match="is base_url the right API"):
        await dialect.build(http, clock).generate("p", context=CONTEXT)


@respx.mock
async def test_prose_wrapped_json_is_recovered(dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock) -> None:
    respx.post(dialect.url).mock(
        return_value=dialect.ok(f"Weighing both sides, here is my ruling:\n```json\n{RULING}\n```\nHope it helps.")
    )
    parsed = await ask(dialect.build(http, clock), "p", context=CONTEXT, schema=ConflictAnswer, timeout_s=30)
    assert parsed.answer is not None and parsed.answer.action is ConflictAction.MODIFY
    assert parsed.answer.size_factor == Decimal("0.5") and parsed.errors == ()


@respx.mock
async def test_invalid_json_gets_one_repair_request_then_a_fallback(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    route = respx.post(dialect.url).mock(return_value=dialect.ok("I would wait {action: wait, confidence: high}"))
    parsed = await ask(dialect.build(http, clock), "rule", context=CONTEXT, schema=ConflictAnswer, timeout_s=30)

    assert parsed.answer is None and len(parsed.errors) == 2
    assert all("no JSON object" in error for error in parsed.errors)
    assert route.call_count == 2
    repair = json.loads(route.calls.last.request.content)["messages"][-1]["content"]
    assert "rejected" in repair and "{action: wait" in repair


@respx.mock
async def test_a_repair_that_fixes_the_answer_is_accepted(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    respx.post(dialect.url).mock(side_effect=[dialect.ok('{"action": "pause"}'), dialect.ok(RULING)])
    parsed = await ask(dialect.build(http, clock), "rule", context=CONTEXT, schema=ConflictAnswer, timeout_s=30)
    assert parsed.answer is not None and parsed.answer.action is ConflictAction.MODIFY
    assert "does not fit ConflictAnswer" in parsed.errors[0]


@respx.mock
async def test_wrong_schema_twice_falls_back_with_the_validation_errors(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    respx.post(dialect.url).mock(return_value=dialect.ok('{"action": "modify", "confidence": 7}'))
    parsed = await ask(dialect.build(http, clock), "rule", context=CONTEXT, schema=ConflictAnswer, timeout_s=30)
    assert parsed.answer is None
    assert all("confidence" in error for error in parsed.errors)


@respx.mock
async def test_a_failing_provider_never_raises_through_ask(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    respx.post(dialect.url).mock(return_value=httpx.Response(500))
    parsed = await ask(dialect.build(http, clock), "rule", context=CONTEXT, schema=ConflictAnswer, timeout_s=30)
    assert parsed.answer is None and "HTTP 500" in parsed.errors[0]


@respx.mock
async def test_every_attempt_waits_for_the_providers_rate_limiter(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock
) -> None:
    respx.post(dialect.url).mock(return_value=dialect.ok("{}"))
    limiter = TokenBucketRateLimiter(rate=0.5, capacity=1, clock=clock)  # 30 requests a minute, no burst
    model = dialect.build(http, clock, limiter=limiter)
    for _ in range(3):
        await model.generate("p", context=CONTEXT)
    assert clock.monotonic() == pytest.approx(4.0)  # the 2nd and 3rd request each wait 2 s


@respx.mock
async def test_an_unpriced_model_costs_zero(dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock) -> None:
    respx.post(dialect.url).mock(return_value=dialect.ok("{}", 5000, 5000))
    reply = await dialect.build(http, clock, price=None).generate("p", context=CONTEXT)
    assert reply.cost_usd == Decimal(0) and reply.input_tokens == 5000


# the key never leaks


async def test_a_missing_key_names_the_variable_and_sends_nothing(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    with respx.mock(assert_all_called=False) as router:
        route = router.post(dialect.url)
        with pytest.raises(ModelError, match=f"{KEY_ENV} should hold the API key"):
            await dialect.build(http, clock).generate("p", context=CONTEXT)
    assert route.call_count == 0


async def test_the_key_is_read_at_call_time(
    dialect: Dialect, http: httpx.AsyncClient, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = dialect.build(http, clock)
    monkeypatch.setenv(KEY_ENV, "sk-rotated")
    with respx.mock as router:
        route = router.post(dialect.url).mock(return_value=dialect.ok("{}"))
        await model.generate("p", context=CONTEXT)
    assert dialect.key_of(route.calls.last.request) == "sk-rotated"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401, json={"error": {"message": f"Incorrect API key provided: {KEY}"}}),
        httpx.Response(403, text=f"forbidden for {KEY[:12]}...{KEY[-4:]}"),
        httpx.Response(400, json={"error": f"bad request from key {KEY}"}),
        httpx.Response(503, text=f"busy, key {KEY}"),
    ],
    ids=["401-echo", "403-partial-echo", "400-echo", "503-echo"],
)
@respx.mock
async def test_the_key_is_never_in_errors_reprs_or_logs(
    response: httpx.Response,
    dialect: Dialect,
    http: httpx.AsyncClient,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    respx.post(dialect.url).mock(return_value=response)
    model = dialect.build(http, clock)
    with pytest.raises(ModelError) as raised:
        await model.generate("p", context=CONTEXT)
    parsed = await ask(model, "p", context=CONTEXT, schema=ConflictAnswer, timeout_s=30)

    seen = [str(raised.value), repr(raised.value), repr(model), *parsed.errors, caplog.text]
    for text in seen:
        assert KEY not in text and KEY[-4:] not in text, text
    assert KEY_ENV in repr(model)
    if response.status_code in (401, 403):
        assert f"refused the API key from {KEY_ENV}" in str(raised.value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("soon", None), (None, None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_values(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, now=1_700_000_000) == expected
