"""The API key pair from the environment trades, and shows up nowhere: not in the
database or anything else tg writes, not in the logs, not in the output or errors."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli.main import app
from simulator.server import SandboxServer, serving

pytestmark = pytest.mark.integration

runner = CliRunner()
API_KEY = "tgLeakCheckKey0123456789abcdefXYZ"
SECRET = base64.b64encode(bytes(range(7, 71))).decode()
OTHER_SECRET = base64.b64encode(bytes(range(100, 164))).decode()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with serving(keys=[(API_KEY, SECRET)]) as server:
        yield server


def trade(sandbox: SandboxServer, db: Path, secret: str) -> Result:
    env = {"TG_KRAKEN_API_KEY": API_KEY, "TG_KRAKEN_API_SECRET": secret}
    return runner.invoke(
        app, ["trade", "BTC/USDT", "--side", "buy", "--url", sandbox.url, "--db", str(db), "--json"], env=env
    )


def assert_nowhere(text_or_bytes: str | bytes, where: str) -> None:
    data = text_or_bytes.encode() if isinstance(text_or_bytes, str) else text_or_bytes
    for secret in (API_KEY, SECRET, OTHER_SECRET):
        assert secret.encode() not in data, f"{secret[:6]}… found in {where}"
    assert base64.b64decode(SECRET) not in data, f"the decoded secret found in {where}"


def test_a_trade_with_keys_from_the_environment_leaves_them_nowhere(
    sandbox: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "tg.db"

    result = trade(sandbox, db, SECRET)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["success"] is True and summary["db_path"] == str(db)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert db in written
    for path in written:
        assert_nowhere(path.read_bytes(), str(path))
    assert_nowhere(result.output, "the output")
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert_nowhere(caplog.text, "the logs")


def test_a_refused_signature_names_the_variables_not_their_values(
    sandbox: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    result = trade(sandbox, tmp_path / "tg.db", OTHER_SECRET)

    assert result.exit_code == 2  # bad credentials: usage or input (cli/exit_codes.py)
    assert "EAPI:Invalid signature" in result.stderr and "TG_KRAKEN_API_SECRET" in result.stderr
    assert_nowhere(result.output, "the error")
    assert_nowhere(caplog.text, "the logs")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert_nowhere(path.read_bytes(), str(path))
