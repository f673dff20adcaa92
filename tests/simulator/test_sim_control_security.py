"""The control guard: who may drive /_sandbox/ over the wire. Loopback clients, or any
holder of the control token; never a web page's forged request (a cross-site form
post, DNS rebinding). The Kraken routes are not concerned."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from core.domain.errors import ExchangeError
from core.exchange.sandbox_control import TOKEN_ENV, SandboxControl
from simulator.app import SandboxApp, create_app
from simulator.control_guard import ControlGuard
from simulator.exchange import Exchange
from simulator.models import ApiKey
from tests.simulator.sandbox_client import KrakenClient

TOKEN = "test-control-token-0123456789abcdef"
REMOTE = ("10.0.0.5", 1234)
DENIED = "EGeneral:Permission denied"
MARKER = {"X-TG-Sandbox": "1"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def app(exchange: Exchange) -> SandboxApp:
    return create_app(exchange, tier=None)


@pytest.fixture
def tokened(exchange: Exchange) -> SandboxApp:
    return create_app(exchange, tier=None, control_token=TOKEN)


@asynccontextmanager
async def client_of(
    app: SandboxApp, client: tuple[str, int] = ("127.0.0.1", 40_000), base_url: str = "http://127.0.0.1:8765"
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
        yield http


def refused(response: httpx.Response, reason: str) -> bool:
    return response.status_code == 403 and response.json() == {"error": [f"{DENIED}:{reason}"]}


def served(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["error"] == [], document
    result: dict[str, Any] = document["result"]
    return result


async def moved_on(app: SandboxApp) -> dict[str, Any]:
    """The exchange off its opening state (time moved, an order open), so a reset would show."""
    api_key = app.sandbox.exchange.create_api_key()
    async with client_of(app) as http:
        await KrakenClient(http, api_key).result(
            "AddOrder", pair="XBTUSDT", type="buy", ordertype="limit", volume="0.01", price="40000"
        )
    app.sandbox.advance(600)
    return app.sandbox.state()


async def test_a_remote_client_is_refused_without_a_token(app: SandboxApp) -> None:
    start = app.sandbox.exchange.now()
    async with client_of(app, client=REMOTE) as http:
        assert refused(await http.get("/_sandbox/state"), "loopback only")
        assert refused(await http.post("/_sandbox/advance", data={"seconds": "60"}, headers=MARKER), "loopback only")
    assert app.sandbox.exchange.now() == start


async def test_a_remote_client_with_the_token_is_served(tokened: SandboxApp) -> None:
    start = tokened.sandbox.exchange.now()
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with client_of(tokened, client=REMOTE, base_url="http://sandbox.example.net:8765") as http:
        assert served(await http.get("/_sandbox/state", headers=bearer))["time"] == start
        moved = served(await http.post("/_sandbox/advance", data={"seconds": "60"}, headers=bearer | MARKER))
    assert moved["time"] == start + 60


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer",
        "Bearer é€".encode(),
    ],
)
async def test_a_missing_or_wrong_token_is_refused_even_from_loopback(
    tokened: SandboxApp, authorization: str | bytes | None
) -> None:
    headers = {b"X-TG-Sandbox": b"1"}
    if authorization is not None:
        headers[b"Authorization"] = authorization.encode() if isinstance(authorization, str) else authorization
    async with client_of(tokened) as http:
        assert refused(await http.get("/_sandbox/state", headers=headers), "control token")
        assert refused(await http.post("/_sandbox/reset", headers=headers), "control token")


async def test_a_cross_site_form_post_does_not_reset_the_exchange(app: SandboxApp) -> None:
    before = await moved_on(app)
    form_post = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"} | FORM
    async with client_of(app) as http:
        answer = await http.post("/_sandbox/reset", content=b"x=1", headers=form_post)
        bare = await http.post("/_sandbox/reset", content=b"x=1", headers={"Origin": "http://evil.example"} | FORM)
    assert refused(answer, "cross-origin") and refused(bare, "cross-origin")
    assert app.sandbox.state() == before


async def test_a_post_without_the_custom_header_does_not_reset(app: SandboxApp) -> None:
    before = await moved_on(app)
    async with client_of(app) as http:
        assert refused(await http.post("/_sandbox/reset", content=b"", headers=FORM), "X-TG-Sandbox header")
        assert refused(await http.post("/_sandbox/reset", headers={"X-TG-Sandbox": "yes"}), "X-TG-Sandbox header")
        assert refused(await http.delete("/_sandbox/faults"), "X-TG-Sandbox header")
    assert app.sandbox.state() == before


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Origin": "http://evil.example"}, "cross-origin"),
        ({"Origin": "null"}, "cross-origin"),
        ({"Origin": "http://127.0.0.1:9999"}, "cross-origin"),
        ({"Origin": "http://localhost:8765"}, "cross-origin"),
        ({"Origin": "http://[::1"}, "cross-origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "cross-site"),
        ({"Sec-Fetch-Site": "same-site"}, "cross-site"),
    ],
)
async def test_requests_a_browser_marks_as_from_elsewhere_are_refused(
    app: SandboxApp, headers: dict[str, str], reason: str
) -> None:
    async with client_of(app) as http:
        assert refused(await http.get("/_sandbox/state", headers=headers), reason)
        assert refused(await http.post("/_sandbox/reset", headers=headers | MARKER), reason)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://127.0.0.1:8765"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
    ],
)
async def test_the_sandboxs_own_pages_and_tools_are_served(app: SandboxApp, headers: dict[str, str]) -> None:
    async with client_of(app) as http:
        served(await http.get("/_sandbox/state", headers=headers))
        served(await http.post("/_sandbox/reset", headers=headers | MARKER))


async def test_get_routes_need_no_custom_header(app: SandboxApp) -> None:
    async with client_of(app) as http:
        for path in ("/_sandbox/state", "/_sandbox/faults", "/_sandbox/fault-log"):
            served(await http.get(path))


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "sandbox.kraken", "[::1", "localhost:notaport"],
)
async def test_a_foreign_host_is_refused_without_a_token(exchange: Exchange, host: str) -> None:
    served_app = create_app(exchange, control_hosts=())  # as `tg sim serve` builds it
    before = served_app.sandbox.state()
    async with client_of(served_app) as http:
        assert refused(await http.get("/_sandbox/state", headers={"Host": host}), "Host")
        assert refused(await http.post("/_sandbox/reset", headers={"Host": host} | MARKER), "Host")
    assert served_app.sandbox.state() == before


@pytest.mark.parametrize("host", ["localhost", "localhost:8765", "127.0.0.1", "127.8.9.10:80", "[::1]:8765"])
async def test_loopback_host_names_are_served(exchange: Exchange, host: str) -> None:
    async with client_of(create_app(exchange, control_hosts=())) as http:
        served(await http.get("/_sandbox/state", headers={"Host": host}))


async def test_with_a_token_the_host_is_not_checked(tokened: SandboxApp) -> None:
    headers = {"Host": "sandbox.example.net", "Authorization": f"Bearer {TOKEN}"}
    async with client_of(tokened, client=REMOTE) as http:
        served(await http.get("/_sandbox/state", headers=headers))


async def test_the_in_process_name_is_served_in_process(app: SandboxApp) -> None:
    async with client_of(app, base_url="http://sandbox.kraken") as http:
        served(await http.post("/_sandbox/reset", headers=MARKER))


async def test_a_preflight_is_never_approved(app: SandboxApp) -> None:
    preflight = {
        "Origin": "http://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-tg-sandbox",
    }
    async with client_of(app) as http:
        for headers in (preflight, {}):
            answer = await http.options("/_sandbox/reset", headers=headers)
            assert answer.status_code == 403 and answer.json()["error"][0].startswith(DENIED)
            assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


async def test_the_kraken_routes_are_not_concerned(app: SandboxApp, api_key: ApiKey) -> None:
    foreign = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Host": "evil.example"}
    async with client_of(app, client=REMOTE) as http:
        served(await http.get("/0/public/Time", headers=foreign))
        balance = await KrakenClient(http, api_key).send("Balance", "nonce=1", nonce="1", headers=foreign)
    assert balance["error"] == []


async def test_sandbox_control_drives_an_in_process_app(app: SandboxApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    before = await moved_on(app)
    control = SandboxControl("http://127.0.0.1:8765", transport=httpx.ASGITransport(app=app))
    try:
        await control.add_fault("busy:endpoint=Balance")
        await control.seed_faults(7)
        assert (await control.state())["time"] == before["time"]
        await control.reset()
        moved = await control.advance(30, brief_for="XBTUSDT")
        assert moved["time"] == before["time"] + 30 and list(moved["prices"]) == ["XBTUSDT"]
        assert await control.step(60) == before["time"] + 90  # the clock alone
        await control.clear_faults()
        assert await control.fault_log() == []
        assert (await control.truth()).orders == {}
    finally:
        await control.aclose()
    assert app.sandbox.faults.rules == [] and app.sandbox.faults.seed == 7


@pytest.mark.parametrize("token_from", ["argument", "environment"])
async def test_sandbox_control_sends_the_token(
    tokened: SandboxApp, monkeypatch: pytest.MonkeyPatch, token_from: str
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    remote = httpx.ASGITransport(app=tokened, client=REMOTE)
    if token_from == "environment":
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
    control = SandboxControl(
        "http://sandbox.example.net", transport=remote, token=TOKEN if token_from == "argument" else None
    )
    start = tokened.sandbox.exchange.now()
    try:
        await control.reset()
        assert (await control.advance(5))["time"] == start + 5
    finally:
        await control.aclose()


@pytest.mark.parametrize(
    "make",
    [
        lambda app: SandboxControl("http://127.0.0.1", transport=httpx.ASGITransport(app=app)),
        lambda app: SandboxControl("http://127.0.0.1", transport=httpx.ASGITransport(app=app), token="wrong" * 4),
    ],
)
async def test_sandbox_control_without_the_right_token_is_refused(
    tokened: SandboxApp, monkeypatch: pytest.MonkeyPatch, make: Callable[[SandboxApp], SandboxControl]
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    control = make(tokened)
    try:
        with pytest.raises(ExchangeError, match="refused reset: EGeneral:Permission denied:control token"):
            await control.reset()
    finally:
        await control.aclose()


def test_the_guard_never_shows_its_token_and_refuses_a_short_one() -> None:
    assert TOKEN not in repr(ControlGuard(token=TOKEN))
    with pytest.raises(ValueError, match="at least 16"):
        ControlGuard(token="short")
