"""`tg replay` end to end through Typer's runner: a candle file written here, the
embedded sandbox on it, SQLite, and the report; `tg show` brings it back."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from core.decision.llm.offline import default_trading_models
from core.domain.enums import PositionStatus
from core.storage.store import Store
from tests.integration.tg_cli import tg

pytestmark = pytest.mark.integration

H = 3_600
T0 = 1_735_689_600  # 2025-01-01T00:00:00Z


def candle_file(path: Path, count: int = 300, seed: int = 3, *, extra: list[str] | None = None) -> Path:
    """Kraken OHLCVT rows of a seeded walk with trends; `extra` lines are appended as written."""
    rng = random.Random(seed)
    price, drift, lines = 50_000.0, 0.0, []
    for i in range(count):
        if rng.random() < 0.03:
            drift = rng.choice((-0.004, 0.0, 0.004))
        close = price * math.exp(drift + rng.gauss(0, 0.006))
        high, low = max(price, close) * 1.002, min(price, close) * 0.998
        lines.append(f"{T0 + i * H},{price:.1f},{high:.1f},{low:.1f},{close:.1f},12.5,300")
        price = close
    path.write_text("\n".join([*lines, *(extra or [])]) + "\n", encoding="utf-8")
    return path


def test_replay_json_is_stored_and_shown_again(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    code, out, err = tg("replay", str(candle_file(tmp_path / "btc.csv")), "--db", str(db), "--json")

    assert code == 0, err
    summary = json.loads(out)
    assert summary["kind"] == "replay" and summary["symbol"] == "BTC/USD" and summary["ok"] is True
    assert summary["span"]["candles"] == 240 and summary["span"]["warmup_candles"] == 60
    assert summary["span"]["decisions"] == 60 and sum(summary["decisions"].values()) == 60
    for side in ("strategy", "buy_and_hold"):
        assert set(summary[side]) >= {"total_return", "annualised_return", "max_drawdown", "sharpe", "sortino"}
    assert summary["trades"]["trades"] > 0 and "win_rate" in summary["trades"]
    assert set(summary["votes"]) == {m.name for m in default_trading_models()}
    assert "equity_curve" not in summary  # --json prints the figures; the curve is stored

    with Store.open(db) as store:
        run = store.get_run(summary["run_id"])
        assert run is not None and run.kind == "replay" and run.status == "ok"
        assert {k: v for k, v in run.summary.items() if k != "equity_curve"} == summary
        assert len(run.summary["equity_curve"]) == 240  # sampled for drawing: at most 240 points
        [curve] = [o for o in store.agent_outputs(summary["run_id"]) if o["agent"] == "equity_curve"]
        assert len(curve["payload"]["points"]) == 241
        assert not store.orders() and not store.positions()  # the replay's trading is in its own database

    replay_db = Path(summary["db_path"])
    assert replay_db.parent == tmp_path / "tg.replays"
    with Store.open(replay_db) as store:
        closed = store.positions(status=PositionStatus.CLOSED)
        assert len(closed) == summary["trades"]["trades"]
        assert store.fills() and store.orders()

    code, shown, _ = tg("show", summary["run_id"][:8], "--db", str(db), "--json")
    assert code == 0 and json.loads(shown) == summary
    code, listed, _ = tg("runs", "--db", str(db), "--json")
    assert [(r["run_id"], r["kind"]) for r in json.loads(listed)] == [(summary["run_id"], "replay")]


def test_the_report_draws_the_figures_and_the_equity_curve(tmp_path: Path) -> None:
    db = tmp_path / "tg.db"
    code, out, err = tg("replay", str(candle_file(tmp_path / "btc.csv")), "--db", str(db), "--every", "2")

    assert code == 0, err
    for text in (
        "figures",
        "strategy",
        "buy & hold",
        "Sharpe",
        "Sortino",
        "max drawdown",
        "win rate",
        "time in market",
        "fees paid",
        "decisions:",
        "votes",
        "risk rejections by rule",
        "every invariant held",
    ):
        assert text in out
    assert any(block in out for block in "▁▂▃▄▅▆▇█")
    run_id = out.split()[1]
    code, shown, _ = tg("show", run_id, "--db", str(db))
    assert code == 0 and "figures" in shown and run_id in shown


def test_bad_rows_and_gaps_are_reported_with_line_numbers(tmp_path: Path) -> None:
    extra = [
        f"{T0 + 300 * H},1,2,0.5,1.5",  # line 301: five columns
        f"{T0 + 301 * H},100,90,95,96,1,1",  # line 302: high below low
        f"{T0 + 305 * H},100,101,99,100,1,1",  # line 303: after a gap of four candles
    ]
    path = candle_file(tmp_path / "btc.csv", extra=extra)
    code, out, err = tg("replay", str(path), "--db", str(tmp_path / "tg.db"), "--json")

    assert code == 0, err
    assert "line 301: malformed: 5 columns" in err and "line 302: high_below_low" in err
    data = json.loads(out)["data"]
    assert (data["rows_used"], data["rows_skipped"], data["gaps"], data["missing_candles"]) == (301, 2, 1, 5)
    assert [p["line"] for p in data["problems"]] == [301, 302]
    assert data["gap_list"] == [{"after": "2025-01-13T11:00:00Z", "resumes": "2025-01-13T17:00:00Z", "missing": 5}]


def test_from_and_to_bound_the_replay(tmp_path: Path) -> None:
    path = candle_file(tmp_path / "btc.csv")
    code, out, err = tg(
        "replay",
        str(path),
        "--db",
        str(tmp_path / "tg.db"),
        "--json",
        "--from",
        "2025-01-05",
        "--to",
        "2025-01-08T12:00",
    )
    assert code == 0, err
    span = json.loads(out)["span"]
    assert (span["start"], span["end"], span["candles"]) == ("2025-01-05T00:00:00Z", "2025-01-08T12:00:00Z", 84)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbol", "DOGE/EUR"], "does not trade DOGE/EUR"),
        (["--from", "someday"], "--from 'someday' is not a date"),
        (["--interval", "240"], "pass --interval 60"),
        (["--interval", "45"], "not a Kraken candle interval"),
        (["--fault", "meteor"], "unknown fault 'meteor'"),
        (["--to", "2025-01-02"], "nothing to replay"),
        (["--to", "2025-01-02"], "before it; give a later --to"),
        (["--from", "2030-01-01"], "--from 2030-01-01T00:00:00Z is not before the candles end; give an earlier --from"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], message: str) -> None:
    path = candle_file(tmp_path / "btc.csv", count=100)
    code, _, err = tg("replay", str(path), "--db", str(tmp_path / "tg.db"), *args)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_a_file_shorter_than_the_warm_up_asks_for_more_candles(tmp_path: Path) -> None:
    path = candle_file(tmp_path / "btc.csv", count=40)
    code, _, err = tg("replay", str(path), "--db", str(tmp_path / "tg.db"))
    assert code == 2
    assert "hours of candles before it; give a file of more candles" in err


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    code, _, err = tg("replay", str(tmp_path / "nope.csv"), "--db", str(tmp_path / "tg.db"))
    assert code == 2 and "cannot read candle file" in err
