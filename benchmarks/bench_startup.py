"""How long `tg` takes to start, as whole processes with their .pyc files (as users have them):

    python benchmarks/bench_startup.py [--rounds 15]

Times `tg --help` and a fresh `tg trade BTC/USDT` (a new database in a new folder, so
the embedded sandbox is created and the offline models vote), and the baseline, a
trivial Typer app with one command (benchmarks/startup_baseline.py), run the same two
ways (`--help`, and its command). PYTHONDONTWRITEBYTECODE is removed from the children's
environment and each case runs once untimed first, so .pyc files are written and used.
Rounds interleave the cases, so the machine's load falls on all alike. Prints the median
wall and CPU seconds of each and its ratio to the baseline's; the targets are absolute,
on this machine: `tg --help` under 0.15 s, a fresh `tg trade` under 0.5 s.

It also times the floor under each tg case: a process importing, in the order tg loaded
them, only the modules of tg's dependencies that the case loaded (found by running the
case once, recording its modules at exit). tg's own code, the cycle and the sandbox cost
nothing there, so no change to tg can take the case below it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BASELINE = Path(__file__).with_name("startup_baseline.py")
TG = Path(sys.executable).with_name("tg")

Case = Callable[[Path], list[str]]
"""The command line of one run, given a fresh folder to run it in."""

CASES: dict[str, Case] = {
    "baseline --help": lambda folder: [sys.executable, str(BASELINE), "--help"],
    "tg --help": lambda folder: [str(TG), "--help"],
    "baseline BTC/USDT": lambda folder: [sys.executable, str(BASELINE), "BTC/USDT"],
    "tg trade BTC/USDT": lambda folder: [str(TG), "trade", "BTC/USDT", "--db", str(folder / "tg.db")],
}
AGAINST = {"tg --help": "baseline --help", "tg trade BTC/USDT": "baseline BTC/USDT"}
TARGETS = {"tg --help": 0.15, "tg trade BTC/USDT": 0.5}
TG_PACKAGES = {"core", "cli", "simulator"}

RECORD = """import atexit, json, sys
out = sys.argv.pop(1)
def record():
    with open(out, "w") as f:
        json.dump([(n, getattr(m, "__file__", None)) for n, m in list(sys.modules.items())], f)
atexit.register(record)
sys.argv[0] = "tg"
from cli.main import main
main()
"""
# a module that cannot be imported alone is left out: the floor can only come out lower
IMPORT_ALL = """import importlib, json, sys
for name in json.load(open(sys.argv[1])):
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""


def dependency_modules(case: Case, folder: Path, env: dict[str, str]) -> list[str]:
    """The modules of tg's dependencies (installed packages other than tg's own) that a
    tg case loads, in the order it loaded them."""
    out = folder / "modules.json"
    command = case(folder)
    timed([sys.executable, "-c", RECORD, str(out), *command[1:]], folder, env)
    return [
        name
        for name, file in json.loads(out.read_text())
        if file is not None and "site-packages" in file and name.partition(".")[0] not in TG_PACKAGES
    ]


def floor_case(modules: Path) -> Case:
    return lambda folder: [sys.executable, "-c", IMPORT_ALL, str(modules)]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def environment() -> dict[str, str]:
    """This environment without PYTHONDONTWRITEBYTECODE, nor any TG_* setting that would
    change what `tg trade` does."""
    return {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("TG_")
    }


def timed(command: list[str], folder: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process, run in `folder` (no tg.toml there, and
    its data directory)."""
    env = {**env, "HOME": str(folder), "XDG_DATA_HOME": str(folder / "data")}
    start, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return wall, cpu


def main(rounds: int) -> None:
    env = environment()
    with tempfile.TemporaryDirectory(prefix="tg-bench-startup-") as scratch:
        cases = dict(CASES)
        floors: dict[str, str] = {}
        for index, name in enumerate(AGAINST):  # each tg case's floor, run with the others
            folder = Path(scratch) / f"modules-{index}"
            folder.mkdir()
            listed = folder / "dependencies.json"
            listed.write_text(json.dumps(dependency_modules(CASES[name], folder, env)))
            floors[name] = f"{name.split()[-1]}: deps only"
            cases[floors[name]] = floor_case(listed)
        walls: dict[str, list[float]] = {name: [] for name in cases}
        cpus: dict[str, list[float]] = {name: [] for name in cases}
        for n in range(-1, rounds):  # round -1 warms up: writes the .pyc files
            for index, (name, case) in enumerate(cases.items()):
                folder = Path(scratch) / f"round{n + 1}-case{index}"
                folder.mkdir()
                wall, cpu = timed(case(folder), folder, env)
                if n >= 0:
                    walls[name].append(wall)
                    cpus[name].append(cpu)
    wall_of = {name: statistics.median(values) for name, values in walls.items()}
    cpu_of = {name: statistics.median(values) for name, values in cpus.items()}
    print(f"start-up, whole processes with .pyc files, median of {rounds} interleaved rounds")
    print(f"{'':22} {'wall s':>7} {'CPU s':>7} {'wall/baseline':>14} {'CPU/baseline':>13}   target")
    for name in CASES:
        against = AGAINST.get(name)
        if against is None:
            print(f"{name:22} {wall_of[name]:7.3f} {cpu_of[name]:7.3f}")
            continue
        wall_ratio, cpu_ratio = wall_of[name] / wall_of[against], cpu_of[name] / cpu_of[against]
        print(
            f"{name:22} {wall_of[name]:7.3f} {cpu_of[name]:7.3f} {wall_ratio:13.2f}x {cpu_ratio:12.2f}x"
            f"   < {TARGETS[name]} s wall"
        )
        floor = floors[name]
        print(
            f"{floor:22} {wall_of[floor]:7.3f} {cpu_of[floor]:7.3f}"
            f"   (the modules of tg's dependencies that {name.split()[1]} loads, imported alone)"
        )
    if importlib.util.find_spec("tornado") is not None:
        print(
            "note: tornado is installed here (backtesting.py's plots need it: the bench extra) and tenacity "
            "imports it when it can, about 0.1 s on every start; a user's `pip install .` has no tornado"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    main(parser.parse_args().rounds)
