"""Message and create_message: identity, stamping and expiry."""

from __future__ import annotations

import dataclasses

import pytest

from core.decision.bus import Message, MessagePriority, MessageTopic, create_message
from core.domain.clock import VirtualClock


def test_create_message_stamps_id_time_and_defaults() -> None:
    clock = VirtualClock(start=1_700_000_000.0)
    first = create_message(MessageTopic.TA_SIGNALS, "ta", {"bias": "long"}, clock=clock)
    second = create_message(MessageTopic.TA_SIGNALS, "ta", {"bias": "long"}, clock=clock)

    assert first.id != second.id
    assert first.timestamp == 1_700_000_000.0
    assert (first.topic, first.source, first.payload) == (
        MessageTopic.TA_SIGNALS,
        "ta",
        {"bias": "long"},
    )
    assert first.priority is MessagePriority.NORMAL
    assert first.correlation_id is None
    assert first.ttl_seconds is None


def test_create_message_takes_priority_correlation_and_ttl() -> None:
    message = create_message(
        MessageTopic.RISK_ALERTS,
        "risk",
        {},
        priority=MessagePriority.URGENT,
        correlation_id="cycle-7",
        ttl_seconds=30.0,
    )
    assert message.priority is MessagePriority.URGENT
    assert message.priority > MessagePriority.HIGH
    assert message.correlation_id == "cycle-7"
    assert message.ttl_seconds == 30.0


def test_a_message_cannot_be_changed() -> None:
    message = create_message(MessageTopic.SYSTEM_EVENTS, "test", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.topic = MessageTopic.RISK_ALERTS  # type: ignore[misc]


def test_expiry_is_judged_against_the_given_time() -> None:
    clock = VirtualClock()
    message = create_message(MessageTopic.MARKET_DATA, "feed", {}, ttl_seconds=5.0, clock=clock)

    assert not message.is_expired(clock.time() + 4.999)
    assert message.is_expired(clock.time() + 5.0)


def test_no_ttl_never_expires() -> None:
    message = create_message(MessageTopic.MARKET_DATA, "feed", {})
    assert not message.is_expired(message.timestamp + 10**9)


@pytest.mark.parametrize("ttl", [0.0, -1.0])
def test_a_ttl_must_be_positive(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        Message(
            id="m",
            topic=MessageTopic.MARKET_DATA,
            source="feed",
            payload={},
            timestamp=0.0,
            ttl_seconds=ttl,
        )
