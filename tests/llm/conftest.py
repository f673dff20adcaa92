"""A virtual clock, one HTTP client and the provider key in the environment, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.domain.clock import VirtualClock
from tests.llm.provider_fakes import DIALECTS, KEY, KEY_ENV, Dialect


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture(autouse=True)
def provider_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


@pytest.fixture(params=DIALECTS, ids=lambda d: d.provider)
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return request.param
