"""The recorder: a subscriber of the message bus that writes what the agents, the models
and the coordinator said to tg's database (agent outputs, votes, risk verdicts,
conflicts, alerts).

It is a subscriber like any other: a database that fails or is slow holds up neither
trading nor the other subscribers, and its failures count towards the coordinator's
degradation. What protecting a position needs is not here: an entry's approved stop
and target travel on its own order record (core.execution.manager).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.decision.bus import Message, MessageBus, MessageTopic
from core.domain.enums import Action
from core.domain.models import ModelDecision
from core.storage.store import Store

SUBSCRIBER_ID = "recorder"


class BusRecorder:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def attach(self, bus: MessageBus) -> None:
        for topic, handler in (
            (MessageTopic.TA_SIGNALS, self._technical_analysis),
            (MessageTopic.REGIME_UPDATES, self._regime),
            (MessageTopic.TRADING_SIGNALS, self._votes),
            (MessageTopic.RISK_ALERTS, self._risk),
            (MessageTopic.EXECUTION_EVENTS, self._execution),
            (MessageTopic.SYSTEM_EVENTS, self._system),
        ):
            await bus.subscribe(SUBSCRIBER_ID, topic, handler)

    async def _technical_analysis(self, message: Message) -> None:
        self._output(message, "technical_analysis")

    async def _regime(self, message: Message) -> None:
        self._output(message, "regime_detection")

    def _output(self, message: Message, agent: str) -> None:
        if message.correlation_id is not None:
            self._store.add_agent_output(
                message.correlation_id,
                agent=agent,
                symbol=message.payload["symbol"],
                payload=message.payload,
                created_at=message.timestamp,
            )

    async def _votes(self, message: Message) -> None:
        if message.correlation_id is None:
            return
        self._store.add_votes(
            message.correlation_id,
            symbol=message.payload["symbol"],
            decisions=[_decision(raw) for raw in message.payload["model_decisions"]],
            created_at=message.timestamp,
        )

    async def _risk(self, message: Message) -> None:
        payload = {k: v for k, v in message.payload.items() if k != "event"}
        event = message.payload.get("event")
        if event == "verdict" and message.correlation_id is not None:
            self._store.add_agent_output(
                message.correlation_id,
                agent="risk",
                symbol=payload["proposal"]["symbol"],
                payload=payload,
                created_at=message.timestamp,
            )
        elif event == "conflict":
            resolution = payload["resolution"]
            self._store.add_conflict(
                message.correlation_id,
                symbol=payload.pop("symbol"),
                conflict_type=payload.pop("conflict_type"),
                resolution_action=resolution["action"],
                reasoning=resolution["reasoning"],
                confidence=resolution["confidence"],
                payload=payload,
                timestamp=message.timestamp,
            )

    async def _execution(self, message: Message) -> None:
        level = message.payload.get("alert_level")
        if level is not None:
            text = message.payload.get("error_message") or "; ".join(message.payload.get("warnings") or [])
            self._store.add_alert(message.correlation_id, level=level, message=text, created_at=message.timestamp)

    async def _system(self, message: Message) -> None:
        if message.payload.get("event") == "degradation":
            payload = message.payload
            self._store.add_alert(
                None,
                level="HIGH",
                message=f"degradation {payload['from']} -> {payload['to']} after {payload['after']}",
                created_at=message.timestamp,
            )


def _decision(raw: dict[str, Any]) -> ModelDecision:
    def money(key: str) -> Decimal | None:
        value = raw.get(key)
        return None if value is None else Decimal(str(value))

    return ModelDecision(
        model=raw["model"],
        action=Action(raw["action"]),
        confidence=float(raw["confidence"]),
        entry=money("entry"),
        stop_loss=money("stop_loss"),
        take_profit=money("take_profit"),
        reasoning=raw.get("reasoning", ""),
        valid=bool(raw.get("valid", True)),
    )
