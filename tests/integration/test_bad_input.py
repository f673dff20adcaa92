"""Bad input through the installed console script (not Typer's test runner): one line on
stderr, naming what was wrong, and the documented exit code (cli.exit_codes); never a
traceback, and nothing left behind by a command that refused."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cli.exit_codes import ExitCode

pytestmark = pytest.mark.integration

TG = Path(sys.executable).with_name("tg")
CANDLES = Path(__file__).parents[2] / "examples" / "btc_usd_1h.csv"


def tg(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    environ |= {"XDG_DATA_HOME": str(cwd / "data"), "HOME": str(cwd), "COLUMNS": "80", **(env or {})}
    return subprocess.run([str(TG), *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=environ)


# (arguments, extra environment, exit code, a fragment of the one line on stderr).
# DIR is a directory, FILE a plain file (so FILE/x.db cannot be made): both exist in the
# test's working directory.
BAD_INPUTS: list[tuple[list[str], dict[str, str], ExitCode, str]] = [
    (["trade"], {}, ExitCode.USAGE, "Missing argument 'SYMBOL'"),
    (["nonsense"], {}, ExitCode.USAGE, "No such command 'nonsense'"),
    (["trade", "BTC/USDT", "--bogus"], {}, ExitCode.USAGE, "No such option: --bogus"),
    (["simulate", "--runs", "0"], {}, ExitCode.USAGE, "Invalid value for '--runs'"),
    (["trade", "BTC/USDT", "--url", "http://localhost:99999"], {}, ExitCode.USAGE, "no valid port"),
    (["trade", "BTC/USDT", "--url", "http://127.0.0.1:abc"], {}, ExitCode.USAGE, "no valid port"),
    (["orders", "--url", "ftp://127.0.0.1:21"], {}, ExitCode.USAGE, "not an http(s) address"),
    (["orders", "--url", "http://[::1"], {}, ExitCode.USAGE, "not an http(s) address"),
    (["sim", "status", "--url", "http://[::1"], {}, ExitCode.USAGE, "not an http(s) address"),
    (["run", "--url", "http://[::1", "--fault", "stop-fail"], {}, ExitCode.USAGE, "not an http(s) address"),
    (["trade", "BTC/USDT", "--url", "http://example.com:8765"], {}, ExitCode.USAGE, "add --live"),
    (["trade", "BTC/USDT", "--live"], {}, ExitCode.USAGE, "--live needs --url"),
    (["trade", "BTC/USDT", "--url", "http://127.0.0.1:1"], {}, ExitCode.ENVIRONMENT, "connection to Kraken failed"),
    (["sim", "reset", "--db", "DIR"], {}, ExitCode.USAGE, "is a directory"),
    (["sim", "advance", "1h", "--db", "DIR"], {}, ExitCode.USAGE, "is a directory"),
    (["replay", str(CANDLES), "--db", "DIR"], {}, ExitCode.USAGE, "is a directory"),
    (["runs"], {"TG_DB": "DIR"}, ExitCode.USAGE, "TG_DB: DIR is a directory"),
    (["trade", "BTC/USDT", "--db", " "], {}, ExitCode.USAGE, "' ' names no database"),
    (["runs", "--db", ""], {}, ExitCode.USAGE, "'' names no database"),
    (["trade", "BTC/USDT"], {"TG_DB": "sqlite:///x.db"}, ExitCode.USAGE, "sqlite:///x.db is a URL tg does not speak"),
    (["sim", "reset", "--db", "FILE/x.db"], {}, ExitCode.ENVIRONMENT, "cannot keep the sandbox's state"),
    (["sim", "advance", "1h", "--db", "FILE/x.db"], {}, ExitCode.ENVIRONMENT, "cannot keep the sandbox's state"),
    (["replay", str(CANDLES), "--db", "FILE/x.db"], {}, ExitCode.ENVIRONMENT, "cannot create the directory"),
    (["simulate", "--db", "FILE/x.db"], {}, ExitCode.ENVIRONMENT, "cannot create the directory"),
    (["simulate", "--symbol", "FOO/BAR"], {}, ExitCode.USAGE, "unknown symbol FOO/BAR"),
    (["simulate", "--seed", str(2**63 - 1), "--runs", "2"], {}, ExitCode.USAGE, "reaches seed 9223372036854775808"),
    (["simulate", "--url", "http://127.0.0.1:1"], {}, ExitCode.USAGE, "set TG_KRAKEN_KEY_FILE"),
    (["simulate", "--fault", "db-fail:x=1"], {}, ExitCode.USAGE, "unknown option 'x'; db-fail takes"),
    (["simulate", "--fault", "crash:after=-1"], {}, ExitCode.USAGE, "greater than or equal to 0"),
    (["simulate", "--fault", "random:x=1"], {}, ExitCode.USAGE, "random takes no options"),
    (["simulate", "--fault", "nosuch"], {}, ExitCode.USAGE, "unknown fault 'nosuch'"),
    (["simulate", "--fault", "busy:active_from=10,active_until=5"], {}, ExitCode.USAGE, "the rule would never fire"),
    (["sim", "serve", "--port", "0", "--scenario", "for0.toml"], {}, ExitCode.USAGE, "give more than 0s"),
    (
        ["simulate", "--fault", "stop-fail:endpoint=AddOrdr"],
        {},
        ExitCode.USAGE,
        "'AddOrdr' is no method the sandbox serves; did you mean AddOrder?",
    ),
    (["trade", "FOO"], {}, ExitCode.USAGE, "unknown symbol FOO"),
    (["trade", "BTC/USDT", "--side", "hold"], {}, ExitCode.USAGE, "'hold' is not one of 'buy', 'sell'"),
    (["trade", "BTC/USDT", "--side", "buy", "--volume", "-1"], {}, ExitCode.USAGE, "--volume must be a positive"),
    (["show", "nosuch"], {}, ExitCode.USAGE, "no run 'nosuch'"),
    (["positions", "--status", "bogus"], {}, ExitCode.USAGE, "--status"),
    (["sim", "advance", "xyz"], {}, ExitCode.USAGE, "is not a duration"),
    (["sim", "serve", "--seed", "-1", "--port", "0"], {}, ExitCode.USAGE, "Invalid value for '--seed'"),
    (["sim", "advance", "0h"], {}, ExitCode.USAGE, "longer than zero"),
    (["run", "--for", "0h"], {}, ExitCode.USAGE, "longer than zero"),
    (["run", "--every", "abc"], {}, ExitCode.USAGE, "is not a duration"),
    (["replay", "missing.csv"], {}, ExitCode.USAGE, "cannot read candle file"),
    (["replay", str(CANDLES), "--from", "1e999"], {}, ExitCode.USAGE, "--from '1e999' is not a date"),
    (["replay", str(CANDLES), "--from", "2030-01-01"], {}, ExitCode.USAGE, "nothing to replay between"),
    (["replay", str(CANDLES), "--from", "2025-06-01", "--to", "2025-01-01"], {}, ExitCode.USAGE, "no candle before"),
    (["replay", str(CANDLES), "--symbol", "FOO/BAR"], {}, ExitCode.USAGE, "the sandbox does not trade FOO/BAR"),
    (["replay", "tiny.csv"], {}, ExitCode.USAGE, "tiny.csv: line 2: low 1E-11 is below BTC/USD's price tick 0.1"),
    (["replay", "huge.csv"], {}, ExitCode.USAGE, "huge.csv: line 2: high 1E+30 is too large a price"),
    (["replay", str(CANDLES), "--to", "99999999999999999999"], {}, ExitCode.USAGE, "is not a date"),
    (["replay", "FILE"], {}, ExitCode.USAGE, "names no time, open, high, low, close, volume column"),
    (["ratelimit-stress", "--requests", "-5"], {}, ExitCode.USAGE, "--requests must be at least 1"),
    (["ratelimit-stress", "--tier", "nosuch"], {}, ExitCode.USAGE, "--tier must be one of"),
    (["trade", "BTC/USDT", "--config", "missing.toml"], {}, ExitCode.USAGE, "cannot read config file"),
    (["trade", "BTC/USDT", "--config", "typo.toml"], {}, ExitCode.USAGE, "did you mean risk.min_confidence?"),
    (["config", "--config", "utf16.toml"], {}, ExitCode.USAGE, "utf16.toml is not valid TOML: it is not UTF-8 text"),
    (["config", "--config", "dbnum.toml"], {}, ExitCode.USAGE, "invalid setting db in dbnum.toml: Input is not"),
    (["trade", "BTC/USDT"], {"TG_RISK__MIN_CONFIDNCE": "0.9"}, ExitCode.USAGE, "did you mean TG_RISK__MIN_CONFIDENCE?"),
    (["orders", "--url", "http://127.0.0.1:1"], {}, ExitCode.USAGE, "needs an API key"),
    (["config"], {"TG_RISK": "x"}, ExitCode.USAGE, "TG_RISK: 'x' is not JSON, which a table takes"),
    (["trade", "BTC/USDT"], {"TG_KRAKEN__RATE_LIMIT": "x"}, ExitCode.USAGE, "TG_KRAKEN__RATE_LIMIT: 'x' is not JSON"),
    (["runs"], {"TG_COORDINATOR__SYMBOLS": "BTC/USD"}, ExitCode.USAGE, "not JSON, which a list takes"),
    (["trade", "BTC/USDT"], {"TG_SIMULATOR__QUOTE_BALANCE": "1e30"}, ExitCode.USAGE, "less than 1000000000"),
    (["trade", "BTC/USDT"], {"TG_KRAKEN__TIMEOUT_S": "inf"}, ExitCode.USAGE, "TIMEOUT_S: Input should be a finite"),
    (["config"], {"TG_EXECUTION__LEASE_WAIT_S": "inf"}, ExitCode.USAGE, "LEASE_WAIT_S: Input should be a finite"),
    (
        ["trade", "BTC/USDT"],
        {"TG_SIMULATOR__QUOTE_BALANCE": "-1"},
        ExitCode.USAGE,
        "QUOTE_BALANCE: Input should be greater",
    ),
]


@pytest.mark.parametrize(
    ("args", "env", "code", "fragment"), BAD_INPUTS, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_bad_input_is_one_line_and_its_exit_code(
    tmp_path: Path, args: list[str], env: dict[str, str], code: ExitCode, fragment: str
) -> None:
    (tmp_path / "DIR").mkdir()
    (tmp_path / "FILE").write_text("not a candle file\n")
    (tmp_path / "typo.toml").write_text("[risk]\nmin_confidnce = 0.99\n")
    (tmp_path / "utf16.toml").write_text("[risk]\nmin_confidence = 0.6\n", encoding="utf-16")
    (tmp_path / "dbnum.toml").write_text("db = 5\n")
    (tmp_path / "for0.toml").write_text('[[event]]\nat = "1m"\nfor = "0s"\nfault = "stop-fail"\n')
    for name, price in (("tiny.csv", "1e-11"), ("huge.csv", "1e30")):
        rows = "".join(f"{1_735_689_600 + 3600 * i},{price},{price},{price},{price},1\n" for i in range(100))
        (tmp_path / name).write_text("time,open,high,low,close,volume\n" + rows)
    done = tg(*args, cwd=tmp_path, env=env)

    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, done.stderr
    assert len(lines) == 1 and lines[0].startswith(("error: ", "Error: ", "Usage")), done.stderr
    assert fragment in lines[0]
    assert "Traceback" not in done.stderr
    db = tmp_path / "data" / "tg" / "tg.db"
    if args[0] in ("simulate", "run", "replay") and code is ExitCode.USAGE and "unknown symbol" not in fragment:
        assert not db.exists()  # the exchange decides which symbols exist; the rest is refused before the store opens
        assert not (tmp_path / "data" / "tg" / "tg.replays").exists()
    if code is ExitCode.USAGE and db.exists():  # refused before any work: no run recorded
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_a_limit_beyond_what_sql_counts_lists_every_run(tmp_path: Path) -> None:
    done = tg("runs", "--limit", str(10**30), "--json", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (ExitCode.OK, "")


def test_plain_tg_shows_the_help_and_the_exit_codes(tmp_path: Path) -> None:
    done = tg(cwd=tmp_path)
    assert done.returncode == ExitCode.OK
    assert done.stderr == ""
    assert "Usage: tg" in done.stdout and "Exit status: 0 done" in " ".join(done.stdout.split())


@pytest.mark.parametrize("args", [["--help"], ["--version"], [], ["sim"], ["runs", "--help"]])
def test_help_to_a_full_disk_is_one_line_and_exit_4(tmp_path: Path, args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [str(TG), *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, cwd=tmp_path
        )
    assert (done.returncode, done.stderr) == (
        ExitCode.ENVIRONMENT,
        "error: cannot write tg's output: No space left on device\n",
    )


def test_help_and_version_exit_0(tmp_path: Path) -> None:
    assert tg("--help", cwd=tmp_path).returncode == 0
    assert tg("-h", cwd=tmp_path).returncode == 0
    version = tg("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("tg ")


@pytest.mark.parametrize("args", [["runs"], ["show", "R-1"], ["positions"], ["orders"], ["config"], ["sim", "status"]])
def test_commands_that_read_create_no_database(tmp_path: Path, args: list[str]) -> None:
    done = tg(*args, cwd=tmp_path)
    assert done.returncode in (ExitCode.OK, ExitCode.USAGE), done.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("args", [["runs"], ["show", "R-1"], ["positions"], ["orders"], ["campaign", "C-1"]])
def test_commands_that_read_leave_a_file_that_is_no_tg_database_alone(tmp_path: Path, args: list[str]) -> None:
    empty, foreign = tmp_path / "empty.db", tmp_path / "foreign.db"
    empty.touch()
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (text)")
    before = {path: path.read_bytes() for path in (empty, foreign)}
    for path in before:
        done = tg(*args, "--db", str(path), cwd=tmp_path)
        assert done.returncode in (ExitCode.OK, ExitCode.USAGE), done.stderr
    assert {path: path.read_bytes() for path in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "foreign.db"]


def test_a_bug_is_one_line_unless_the_traceback_is_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cli import render
    from cli.main import app

    def broken(*_: object, **__: object) -> None:
        raise ValueError("a renderer that breaks")

    monkeypatch.setattr(render, "runs_table", broken)
    db = str(tmp_path / "tg.db")
    done = CliRunner().invoke(app, ["runs", "--db", db])
    assert done.exit_code == ExitCode.NOT_DONE
    assert done.stderr.strip() == (
        "error: internal error ValueError: a renderer that breaks; this is a bug in tg: rerun with -vv for the "
        "traceback and report it"
    )
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", root.level)  # -vv lowers it for the rest of this process
    asked = CliRunner().invoke(app, ["-vv", "runs", "--db", db])
    assert isinstance(asked.exception, ValueError)
