"""A served sandbox for other people's tests, in one `with`: a fresh sandbox Kraken on
127.0.0.1 and a free port, answering from a background thread, with its URL, an API
key pair and the control-plane client (simulator.client) at hand. The pytest plugin
(simulator.pytest_plugin) hands the same object to tests as a fixture.

By default the exchange's clock stands still at the sandbox epoch (2026-01-01 UTC):
the market moves only when the test advances it, so every run sees the same prices,
fills and fault draws. `frozen=False` lets it follow the wall clock from there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.domain.clock import SkippableSystemClock
from simulator.client import SandboxClient
from simulator.embedded import SANDBOX_EPOCH
from simulator.server import TierName, running, sandbox_server


@dataclass(frozen=True)
class ServedSandbox:
    """A running sandbox: point a Kraken client at `url` with `key` and `secret`
    (base64, as Kraken's); drive the exchange through `control`."""

    url: str
    key: str
    secret: str = field(repr=False)
    control: SandboxClient = field(repr=False)

    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        """What ccxt.kraken(...) (or ccxt.pro.kraken) takes to trade here: the keys and
        the API URLs; `extra` is merged in (e.g. timeout=5000)."""
        return {
            "apiKey": self.key,
            "secret": self.secret,
            "urls": {"api": {"public": self.url, "private": self.url}},
            "enableRateLimit": False,
            **extra,
        }


@contextmanager
def served_sandbox(
    *,
    seed: int = 42,
    tier: TierName | None = None,
    faults: Sequence[str] = (),
    fault_file: Path | None = None,
    scenario: Path | None = None,
    frozen: bool = True,
    start: float = SANDBOX_EPOCH,
    control_token: str | None = None,
) -> Iterator[ServedSandbox]:
    """A fresh sandbox for the duration of the block. `tier` enforces Kraken's rate
    limits for that verification tier (None: none, the default, as a frozen clock
    never lets a counter decay); `faults` are rule specs (NAME:key=value,...);
    `scenario` a scenario file (simulator.scenario) scheduled from `start`."""
    server = sandbox_server(
        "127.0.0.1",
        0,
        seed=seed,
        tier=tier,
        faults=faults,
        fault_file=fault_file,
        scenario=scenario,
        control_token=control_token,
        clock=SkippableSystemClock(start, frozen=frozen),
    )
    with running(server), SandboxClient(server.url, token=control_token) as control:
        [api_key] = server.keys
        yield ServedSandbox(url=server.url, key=api_key.key, secret=api_key.secret, control=control)
