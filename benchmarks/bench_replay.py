"""`tg replay` against a plain backtester on the same year of candles:

    python benchmarks/bench_replay.py [--candles examples/btc_usd_1h.csv] [--every 4] [--rounds 3]

Each round runs, as whole processes, `tg replay FILE --every N` (the whole order path:
protection, OCO, reconciliation, invariants, on the embedded sandbox) and
backtesting.py running an EMA(12/26) crossover with an RSI(14) filter and a 2% stop /
4% target on the same file (the baseline; `pip install -e '.[bench]'`). Prints the
median wall and CPU seconds of each and the ratio tg / backtesting.py (target: at
most 3). On a machine shared with other work the CPU ratio is the one to read.

It also runs `tg replay FILE --every <rows>`: the same year with a single decision, so
the start-up, the sandbox's clock moving over every candle and the replay's watch of the
account, without the cycles. What the target leaves each decision is printed next to what
a decision costs now: (3 x the baseline - that floor) / decisions, against (tg replay -
that floor) / decisions, in CPU.

Both run as users run them, with Python's bytecode cache (the environment may set
PYTHONDONTWRITEBYTECODE, which would have tg's own modules compiled anew at every start
while the baseline's installed packages come compiled): tg's packages are compiled
before the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def backtest(candles: Path) -> None:
    """The baseline, run in its own process by `--baseline`."""
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    frame = pd.read_csv(candles, header=None, names=["time", "Open", "High", "Low", "Close", "Volume", "trades"])
    frame.index = pd.to_datetime(frame.pop("time"), unit="s")

    def ema(values: pd.Series, span: int) -> pd.Series:
        return pd.Series(values).ewm(span=span, adjust=False).mean()

    def rsi(values: pd.Series, period: int) -> pd.Series:
        change = pd.Series(values).diff()
        gain = change.clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
        loss = (-change.clip(upper=0)).ewm(alpha=1 / period, adjust=False).mean()
        return 100 - 100 / (1 + gain / loss)

    class EmaRsi(Strategy):
        def init(self) -> None:
            self.fast = self.I(ema, self.data.Close, 12)
            self.slow = self.I(ema, self.data.Close, 26)
            self.rsi = self.I(rsi, self.data.Close, 14)

        def next(self) -> None:
            price = self.data.Close[-1]
            if not self.position and crossover(self.fast, self.slow) and self.rsi[-1] < 70:
                self.buy(size=0.1, sl=price * 0.98, tp=price * 1.04)
            elif self.position and crossover(self.slow, self.fast):
                self.position.close()

    stats = FractionalBacktest(frame, EmaRsi, cash=100_000, commission=0.0026).run()
    print(f"backtesting.py: {stats['# Trades']} trades, return {stats['Return [%]']:.2f}%")


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of the command as a whole process, and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def main(candles: Path, every: int, rounds: int) -> None:
    tg = str(Path(sys.executable).with_name("tg"))
    rows = sum(1 for line in candles.read_text().splitlines() if line.strip())
    commands = {
        "tg replay": [tg, "replay", str(candles), "--every", str(every), "--json"],
        "backtesting.py": [sys.executable, __file__, "--baseline", "--candles", str(candles)],
        "tg, one decision": [tg, "replay", str(candles), "--every", str(rows), "--json"],
    }
    root = Path(__file__).resolve().parent.parent
    compileall = [sys.executable, "-m", "compileall", "-q", *(str(root / p) for p in ("cli", "core", "simulator"))]
    timed(compileall)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    decisions = 0
    for _ in range(rounds):
        for name, command in commands.items():
            wall, cpu, printed = timed(command)
            runs[name].append((wall, cpu))
            if name == "tg replay":
                decisions = sum(json.loads(printed)["decisions"].values())
    medians = {
        name: (statistics.median(w for w, _ in times), statistics.median(c for _, c in times))
        for name, times in runs.items()
    }
    print(f"{candles.name}, decision every {every} candles: whole-process seconds, median of {rounds}")
    print(f"{'':16}{'wall':>8}{'CPU':>8}")
    for name, (wall, cpu) in medians.items():
        print(f"{name:16}{wall:8.1f}{cpu:8.1f}")
    (tg_wall, tg_cpu), (bt_wall, bt_cpu) = medians["tg replay"], medians["backtesting.py"]
    print(f"{'ratio':16}{tg_wall / bt_wall:8.1f}{tg_cpu / bt_cpu:8.1f}   (target <= 3)")
    floor_cpu = medians["tg, one decision"][1]
    now, allowed = (tg_cpu - floor_cpu) / decisions, (3 * bt_cpu - floor_cpu) / decisions
    print(
        f"a decision, CPU: {1000 * now:.2f} ms now; the target leaves {1000 * allowed:.2f} ms "
        f"({decisions} decisions, after the one-decision floor)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candles", type=Path, default=Path(__file__).parent.parent / "examples" / "btc_usd_1h.csv")
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", action="store_true", help="Run only the backtesting.py baseline, once.")
    arguments = parser.parse_args()
    if arguments.baseline:
        backtest(arguments.candles)
    else:
        main(arguments.candles, arguments.every, arguments.rounds)
