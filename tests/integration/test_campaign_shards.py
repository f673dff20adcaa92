"""A simulation campaign split across machines sharing one PostgreSQL database: each
`tg simulate --shard I/N` records its share, `tg campaign ID` merges them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.domain.errors import InputError
from core.flows.campaign import Shard, campaign_id
from tests.postgres import PostgresServer

pytestmark = pytest.mark.integration

runner = CliRunner()
ARGS = ("--fault", "busy", "--runs", "2", "--seed", "5")


def tg(db: str, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--db", db, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_shards_on_two_machines_merge_into_one_report(postgres: PostgresServer, tmp_path: Path) -> None:
    db = postgres.new_database()
    campaign = campaign_id(["busy"], runs=2, seed=5, symbol="BTC/USDT")

    code, first = tg(db, "simulate", *ARGS, "--shard", "1/2")
    assert code == 0 and first["campaign"] == campaign and first["shard"] == "1/2"
    assert [d["seed"] for d in first["details"]] == [5]
    code, partial = tg(db, "campaign", campaign)
    assert code == 1 and partial["shards"]["missing"] == ["2/2"] and not partial["complete"]

    code, second = tg(db, "simulate", *ARGS, "--shard", "2/2")
    assert code == 0 and [d["seed"] for d in second["details"]] == [6]
    code, merged = tg(db, "campaign", campaign)
    assert code == 0, merged
    assert merged["complete"] and merged["ok"] and merged["runs"] == 2
    assert [(d["run"], d["seed"]) for d in merged["details"]] == [(0, 5), (1, 6)]
    assert merged["outcomes"] == {"FILLED": 2} and merged["injected"] == {"busy": 2}
    assert merged["shards"]["run_ids"] == [first["run_id"], second["run_id"]]


def test_an_unknown_campaign_and_a_bad_shard_are_one_line_errors(tmp_path: Path) -> None:
    db = str(tmp_path / "tg.db")
    unknown = runner.invoke(app, ["campaign", "C-nothing", "--db", db])
    assert unknown.exit_code == 2 and unknown.stderr.startswith("error: no simulation campaign 'C-nothing'")
    bad = runner.invoke(app, ["simulate", "--shard", "3/2", "--db", db])
    assert (
        bad.exit_code == 2 and bad.stderr.strip() == "error: --shard '3/2' is not I/N with 1 <= I <= N, for example 2/4"
    )


@pytest.mark.parametrize("count", [1, 3, 4])
def test_the_shards_share_out_every_run_once(count: int) -> None:
    owners = [[i for i in range(10) if Shard(k, count).owns(i)] for k in range(1, count + 1)]
    assert sorted(i for share in owners for i in share) == list(range(10))
    with pytest.raises(InputError):
        Shard.parse(f"0/{count}")
