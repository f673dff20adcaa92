"""Fault rules as data: specs, files, defaults, and when a rule fires."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain.clock import VirtualClock
from simulator.exceptions import KrakenError
from simulator.exchange import Exchange
from simulator.faults import CATALOG, Call, FaultRule, FaultSchedule, FaultSpecError, load_plan, parse_spec


def test_a_bare_name_takes_the_faults_defaults() -> None:
    rule = parse_spec("stop-fail-once")
    assert (rule.endpoint, rule.match, rule.times, rule.probability) == ("AddOrder", "stop_loss", 1, 1.0)


def test_spec_keys_go_to_the_rule_or_the_faults_params() -> None:
    rule = parse_spec("latency:seconds=3,endpoint=Ticker,times=2,probability=0.5")
    assert (rule.endpoint, rule.times, rule.probability, rule.params) == ("Ticker", 2, 0.5, {"seconds": "3"})


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("meteor", "unknown fault 'meteor'"),
        ("latency:seconds", "is not key=value"),
        ("latency:seconds=-1", "seconds"),
        ("partial-fill:ratio=1.5", "ratio"),
        ("busy:error=EOops:Nope", "not a Kraken error string"),
        ("busy:match=exit", "match"),
        ("ghost:colour=red", "colour"),
    ],
)
def test_bad_specs_say_why(spec: str, reason: str) -> None:
    with pytest.raises(FaultSpecError, match=reason):
        parse_spec(spec)


def test_every_catalog_fault_parses_by_its_short_name() -> None:
    assert {parse_spec(name).fault for name in CATALOG} == set(CATALOG)


def test_json_and_toml_files(tmp_path: Path) -> None:
    json_file = tmp_path / "faults.json"
    json_file.write_text('{"seed": 5, "rules": [{"fault": "busy", "nth": 3}, "gap:beyond_pct=2"]}')
    seed, rules = load_plan(json_file)
    assert seed == 5
    assert [(r.fault, r.nth) for r in rules] == [("busy", 3), ("gap", None)]
    toml_file = tmp_path / "faults.toml"
    toml_file.write_text('seed = 8\n[[rules]]\nfault = "latency"\nparams = { seconds = 4 }\n')
    assert load_plan(toml_file) == (8, [FaultRule(fault="latency", params={"seconds": 4})])
    bare = tmp_path / "list.json"
    bare.write_text('["busy"]')
    assert load_plan(bare) == (None, [parse_spec("busy")])


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    with pytest.raises(FaultSpecError, match="cannot read"):
        load_plan(broken)
    with pytest.raises(FaultSpecError, match="cannot read"):
        load_plan(tmp_path / "missing.toml")


async def fired(schedule: FaultSchedule, calls: list[Call]) -> list[int]:
    """The indexes of the calls the schedule's rules fired on."""
    hits = []
    for index, call in enumerate(calls):
        before = len(schedule.log)
        try:
            await schedule.before(call)
        except KrakenError:
            pass
        if len(schedule.log) > before:
            hits.append(index)
    return hits


def calls(count: int, ordertype: str = "market") -> list[Call]:
    exchange = Exchange.create(VirtualClock(1_767_225_600.0))
    return [Call("AddOrder", exchange, {"ordertype": ordertype}) for _ in range(count)]


async def test_nth_and_times_choose_the_occurrences() -> None:
    schedule = FaultSchedule(rules=[parse_spec("busy:endpoint=AddOrder,nth=3,times=2")])
    assert await fired(schedule, calls(6)) == [2, 3]


async def test_roles_follow_the_ordertype() -> None:
    schedule = FaultSchedule(rules=[parse_spec("busy:endpoint=AddOrder,match=take_profit,times=9")])
    assert await fired(schedule, calls(2, "take-profit-limit") + calls(2, "stop-loss") + calls(1, "limit")) == [0, 1]


async def test_probability_draws_from_the_rules_own_seeded_rng() -> None:
    def schedule(seed: int) -> FaultSchedule:
        return FaultSchedule(seed=seed, rules=[parse_spec("busy:probability=0.5,times=100")])

    first = await fired(schedule(1), calls(40))
    assert first == await fired(schedule(1), calls(40))
    assert first != await fired(schedule(2), calls(40))
    assert 8 < len(first) < 32
