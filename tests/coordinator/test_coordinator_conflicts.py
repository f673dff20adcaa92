"""Conflicts between the agents: detection, a ruling from a real provider client over a
mocked API (respx) stored in coordinator_conflicts, clamped modifications, and the
fallback to wait."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import respx

from core.decision.bus import MessageTopic
from core.decision.conflicts import (
    ConflictResolution,
    ConflictType,
    ResolutionAnswer,
    clamp_resolution,
    detect_conflicts,
)
from core.decision.coordinator import ConflictInfo, TaskStatus
from core.decision.llm.parsing import ConflictAction
from core.decision.llm.providers import ChatCompletionsModel
from core.domain.clock import VirtualClock
from core.domain.config import ConflictSettings
from core.domain.enums import Action, Bias, Regime
from core.domain.models import ModelDecision, RegimeOutput, TAOutput, TradingDecisionOutput
from core.storage.store import Store
from tests.coordinator.conftest import MakeCoordinator
from tests.coordinator.fakes import (
    BEAR,
    TA_SHORT,
    VOLATILE_BULL,
    RecordingVenue,
    ScriptedModel,
    traders,
    vote,
)
from tests.llm.provider_fakes import KEY, KEY_ENV, OPENAI_COMPATIBLE

SETTINGS = ConflictSettings()
TA_LONG = TAOutput("BTC/USDT", Bias.LONG, 0.75, "up", 0.6, 0.4, {"price": Decimal(45000), "atr_14": Decimal(600)})
BULL = RegimeOutput("BTC/USDT", Regime.TRENDING_BULL, 0.85, 0.013)
HIGH_VOLATILITY = RegimeOutput("BTC/USDT", Regime.VOLATILE_BULL, 0.85, 0.06)


def decision(*votes: tuple[str, float], action: str = "BUY", consensus: float | None = None) -> TradingDecisionOutput:
    models = [ModelDecision(f"m{i}", Action(a), c) for i, (a, c) in enumerate(votes)]
    winners = sum(1 for a, _ in votes if a == action)
    return TradingDecisionOutput(
        "BTC/USDT",
        Action(action),
        consensus if consensus is not None else winners / len(votes),
        0.7,
        models,
        entry=Decimal(45000) if action != "HOLD" else None,
        stop_loss=Decimal(44000) if action == "BUY" else None,
        take_profit=Decimal(48000) if action == "BUY" else None,
    )


UNANIMOUS_BUY = decision(*[("BUY", 0.8)] * 6)
SPLIT = decision(*[("BUY", 0.8)] * 3, *[("HOLD", 0.7)] * 3, action="HOLD")
LOW = ConflictType.LOW_CONSENSUS


@pytest.fixture
async def deepseek(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ChatCompletionsModel]:
    monkeypatch.setenv(KEY_ENV, KEY)
    http = httpx.AsyncClient()
    model = OPENAI_COMPATIBLE.build(http, VirtualClock(), price=None)
    assert isinstance(model, ChatCompletionsModel)
    yield model
    await http.aclose()


# detection


@pytest.mark.parametrize(
    ("ta", "regime", "decided", "expected"),
    [
        (TA_LONG, BULL, UNANIMOUS_BUY, []),
        (TA_LONG, BULL, decision(*[("HOLD", 0.7)] * 6, action="HOLD"), []),
        (TA_LONG, BULL, SPLIT, [ConflictType.LOW_CONSENSUS]),
        (TA_LONG, BULL, decision(*[("BUY", 0.8)] * 3, *[("SELL", 0.7)] * 3, action="HOLD"), [LOW]),
        (TA_LONG, BULL, decision(*[("BUY", 0.8)] * 3, ("HOLD", 0.6), ("HOLD", 0.6), ("SELL", 0.6)), [LOW]),
        (TA_LONG, HIGH_VOLATILITY, UNANIMOUS_BUY, [ConflictType.HIGH_VOLATILITY]),
        (TA_LONG, RegimeOutput("BTC/USDT", Regime.RANGING, 0.7, 0.08), UNANIMOUS_BUY, [ConflictType.HIGH_VOLATILITY]),
        (
            TA_LONG,
            RegimeOutput("BTC/USDT", Regime.TRENDING_BEAR, 0.8, 0.01),
            UNANIMOUS_BUY,
            [ConflictType.TA_REGIME_MISMATCH],
        ),
        (
            TAOutput("BTC/USDT", Bias.SHORT, 0.7, "down", 0.5, -0.3, {}),
            BULL,
            UNANIMOUS_BUY,
            [ConflictType.TRADE_AGAINST_TA, ConflictType.TA_REGIME_MISMATCH],
        ),
    ],
    ids=[
        "aligned",
        "unanimous-hold",
        "split-buy-hold",
        "split-buy-sell",
        "thin-majority",
        "volatile-regime",
        "volatile-atr",
        "ta-vs-regime",
        "trade-vs-ta",
    ],
)
def test_conflicts_are_detected_most_serious_first(
    ta: TAOutput, regime: RegimeOutput, decided: TradingDecisionOutput, expected: list[ConflictType]
) -> None:
    assert [kind for kind, _ in detect_conflicts(ta, regime, decided, SETTINGS)] == expected


# the seed's scenario, with a real provider client over a mocked DeepSeek API


@respx.mock
async def test_coordinator_conflict_resolution_with_llm(
    make_coordinator: MakeCoordinator, deepseek: ChatCompletionsModel, store: Store
) -> None:
    route = respx.post(OPENAI_COMPATIBLE.url).mock(
        return_value=OPENAI_COMPATIBLE.ok(
            '{"action": "modify", "reasoning": "Reduce position size by 50% due to high volatility", "confidence": 0.85}'
        )
    )
    coordinator = make_coordinator(conflict=deepseek, config={"conflicts": {"min_consensus": 0.6}})
    decision_output = TradingDecisionOutput(
        "BTC/USDT",
        Action.BUY,
        0.50,
        0.7,
        [
            ModelDecision("m1", Action.BUY, 0.8),
            ModelDecision("m2", Action.BUY, 0.7),
            ModelDecision("m3", Action.BUY, 0.6),
            ModelDecision("m4", Action.HOLD, 0.7),
            ModelDecision("m5", Action.HOLD, 0.75),
            ModelDecision("m6", Action.HOLD, 0.8),
        ],
        entry=Decimal(45000),
        stop_loss=Decimal(44000),
        take_profit=Decimal(48000),
    )

    resolution = await coordinator._resolve_conflict(
        ConflictInfo(
            conflict_type="low_consensus",
            ta_output=TA_LONG,
            regime_output=HIGH_VOLATILITY,
            decision_output=decision_output,
        )
    )

    assert resolution.action == "modify"
    assert resolution.confidence > 0.7
    assert "reduce position" in resolution.reasoning.lower()
    assert resolution.size_factor == Decimal("0.5") and resolution.model == "conflict:deepseek-chat"
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    prompt = json.loads(request.content)["messages"][-1]["content"]
    assert "low_consensus" in prompt and "volatile_bull" in prompt and "vote m6: HOLD" in prompt

    await coordinator.message_bus.drain()  # the recorder writes as a bus subscriber
    [conflict_record] = store.conflicts("BTC/USDT")
    assert conflict_record["resolution_action"] == "modify"
    assert conflict_record["conflict_type"] == "low_consensus"
    assert conflict_record["confidence"] == 0.85
    assert conflict_record["payload"]["resolution"]["size_factor"] == "0.5"
    assert conflict_record["payload"]["decision"]["votes"] == {"BUY": 3, "HOLD": 3}
    assert KEY not in json.dumps(conflict_record)
    [alert] = await coordinator.message_bus.get_history(MessageTopic.RISK_ALERTS)
    assert alert.payload["event"] == "conflict" and alert.payload["resolution"]["action"] == "modify"


@respx.mock
async def test_a_provider_that_is_down_makes_the_ruling_wait(
    make_coordinator: MakeCoordinator, deepseek: ChatCompletionsModel, store: Store
) -> None:
    respx.post(OPENAI_COMPATIBLE.url).mock(return_value=httpx.Response(503))
    coordinator = make_coordinator(conflict=deepseek)
    resolution = await coordinator._resolve_conflict(
        ConflictInfo("low_consensus", TA_LONG, BULL, SPLIT, correlation_id="R-1")
    )
    assert (resolution.action, resolution.confidence, resolution.fallback) == (ConflictAction.WAIT, 0.0, True)
    assert "HTTP 503" in resolution.reasoning
    await coordinator.message_bus.drain()  # the recorder writes as a bus subscriber
    [row] = store.conflicts("BTC/USDT")
    assert (row["resolution_action"], row["run_id"]) == ("wait", "R-1")


@pytest.mark.looptime
async def test_a_ruling_that_never_comes_is_a_wait(make_coordinator: MakeCoordinator, store: Store) -> None:
    hung = ScriptedModel("hung", '{"action": "proceed", "confidence": 0.9}', delay=10_000)
    coordinator = make_coordinator(conflict=hung, config={"conflicts": {"timeout_s": 15}})
    loop = asyncio.get_running_loop()
    started = loop.time()
    resolution = await coordinator._resolve_conflict(ConflictInfo("low_consensus", TA_LONG, BULL, SPLIT))
    assert loop.time() - started == pytest.approx(15, abs=0.01)
    assert resolution.action is ConflictAction.WAIT and "within 15" in resolution.reasoning
    await coordinator.message_bus.drain()  # the recorder writes as a bus subscriber
    assert store.conflicts()[0]["resolution_action"] == "wait"


# clamping


@pytest.mark.parametrize(
    ("answer", "size", "stop", "note"),
    [
        ({"action": "modify", "confidence": 0.8, "size_factor": 0.1}, "0.25", "44000", "clamped to 0.25"),
        ({"action": "modify", "confidence": 0.8, "size_factor": 0.6, "stop_loss": 44500}, "0.6", "44500", None),
        ({"action": "modify", "confidence": 0.8, "stop_loss": 43000}, "0.5", "44000", "would widen"),
        ({"action": "modify", "confidence": 0.8, "stop_loss": 45500}, "0.5", "44000", "not on the losing side"),
        ({"action": "proceed", "confidence": 0.8, "size_factor": 0.3}, "1", "44000", None),
        ({"action": "abort", "confidence": 0.8, "size_factor": 0.9}, "0", None, None),
    ],
    ids=["size-floor", "tighter-stop", "wider-stop", "stop-past-entry", "proceed-full", "abort-nothing"],
)
def test_modifications_are_clamped(answer: dict[str, object], size: str, stop: str | None, note: str | None) -> None:
    ruling = clamp_resolution(ResolutionAnswer.model_validate(answer), (), UNANIMOUS_BUY, SETTINGS, "m")
    assert ruling.size_factor == Decimal(size)
    assert ruling.stop_loss == (Decimal(stop) if stop is not None else None)
    if note is None:
        assert ruling.notes == ()
    else:
        assert any(note in n for n in ruling.notes), ruling.notes


def test_a_sell_stop_is_never_widened_either() -> None:
    sell = TradingDecisionOutput(
        "BTC/USDT",
        Action.SELL,
        1.0,
        0.8,
        [],
        entry=Decimal(45000),
        stop_loss=Decimal(46000),
        take_profit=Decimal(42000),
    )

    def ruling(stop: int) -> ConflictResolution:
        answer = ResolutionAnswer.model_validate({"action": "modify", "confidence": 0.7, "stop": stop})
        return clamp_resolution(answer, (), sell, SETTINGS, "m")

    wider, tighter = ruling(47000), ruling(45600)
    assert (wider.stop_loss, tighter.stop_loss) == (Decimal(46000), Decimal(45600))


# conflicts inside a trading decision


async def test_a_split_vote_is_a_stored_conflict_and_no_trade(
    make_coordinator: MakeCoordinator, venue: RecordingVenue, store: Store
) -> None:
    coordinator = make_coordinator(votes=traders(*[vote("BUY")] * 3, *[vote("HOLD")] * 3))
    result = await coordinator.run_cycle("BTC/USDT", correlation_id="R-split")

    assert result.status is TaskStatus.COMPLETED
    assert result.decision is not None and result.decision.action is Action.HOLD
    assert result.conflict is not None and result.conflict.conflict_type == "low_consensus"
    assert result.resolution is not None and result.resolution.action is ConflictAction.WAIT  # the offline resolver
    assert result.proposal is None and venue.executed == []
    await coordinator.message_bus.drain()  # the recorder writes as a bus subscriber
    [row] = store.conflicts("BTC/USDT")
    assert (row["run_id"], row["conflict_type"], row["resolution_action"]) == ("R-split", "low_consensus", "wait")
    assert "split vote (3 BUY, 3 HOLD)" in row["payload"]["details"][0]


async def test_a_modify_ruling_trades_smaller_with_the_tighter_stop(
    make_coordinator: MakeCoordinator, venue: RecordingVenue, scripted: type[ScriptedModel]
) -> None:
    baseline = await make_coordinator().run_cycle("BTC/USDT")
    assert baseline.verdict is not None and baseline.verdict.proposal.volume is not None
    full_volume, original_stop = baseline.verdict.proposal.volume, baseline.verdict.proposal.stop_loss
    tighter = (original_stop + baseline.verdict.proposal.entry_price) / 2

    resolver = scripted(
        "resolver", f'{{"action": "modify", "confidence": 0.8, "size_factor": 0.5, "stop_loss": {tighter}}}'
    )
    coordinator = make_coordinator(regime=scripted("regime", VOLATILE_BULL), conflict=resolver)
    result = await coordinator.run_cycle("BTC/USDT")

    assert result.conflict is not None and result.conflict.conflict_type == "high_volatility"
    assert result.verdict is not None and result.verdict.is_approved()
    executed, _ = venue.executed[-1]
    assert executed.stop_loss == tighter
    assert any("conflict ruling modify sizes at 0.5x" in r for r in result.verdict.reasons)
    assert executed.volume == result.verdict.proposal.volume
    assert executed.volume is not None and executed.volume < full_volume


@pytest.mark.parametrize(("ruling", "stopped_by"), [("wait", "wait"), ("abort", "abort")])
async def test_wait_and_abort_rulings_send_nothing(
    ruling: str,
    stopped_by: str,
    make_coordinator: MakeCoordinator,
    venue: RecordingVenue,
    scripted: type[ScriptedModel],
    store: Store,
) -> None:
    coordinator = make_coordinator(
        ta=scripted("ta", TA_SHORT), conflict=scripted("resolver", f'{{"action": "{ruling}", "confidence": 0.9}}')
    )
    result = await coordinator.run_cycle("BTC/USDT")
    assert result.conflict is not None and result.conflict.conflict_type == "trade_against_ta"
    assert result.stopped_by == stopped_by and result.proposal is None and result.verdict is None
    assert venue.executed == []
    await coordinator.message_bus.drain()  # the recorder writes as a bus subscriber
    assert store.conflicts()[0]["resolution_action"] == ruling


async def test_ta_against_the_regime_goes_to_the_resolver(
    make_coordinator: MakeCoordinator, scripted: type[ScriptedModel]
) -> None:
    resolver = scripted("resolver", '{"action": "proceed", "confidence": 0.6}')
    result = await make_coordinator(regime=scripted("regime", BEAR), conflict=resolver).run_cycle("BTC/USDT")
    assert result.conflict is not None and result.conflict.conflict_type == "ta_regime_mismatch"
    assert result.execution is not None  # proceed: the risk engine still has the last word
    context = resolver.contexts[0]
    assert (context.task, context.conflict_type) == ("conflict", "ta_regime_mismatch")
    assert context.snapshot.symbol == "BTC/USDT" and context.decision is not None
