"""`tg simulate` and the Simulation behind it: every fault in the catalog, crashes at
every step, and random fault schedules, each checked against the safety invariants."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app
from cli.wiring import fault_catalog, simulation_sandbox
from core.domain.config import load_settings
from core.domain.enums import OrderRole
from core.flows.simulation import RANDOM_OPTIONS, TG_FAULTS, Simulation
from core.storage.store import Store

pytestmark = pytest.mark.integration

runner = CliRunner()
CATALOG = fault_catalog()

# what a cycle under each fault must end as (every run is a buy the risk engine approves)
EXPECTED_OUTCOMES = {
    "stop-fail": {"CLOSED"},
    "stop-fail-once": {"FILLED"},
    "partial-fill": {"PARTIAL"},
    "vanish": {"UNKNOWN"},
    "ghost": {"FILLED"},
    "rate-limit": {"FILLED"},
    "unavailable": {"FILLED"},
    "busy": {"FILLED"},
    "insufficient-funds": {"FAILED"},
    "latency": {"FILLED"},
    "invalid-nonce": {"FILLED"},
    "stale-visibility": {"FILLED"},
    "gap": {"FILLED"},
    "db-fail": {"FILLED"},
    "crash": {"CRASHED"},
    "foreign": {"FILLED"},
}


def simulate(tmp_path: Path, *args: str) -> tuple[int, dict]:
    """One worker unless told: starting worker processes costs more than a few runs."""
    workers = [] if "--workers" in args else ["--workers", "1"]
    result = runner.invoke(app, ["simulate", *args, *workers, "--db", str(tmp_path / "tg.db"), "--json"])
    return result.exit_code, json.loads(result.stdout)


def without_run_ids(report: dict) -> dict:
    """A report but for the ids tg's database gave the campaign and its runs."""
    details = [{k: v for k, v in d.items() if k != "run_id"} for d in report["details"]]
    return {**{k: v for k, v in report.items() if k != "run_id"}, "details": details}


def test_every_catalog_fault_has_an_expected_outcome() -> None:
    assert set(EXPECTED_OUTCOMES) == set(CATALOG) | set(TG_FAULTS)


def test_random_draws_every_fault() -> None:
    assert set(RANDOM_OPTIONS) == set(CATALOG) | set(TG_FAULTS)


@pytest.mark.parametrize("fault", sorted(EXPECTED_OUTCOMES))
def test_each_fault_is_injected_and_every_invariant_holds(tmp_path: Path, fault: str) -> None:
    code, summary = simulate(tmp_path, "--fault", fault, "--runs", "2", "--seed", "7")

    assert code == 0, summary
    assert summary["ok"] is True
    assert all(count == 0 for count in summary["invariants"].values())
    assert summary["injected"].get(fault, 0) >= 2
    assert set(summary["outcomes"]) <= EXPECTED_OUTCOMES[fault]
    assert sum(summary["outcomes"].values()) == 2


def test_same_seed_same_report(tmp_path: Path) -> None:
    first = simulate(tmp_path / "a", "--fault", "random", "--runs", "6", "--seed", "3")
    second = simulate(tmp_path / "b", "--fault", "random", "--runs", "6", "--seed", "3")
    assert without_run_ids(first[1]) == without_run_ids(second[1]) and first[0] == second[0]


def test_runs_spread_over_workers_give_the_report_of_one_worker(tmp_path: Path) -> None:
    one = simulate(tmp_path / "one", "--fault", "random", "--runs", "4", "--seed", "3", "--workers", "1")
    two = simulate(tmp_path / "two", "--fault", "random", "--runs", "4", "--seed", "3", "--workers", "2")
    assert without_run_ids(one[1]) == without_run_ids(two[1]) and one[0] == two[0]
    assert [d["run"] for d in two[1]["details"]] == list(range(4))
    assert len({tuple(d["faults"]) for d in two[1]["details"]}) > 1


def test_workers_need_the_embedded_sandbox(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["simulate", "--url", "http://127.0.0.1:9", "--workers", "2", "--db", str(tmp_path / "tg.db")]
    )
    assert result.exit_code == 2
    assert "--workers needs the embedded sandbox" in result.stderr


def test_random_faults_compose(tmp_path: Path) -> None:
    code, summary = simulate(tmp_path, "--fault", "random", "--runs", "25", "--seed", "100")
    assert code == 0 and summary["ok"]
    assert len(summary["injected"]) >= 8  # a mix, not one fault over and over


def test_unknown_fault_is_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--fault", "meteor", "--db", str(tmp_path / "tg.db")])
    assert result.exit_code == 2
    assert "unknown fault 'meteor'" in result.stderr


def test_a_run_is_stored(tmp_path: Path) -> None:
    simulate(tmp_path, "--fault", "busy")
    listed = runner.invoke(app, ["runs", "--db", str(tmp_path / "tg.db"), "--json"])
    [run] = json.loads(listed.stdout)
    assert run["kind"] == "simulate" and run["status"] == "ok"


def simulation(tmp_path: Path) -> Simulation:
    settings = load_settings(db=tmp_path / "tg.db")
    return Simulation(settings, simulation_sandbox(settings), tmp_path, catalog=CATALOG)


# A cycle sends about a dozen private requests: die after each one in turn.
@pytest.mark.parametrize("step", range(16))
async def test_crash_after_every_request_then_restart_holds(tmp_path: Path, step: int) -> None:
    result = await simulation(tmp_path).run_once(0, 11, [f"crash:after={step}"])
    assert result.status == "CRASHED"
    assert result.ok, result.invariants.violations


@pytest.mark.parametrize("step", [2, 5, 8])
async def test_crash_with_faults_on_the_wire(tmp_path: Path, step: int) -> None:
    result = await simulation(tmp_path).run_once(0, 5, [f"crash:after={step}", "stale-visibility", "db-fail"])
    assert result.ok, result.invariants.violations


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    faults=st.lists(st.sampled_from([*CATALOG, *TG_FAULTS]), min_size=1, max_size=3, unique=True),
    seed=st.integers(min_value=0, max_value=10_000),
)
async def test_any_fault_schedule_keeps_every_invariant(tmp_path: Path, faults: list[str], seed: int) -> None:
    folder = tmp_path / uuid.uuid4().hex  # hypothesis may replay an example: each call gets a clean folder
    result = await simulation(folder).run_once(0, seed, faults)
    assert result.ok, (faults, seed, result.invariants.violations)


@pytest.mark.parametrize("seed", range(3))
async def test_a_market_close_that_fills_after_its_cycle_closes_the_position(tmp_path: Path, seed: int) -> None:
    """The stop is refused, the market close fills in parts, the database refuses writes:
    the close must count against its position from its first record (it had none, so
    reconcile found the coins gone and called it 'something sold tg's holding')."""
    result = await simulation(tmp_path).run_once(0, seed, ["stop-fail", "partial-fill", "db-fail"])
    assert result.ok, result.invariants.violations
    with Store.open(tmp_path / "run-0" / "tg.db") as store:
        closes = [o for o in store.orders() if o.role is OrderRole.CLOSE]
        assert closes and all(o.position_id is not None for o in closes)


@pytest.mark.parametrize("fault", ["crash", "ghost", "partial-fill", "stale-visibility", "random"])
def test_conditional_close_protection_holds_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    monkeypatch.setenv("TG_EXECUTION__PROTECTION", "conditional_close")
    code, summary = simulate(tmp_path, "--fault", fault, "--runs", "4", "--seed", "21")
    assert code == 0 and summary["ok"], summary["invariants"]


def test_reproduction_6_hidden_vanished_entries_are_protected_every_run(tmp_path: Path) -> None:
    code, summary = simulate(tmp_path, "--fault", "vanish:mode=hidden", "--runs", "20")
    assert code == 0 and summary["ok"], summary["details"]
    assert summary["injected"]["vanish"] == 20


@pytest.mark.parametrize(
    "order",
    [
        ["stale-visibility", "ghost:match=stop_loss,variant=internal-error"],
        ["ghost:match=stop_loss,variant=internal-error", "stale-visibility"],
    ],
)
async def test_reproduction_4_stale_and_ghost_on_the_stop_in_either_order(tmp_path: Path, order: list[str]) -> None:
    for seed in range(4):
        result = await simulation(tmp_path / str(seed)).run_once(0, seed, order)
        assert result.ok, (seed, result.invariants.violations)


def test_a_run_applies_its_faults_in_a_seeded_order() -> None:
    import random

    from core.flows.simulation import choose_faults

    faults = ["stale-visibility", "ghost:match=stop_loss", "partial-fill", "busy"]
    orders = {tuple(choose_faults(faults, random.Random(seed), CATALOG)) for seed in range(30)}
    assert len(orders) > 5  # not one fixed order
    assert choose_faults(faults, random.Random(3), CATALOG) == choose_faults(faults, random.Random(3), CATALOG)


def test_random_draws_options_of_every_kind() -> None:
    import random

    from core.flows.simulation import choose_faults

    drawn = [f for seed in range(400) for f in choose_faults(["random"], random.Random(seed), CATALOG)]
    assert "vanish:mode=hidden,match=stop_loss" in drawn
    assert any(f.startswith("ghost:variant=html-5xx,match=take_profit") for f in drawn)
    assert any(f.startswith("db-fail:spool=refuse") for f in drawn)


async def test_a_tg_that_never_protects_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The campaign's verdict comes from the checker: break tg, and the run must say so."""
    from core.domain.enums import ExecutionStatus
    from core.domain.models import ExecutionResult
    from core.execution.manager import _Execution
    from core.execution.reconcile import Reconciler, ReconcileReport

    async def unprotected(
        self: object, proposal: object, entry: object, close: object, pair: object
    ) -> ExecutionResult:
        return ExecutionResult(success=True, status=ExecutionStatus.FILLED, orders=[entry])  # type: ignore[list-item]

    async def nothing(self: object) -> ReconcileReport:
        return ReconcileReport()

    monkeypatch.setattr(_Execution, "_protect", unprotected)
    monkeypatch.setattr(Reconciler, "reconcile", nothing)
    result = await simulation(tmp_path).run_once(0, 1, [])
    assert not result.ok
    assert result.invariants.violations["protected"] and result.invariants.violations["balances_agree"]


async def test_an_unhandled_exception_is_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.execution.manager import OrderExecutionManager

    async def explode(self: object, proposal: object) -> None:
        raise RuntimeError("a bug in tg")

    monkeypatch.setattr(OrderExecutionManager, "execute_trade", explode)
    result = await simulation(tmp_path).run_once(0, 1, [])
    assert result.status == "ERROR"
    assert result.invariants.violations["no_crash"] == ["RuntimeError: a bug in tg"]
