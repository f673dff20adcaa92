"""`tg sim serve` as a real process: its keys come from the environment or a key file,
or are generated into a key file readable only by the user; no secret (key secret or
control token) is ever printed. And its control plane over TCP: loopback only, or the
control token; never a forged browser request."""

from __future__ import annotations

import base64
import json
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import krakenex
import pytest
from typer.testing import CliRunner

from cli.main import app
from core.domain.errors import ExchangeError, InputError
from core.exchange.sandbox_control import TOKEN_ENV, SandboxControl
from core.exchange.signing import KEY_ENV, KEY_FILE_ENV, SECRET_ENV, Credentials
from simulator.models import ApiKey
from simulator.server import sandbox_server, serving, write_key_file
from tests.integration.tg_processes import tg_sim_serve

pytestmark = pytest.mark.integration

runner = CliRunner()
API_KEY = "tgServeKeysTestKey0123456789"
SECRET = base64.b64encode(bytes(range(32, 96))).decode()
TOKEN = "served-control-token-0123456789abcdef"
OPENING = {"ZUSD": "100000.0000", "USDT": "100000.00000000"}


def balance(url: str, key: str, secret: str) -> dict[str, Any]:
    api = krakenex.API(key, secret)
    api.uri = url
    try:
        return api.query_private("Balance")
    finally:
        api.close()


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret[:4]}... printed"


def test_generated_keys_go_to_an_owner_only_key_file_never_to_the_terminal(tmp_path: Path) -> None:
    with tg_sim_serve(cwd=tmp_path) as served:
        key_file = tmp_path / "tg-sandbox.keys"  # the default --keys-out
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        credentials = Credentials.from_env({KEY_FILE_ENV: str(key_file)})
        assert credentials is not None
        assert balance(served.url, credentials.api_key, credentials.api_secret) == {"error": [], "result": OPENING}
        text = "".join(served.banner)
        assert f"API key:  {credentials.api_key[:8]}..." in text
        assert f"{KEY_FILE_ENV}={key_file} tg trade BTC/USD --url {served.url}" in text
        assert "loopback clients only" in text
    assert_no_secret(text + served.output + served.errors, credentials.api_secret, credentials.api_key)


def test_the_printed_one_liner_trades(tmp_path: Path) -> None:
    keys = tmp_path / "keys" / "sandbox.keys"
    keys.parent.mkdir()
    with tg_sim_serve("--keys-out", str(keys), cwd=tmp_path) as served:
        assert not (tmp_path / "tg-sandbox.keys").exists()
        result = runner.invoke(
            app,
            ["trade", "BTC/USD", "--side", "buy", "--url", served.url, "--db", str(tmp_path / "tg.db"), "--json"],
            env={KEY_FILE_ENV: str(keys), KEY_ENV: None, SECRET_ENV: None},
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["success"] is True


def test_keys_from_the_environment_are_accepted_and_not_printed(tmp_path: Path) -> None:
    env = {KEY_ENV: API_KEY, SECRET_ENV: SECRET, TOKEN_ENV: TOKEN}
    with tg_sim_serve(cwd=tmp_path, env=env) as served:
        assert balance(served.url, API_KEY, SECRET) == {"error": [], "result": OPENING}
        text = "".join(served.banner)
        assert f"{API_KEY[:8]}...  (from {KEY_ENV}/{SECRET_ENV})" in text
        assert f"holders of the control token ({TOKEN_ENV})" in text
    assert not list(tmp_path.iterdir()), "nothing to write: the keys were given"
    assert_no_secret(text + served.output + served.errors, SECRET, API_KEY, TOKEN)


@pytest.mark.parametrize(("tg_options", "logged"), [((), True), (("-q",), False)])
def test_each_request_is_logged_unless_quiet(tmp_path: Path, tg_options: tuple[str, ...], logged: bool) -> None:
    with tg_sim_serve(cwd=tmp_path, tg_options=tg_options) as served:
        assert httpx.get(f"{served.url}/0/public/Time").json()["error"] == []
    assert ('"GET /0/public/Time HTTP/1.1" 200' in served.output) is logged, served.output  # uvicorn's access log


def test_tier_none_serves_without_rate_limits(tmp_path: Path) -> None:
    with tg_sim_serve("--tier", "none", cwd=tmp_path) as served:
        state = httpx.get(f"{served.url}/_sandbox/state").json()["result"]
    assert "no rate limits" in "".join(served.banner)
    assert state["rate_limits"] is None


@pytest.mark.parametrize("how", ["option", "environment"])
def test_keys_from_a_key_file_are_accepted(tmp_path: Path, how: str) -> None:
    key_file = tmp_path / "given.keys"
    write_key_file(key_file, ApiKey(key=API_KEY, secret=SECRET, account="default"))
    args, env = (["--key-file", str(key_file)], {}) if how == "option" else ([], {KEY_FILE_ENV: str(key_file)})
    with tg_sim_serve(*args, cwd=tmp_path, env=env) as served:
        assert balance(served.url, API_KEY, SECRET) == {"error": [], "result": OPENING}
        assert f"{KEY_FILE_ENV}={key_file} tg trade" in "".join(served.banner)
    assert key_file.read_text() == f"{API_KEY}\n{SECRET}\n"
    assert_no_secret("".join(served.banner) + served.output + served.errors, SECRET)


def test_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "given.keys"
    key_file.write_text(f"{API_KEY}\n{SECRET}\n")
    key_file.chmod(0o644)
    result = runner.invoke(app, ["sim", "serve", "--port", "0", "--key-file", str(key_file)])
    assert result.exit_code == 2 and "chmod 600" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and SECRET not in result.output


@pytest.mark.parametrize(
    ("mode", "content"),
    [
        (0o644, f"{API_KEY}\n{SECRET}\n"),  # readable by others: not ours to overwrite
        (0o600, "my notes\n"),  # owner-only, but not a key file
        (0o600, f"{API_KEY}\nnot base64!\n"),
    ],
)
def test_keys_out_never_overwrites_what_is_not_a_key_file(tmp_path: Path, mode: int, content: str) -> None:
    target = tmp_path / "tg-sandbox.keys"
    target.write_text(content)
    target.chmod(mode)
    result = runner.invoke(
        app,
        ["sim", "serve", "--port", "0", "--keys-out", str(target)],
        env={KEY_ENV: None, SECRET_ENV: None, KEY_FILE_ENV: None},
    )
    assert result.exit_code == 2 and str(target) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert target.read_text() == content and stat.S_IMODE(target.stat().st_mode) == mode


def test_keys_out_refuses_a_link_and_replaces_an_old_key_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.keys"
    write_key_file(elsewhere, ApiKey(key="old-key", secret=SECRET, account="default"))
    link = tmp_path / "link.keys"
    link.symlink_to(elsewhere)
    with pytest.raises(InputError, match="not a regular file"):
        write_key_file(link, ApiKey(key=API_KEY, secret=SECRET, account="default"))
    write_key_file(elsewhere, ApiKey(key=API_KEY, secret=SECRET, account="default"))
    assert elsewhere.read_text() == f"{API_KEY}\n{SECRET}\n" and stat.S_IMODE(elsewhere.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.keys", "link.keys"]  # no temporary left


def test_keys_out_with_given_keys_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["sim", "serve", "--keys-out", str(tmp_path / "k")],
        env={KEY_ENV: API_KEY, SECRET_ENV: SECRET, KEY_FILE_ENV: None},
    )
    assert result.exit_code == 2 and "--keys-out" in result.stderr and SECRET not in result.output


def test_allow_remote_without_a_token_is_refused() -> None:
    with pytest.raises(InputError, match="needs a control token"):
        sandbox_server("0.0.0.0", 0, allow_remote=True)  # refused before binding
    result = runner.invoke(
        app, ["sim", "serve", "--host", "0.0.0.0", "--port", "0", "--allow-remote"], env={TOKEN_ENV: None}
    )
    assert result.exit_code == 2 and "needs a control token" in result.stderr


def test_the_control_token_comes_from_the_environment_and_is_never_printed(tmp_path: Path) -> None:
    with tg_sim_serve(cwd=tmp_path, env={TOKEN_ENV: TOKEN}) as served:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{served.url}/_sandbox/state").status_code == 403
        assert httpx.get(f"{served.url}/_sandbox/state", headers=bearer).json()["error"] == []
    assert_no_secret("".join(served.banner) + served.output + served.errors, TOKEN)


async def test_sandbox_control_drives_a_served_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with serving(keys=[(API_KEY, SECRET)]) as server:
        control = SandboxControl(server.url)
        try:
            await control.add_fault("busy:endpoint=Balance")
            start = (await control.state())["time"]
            await control.reset()
            moved = await control.advance(0.5, brief_for="XBTUSDT")
            assert moved["time"] >= start + Decimal("0.5") and list(moved["prices"]) == ["XBTUSDT"]
            await control.clear_faults()
            assert await control.fault_log() == []
            assert (await control.truth()).balances
        finally:
            await control.aclose()


async def test_a_served_sandbox_with_a_token_needs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with serving(control_token=TOKEN) as server:
        anonymous = SandboxControl(server.url)
        holder = SandboxControl(server.url, token=TOKEN)
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        from_env = SandboxControl(server.url)
        try:
            with pytest.raises(ExchangeError, match="Permission denied:control token"):
                await anonymous.state()
            await holder.reset()
            await from_env.reset()
        finally:
            for control in (anonymous, holder, from_env):
                await control.aclose()


def test_a_forged_browser_request_over_tcp_changes_nothing() -> None:
    with serving() as server:
        sandbox = server.sandbox
        assert sandbox is not None
        sandbox.exchange.create_api_key()
        sandbox.faults.reseed(11)
        before = sandbox.faults.seed
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        attempts = [
            httpx.post(
                f"{server.url}/_sandbox/seed", content=b"seed=1", headers=form | {"Origin": "http://evil.example"}
            ),
            httpx.post(f"{server.url}/_sandbox/seed", content=b"seed=1", headers=form),
            httpx.post(
                f"{server.url}/_sandbox/seed",
                content=b"seed=1",
                headers=form | {"Host": "evil.example:80", "X-TG-Sandbox": "1"},
            ),
            httpx.post(
                f"{server.url}/_sandbox/seed",
                content=b"seed=1",
                headers=form | {"Host": "sandbox.kraken", "X-TG-Sandbox": "1"},
            ),
        ]
        assert [a.status_code for a in attempts] == [403] * 4
        assert all(a.json()["error"][0].startswith("EGeneral:Permission denied") for a in attempts)
        assert sandbox.faults.seed == before
