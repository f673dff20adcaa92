"""Does `tg trade` cost more as the database's history grows? One `tg trade BTC/USDT
--side buy` (in process, through the CLI, with the embedded sandbox loaded and saved)
on a fresh database and on one with a history of closed trades:

    python -m benchmarks.bench_trade_history [--history 1000] [--rounds 5] [--keep DIR]

The history is built once (tests/integration/trade_history.py: each trade bought,
protected and closed by the market; `--keep DIR` keeps it for the next run, which is
slow to build). Each round copies the fresh and the history folders anew and runs
one trade on each, interleaved, so the machine's load falls on both alike. Prints
the median CPU seconds of each, their ratio (target: at most 1.2), and the exchange
requests of each (target: the same).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from tests.integration.trade_history import TradeCost, build, trade


def main(history: int, rounds: int, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="tg-bench-history-") as scratch:
        built = keep or Path(scratch) / "history"
        if not (built / "tg.db").exists():
            print(f"building a history of {history} trades in {built} ...", flush=True)
            build(built, history)
        costs: dict[str, list[TradeCost]] = {"fresh": [], "history": []}
        for n in range(rounds):
            for name in costs:
                folder = Path(scratch) / f"{name}-{n}"
                if name == "history":
                    shutil.copytree(built, folder)
                costs[name].append(trade(folder))
    fresh, old = (statistics.median(c.cpu_s for c in costs[name]) for name in ("fresh", "history"))
    fresh_requests, old_requests = costs["fresh"][-1].requests, costs["history"][-1].requests
    print(f"tg trade BTC/USDT --side buy, CPU seconds, median of {rounds}")
    print(f"fresh database          {fresh:7.3f}   {sum(fresh_requests.values())} requests")
    print(f"{history:>5} trades behind    {old:7.3f}   {sum(old_requests.values())} requests")
    print(f"ratio history/fresh     {old / fresh:7.2f}   (target <= 1.2, and the same requests)")
    if old_requests != fresh_requests:
        print(f"requests differ: fresh {dict(fresh_requests)}, history {dict(old_requests)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="Build the history here once, and reuse it.")
    arguments = parser.parse_args()
    main(arguments.history, arguments.rounds, arguments.keep)
