"""A simulation campaign split across machines: `tg simulate --shard I/N` runs every
N-th seed of the campaign, each shard records its run in the shared store under the
campaign's id, and `tg campaign ID` merges what the shards recorded into one report,
the same as one machine running every seed would have given.

The campaign id is a digest of what defines the campaign (faults, runs, first seed,
symbol), so shards started with the same arguments agree on it without being told;
`--campaign` names one instead.

A simulate run's record holds its totals; each of its runs' results is a row of its own
(RunJournal.record), read back here into the report as the command printed it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.domain.errors import InputError
from core.flows.journal import ENDINGS, as_listed
from core.storage.store import RUN_STARTED, RunRecord, Store

KIND = "simulate"
RESULTS = "details"
"""Where a simulation report lists its runs' results."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1 to `count`) of a campaign: the runs whose index is index - 1
    modulo count, so every shard gets seeds from the whole range."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None or not 1 <= int(match[1]) <= int(match[2]):
            raise InputError(f"--shard {text!r} is not I/N with 1 <= I <= N, for example 2/4")
        return cls(int(match[1]), int(match[2]))

    def owns(self, run_index: int) -> bool:
        return run_index % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard(1, 1)


def campaign_id(faults: Sequence[str], *, runs: int, seed: int, symbol: str) -> str:
    """The id every shard started with these arguments computes alike."""
    defining = json.dumps({"faults": list(faults), "runs": runs, "seed": seed, "symbol": symbol}, sort_keys=True)
    return "C-" + hashlib.sha256(defining.encode()).hexdigest()[:12]


def campaign_report(store: Store, campaign: str) -> dict[str, Any]:
    """The shards' runs of `campaign` merged: totals as SimulationReport.to_dict gives
    them, every run's details in run order, and which shards are missing or unfinished.
    A shard recorded twice (run again) counts once, its latest run."""
    from core.execution.invariants import INVARIANTS  # brings the exchange client, which `tg show` need not load

    shards = _latest_per_shard([r for r in store.runs_of_kind(KIND) if r.params.get("campaign") == campaign])
    if not shards:
        raise InputError(f"no simulation campaign {campaign!r} in {store.location}; `tg runs` lists the runs")
    count = shards[0].params["shard"]["count"]
    details = sorted((d for r in shards for d in store.run_results(r.run_id)), key=lambda d: d["run"])
    outcomes = Counter(d["status"] for d in details)
    injected: Counter[str] = Counter()
    for detail in details:
        injected.update(detail["injected"])
    present = {r.params["shard"]["index"] for r in shards}
    unfinished = [f"{r.params['shard']['index']}/{count}" for r in shards if r.status == RUN_STARTED]
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in present]
    invariants = {name: sum(len(d["violations"].get(name, [])) for d in details) for name in INVARIANTS}
    return {
        "campaign": campaign,
        "shards": {
            "count": count,
            "recorded": sorted(present),
            "missing": missing,
            "unfinished": unfinished,
            "run_ids": [r.run_id for r in shards],
        },
        "complete": not missing and not unfinished and len(details) == shards[0].params["runs"],
        "runs": len(details),
        "faults": sorted({f for d in details for f in d["faults"]}),
        "outcomes": dict(sorted(outcomes.items())),
        "injected": dict(sorted(injected.items())),
        "invariants": invariants,
        "ok": not any(invariants.values()),
        RESULTS: details,
    }


def recorded_run(store: Store, run_id: str) -> RunRecord | None:
    """The run `run_id` names (Store.get_run) as its command reported it: a simulate
    run's results listed in its summary where SimulationReport.to_dict has them, before
    what an interruption or an error added; a run that finished nothing as it is; one
    whose process is gone as died (core.flows.journal.as_listed)."""
    record = store.get_run(run_id)
    if record is None:
        return None
    [record] = as_listed(store, [record])
    if record.kind != KIND or not record.summary:
        return record
    totals = {key: value for key, value in record.summary.items() if key not in ENDINGS}
    ending = {key: value for key, value in record.summary.items() if key in ENDINGS}
    return replace(record, summary={**totals, RESULTS: store.run_results(record.run_id), **ending})


def _latest_per_shard(records: Sequence[RunRecord]) -> list[RunRecord]:
    latest: dict[int, RunRecord] = {}
    for record in sorted(records, key=lambda r: r.started_at):
        latest[record.params["shard"]["index"]] = record
    return [latest[i] for i in sorted(latest)]
