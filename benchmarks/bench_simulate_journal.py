"""Does recording a finished `tg simulate` run cost more the more runs came before it?

    python -m benchmarks.bench_simulate_journal [--at 10,1000,10000] [--samples 30] [--real 12]

First a real campaign (`--fault random`, `--real` runs, one worker, in process) gives
the results. Then, for each N of `--at`, a fresh SQLite database holds a campaign with
N - 1 runs recorded (those results over and over, as a campaign of N - 1 would have
them), and the next `--samples` runs are taken in and recorded as `tg simulate` does
(core.flows.simulation.take_in: the report, the run's row, the totals). Prints the
median wall and CPU milliseconds per run at each N and their ratios to the first N (the baseline):
target 1.0 at every N, a cost that does not grow with the campaign.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from cli.wiring import fault_catalog, simulation_sandbox
from core.domain.config import load_settings
from core.flows.campaign import KIND
from core.flows.journal import RunJournal
from core.flows.simulation import RunResult, Simulation, SimulationReport, take_in
from core.storage.store import Store


def real_results(folder: Path, runs: int) -> list[RunResult]:
    settings = load_settings(db=folder / "unused.db")
    simulation = Simulation(settings, simulation_sandbox(settings), folder / "work", catalog=fault_catalog())
    report = asyncio.run(simulation.run(["random"], runs=runs, seed=1))
    return report.runs


def per_run_ms(folder: Path, results: list[RunResult], at: int, samples: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds to take in and record each run after the first `at` - 1."""

    def nth(index: int) -> RunResult:
        return replace(results[index % len(results)], index=index, seed=1 + index)

    with Store.open(folder / f"at-{at}.db") as store:
        journal = RunJournal.start(store, "R-bench", kind=KIND, symbol="BTC/USDT", params={})
        report = SimulationReport(run_id=journal.run_id)
        with store.transaction():  # the runs before: recorded as the campaign went, here at once
            for index in range(at - 1):
                take_in(report, nth(index), journal)
        wall, cpu = [], []
        for index in range(at - 1, at - 1 + samples):
            start, start_cpu = time.perf_counter(), time.process_time()
            take_in(report, nth(index), journal)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def main(at: list[int], samples: int, real: int) -> None:
    with tempfile.TemporaryDirectory(prefix="tg-bench-journal-") as scratch:
        print(f"a real campaign of {real} runs for the results ...", flush=True)
        results = real_results(Path(scratch), real)
        costs = {n: per_run_ms(Path(scratch), results, n, samples) for n in at}
    print(f"recording run N of a tg simulate campaign (SQLite), median ms of {samples} runs, ratio to N={at[0]}")
    print(f"{'':9} {'wall ms':>9} {'ratio':>7} {'CPU ms':>9} {'ratio':>7}")
    (base_wall, base_cpu) = costs[at[0]]
    for n, (wall, cpu) in costs.items():
        print(f"N={n:<7} {wall:9.3f} {wall / base_wall:6.2f}x {cpu:9.3f} {cpu / base_cpu:6.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--at", type=lambda text: [int(n) for n in text.split(",")], default=[10, 1000, 10000])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--real", type=int, default=12)
    arguments = parser.parse_args()
    main(arguments.at, arguments.samples, arguments.real)
