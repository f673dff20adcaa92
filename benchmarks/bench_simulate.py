"""`tg simulate --fault random` on one worker and spread over processes:

    python benchmarks/bench_simulate.py [--runs 1000] [--workers N (default: the core count)]

Runs the same seeded campaign twice as whole `tg` processes, `--workers 1` and then
`--workers N`, and prints each one's wall and CPU time and CPU per run (on a loaded machine the wall
time says little: spreading only helps when cores are idle), the speed-up (the baseline is the
single worker) and whether the two reports are the same (they must be: each run has
its own seeded sandbox). Targets on a quiet 2-core machine: one worker under 40 s,
spread under 15 s for 1,000 runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def campaign(folder: Path, runs: int, workers: int) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds, CPU seconds (of every process) and the report."""
    command = [
        str(Path(sys.executable).with_name("tg")),
        "simulate",
        "--fault",
        "random",
        "--runs",
        str(runs),
        "--seed",
        "1",
    ]
    command += ["--workers", str(workers)]
    command += ["--db", str(folder / "tg.db"), "--json"]
    start, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    spent, cpu = time.perf_counter() - start, children_cpu() - cpu
    if done.returncode not in (0, 3):
        raise SystemExit(f"tg simulate failed ({done.returncode}): {done.stderr.strip()}")
    report: dict[str, Any] = json.loads(done.stdout)
    report.pop("run_id")
    for detail in report["details"]:
        detail.pop("run_id")
    return spent, cpu, report


def main(runs: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="tg-bench-simulate-") as scratch:
        one_s, one_cpu, one = campaign(Path(scratch) / "one", runs, 1)
        many_s, many_cpu, many = campaign(Path(scratch) / "many", runs, workers)
    print(f"tg simulate --fault random --runs {runs}: wall and CPU seconds (CPU of every process), CPU per run")
    print(f"--workers 1        {one_s:8.1f} {one_cpu:8.1f} {one_cpu / runs:8.3f}")
    print(f"--workers {workers:<8} {many_s:8.1f} {many_cpu:8.1f} {many_cpu / runs:8.3f}")
    print(f"speed-up           {one_s / many_s:8.2f}x   reports identical: {one == many}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    arguments = parser.parse_args()
    main(arguments.runs, arguments.workers)
