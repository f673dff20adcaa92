"""From settings to models: offline by default, a provider by configuration alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import respx

from core.decision.llm.factory import OFFLINE_DEFAULTS, build_models
from core.decision.llm.offline import (
    OfflineConflictResolver,
    OfflineRegimeClassifier,
    OfflineTechnicalAnalyst,
    default_trading_models,
)
from core.decision.llm.providers import AnthropicMessagesModel, ChatCompletionsModel
from core.domain.config import ModelSettings, ModelSlot, Settings, load_settings
from core.domain.errors import ConfigError
from tests.llm.provider_fakes import CONTEXT, KEY, KEY_ENV, OPENAI_COMPATIBLE


@pytest.fixture(autouse=True)
def no_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no ./tg.toml
    monkeypatch.delenv("TG_CONFIG", raising=False)


async def test_every_slot_defaults_to_its_offline_model() -> None:
    models = build_models(Settings())
    assert [m.name for m in models.traders] == [m.name for m in default_trading_models()]
    assert isinstance(models.ta, OfflineTechnicalAnalyst)
    assert isinstance(models.regime, OfflineRegimeClassifier)
    assert isinstance(models.conflict, OfflineConflictResolver)
    assert (models.quorum, models.http) == (4, None)  # no HTTP client when nothing is remote
    await models.aclose()


async def test_environment_variables_switch_a_slot_to_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_MODELS__CONFLICT__PROVIDER", "openai")
    monkeypatch.setenv("TG_MODELS__CONFLICT__BASE_URL", "https://api.deepseek.com")
    monkeypatch.setenv("TG_MODELS__CONFLICT__MODEL", "deepseek-chat")
    monkeypatch.setenv("TG_MODELS__CONFLICT__API_KEY_ENV", KEY_ENV)
    settings = load_settings()
    models = build_models(settings)
    try:
        assert isinstance(models.conflict, ChatCompletionsModel)
        assert models.conflict.name == "conflict:deepseek-chat"
        with respx.mock:
            respx.post(OPENAI_COMPATIBLE.url).mock(return_value=OPENAI_COMPATIBLE.ok('{"action": "wait"}'))
            reply = await models.conflict.generate("p", context=CONTEXT)
        assert reply.text == '{"action": "wait"}'
        assert KEY not in settings.model_dump_json()
    finally:
        await models.aclose()


async def test_a_toml_file_configures_slots_prices_and_rate_limits(tmp_path: Path) -> None:
    config = tmp_path / "models.toml"
    config.write_text(
        """
[models]
quorum = 3

[models.trader_1]
provider = "anthropic"
model = "claude-sonnet-4-5"
api_key_env = "ANTHROPIC_API_KEY"

[models.trader_2]
provider = "openai"
base_url = "https://api.x.ai/v1/"
model = "grok-4"
api_key_env = "XAI_API_KEY"

[models.trader_3]
provider = "openai"
base_url = "https://api.x.ai/v1"
model = "grok-4"

[models.trader_4]
model = "breakout"

[models.prices.grok-4]
input_per_mtok = "3"
output_per_mtok = "15"

[models.rate_limits."https://api.x.ai/v1"]
requests_per_minute = 30
burst = 2
"""
    )
    models = build_models(load_settings(config))
    try:
        first, second, third, fourth = models.traders[:4]
        assert isinstance(first, AnthropicMessagesModel) and first.url == "https://api.anthropic.com/v1/messages"
        assert isinstance(second, ChatCompletionsModel) and second.url == "https://api.x.ai/v1/chat/completions"
        assert isinstance(third, ChatCompletionsModel)
        assert second._limiter is third._limiter  # one provider, one bucket
        assert second._limiter is not first._limiter
        assert second._limiter is not None and (second._limiter.rate, second._limiter.capacity) == (0.5, 2)
        assert second._price is not None and str(second._price.output_per_mtok) == "15"
        assert fourth.name == "breakout" and models.quorum == 3
        assert models.http is not None and first._http is second._http is models.http  # one connection pool
    finally:
        await models.aclose()


def test_an_offline_slot_must_name_a_model_of_its_kind() -> None:
    with pytest.raises(ConfigError, match=r"models.ta: 'momentum' is not an offline ta model; use one of offline_ta"):
        build_models(ModelSettings(ta=ModelSlot(model="momentum")))
    with pytest.raises(ConfigError, match="not an offline trader model"):
        build_models(ModelSettings(trader_2=ModelSlot(model="offline_conflict")))


def test_a_remote_slot_without_a_model_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_MODELS__TRADER_1__PROVIDER", "openai")
    with pytest.raises(ConfigError, match="TG_MODELS__TRADER_1.*needs `model`"):
        load_settings()


def test_a_key_in_the_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "tg.toml"
    config.write_text('[models.conflict]\nprovider = "openai"\nmodel = "gpt-4o"\napi_key = "sk-live-123"\n')
    with pytest.raises(ConfigError, match="models.conflict.api_key") as raised:
        load_settings(config)
    assert "sk-live-123" not in str(raised.value)


def test_offline_defaults_cover_every_slot() -> None:
    assert set(OFFLINE_DEFAULTS) == set(ModelSettings.model_fields) - {
        "quorum",
        "answer_timeout_s",
        "prices",
        "rate_limits",
        "default_rate_limit",
    }
