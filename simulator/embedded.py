"""The sandbox inside tg's own process: the exchange, its ASGI app behind an
httpx.ASGITransport, and a virtual clock, loaded from and saved to a state file so
that one CLI command after another trades on the same exchange.

In-process, time is the VirtualClock's: the market moves only when the clock does
(tg's client shares the clock, so its waits move the sandbox's time). A fresh sandbox
opens at a fixed epoch, 2026-01-01T00:00:00Z, so that runs are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path

import httpx
from filelock import BaseFileLock, FileLock, Timeout

from core.domain.clock import Clock, LoopClock, VirtualClock
from simulator.app import SandboxApp, create_app
from simulator.exceptions import SandboxInUse
from simulator.exchange import DEFAULT_ACCOUNT, Exchange
from simulator.faults import FaultSchedule
from simulator.models import ApiKey
from simulator.price_path import PricePath
from simulator.ratelimits import Tier
from simulator.store import StateFile

SANDBOX_EPOCH = 1_767_225_600.0
"""2026-01-01T00:00:00Z."""
LOCK_WAIT_S = 30.0


def _lock(state_path: Path) -> BaseFileLock:
    """The lock beside the state file; one instance per file in a process (reentrant)."""
    return FileLock(f"{state_path}.lock", timeout=LOCK_WAIT_S, is_singleton=True, thread_local=False)


class EmbeddedExchange:
    base_url = "http://sandbox.kraken"

    def __init__(
        self,
        state_file: StateFile,
        exchange: Exchange,
        clock: Clock,
        *,
        tier: Tier | None = Tier.STARTER,
        faults: FaultSchedule | None = None,
    ) -> None:
        self._file = state_file
        self.exchange = exchange
        self.clock = clock
        self.tier = tier
        self.faults = FaultSchedule() if faults is None else faults
        """The fault schedule in force: add rules to it, read its `log`. It is not
        saved with the state: each process installs its own."""
        self.app = self._app()
        self.transport = httpx.ASGITransport(app=self.app)
        self._lock: BaseFileLock | None = None

    @classmethod
    def open(
        cls,
        state_path: Path,
        *,
        seed: int = 42,
        start_time: float | None = None,
        tier: Tier | None = Tier.STARTER,
        faults: FaultSchedule | None = None,
        paths: Mapping[str, PricePath] | None = None,
        fixed_ids: bool = False,
        balances: Mapping[str, Decimal] | None = None,
        follow_loop: bool = False,
        on_wait: Callable[[str], None] | None = None,
    ) -> EmbeddedExchange:
        """The sandbox saved at `state_path`, or a fresh one with a new API key pair.

        `seed`, `start_time` (default: the sandbox epoch) and `balances` (default: the
        exchange's) shape a fresh sandbox only; a saved one keeps its own. `tier` sets the rate limits (None: none) and
        `faults` the fault schedule. `paths` replaces the market of the pairs it names
        (a replay's recorded candles); paths are not saved, so give them on every open.
        `fixed_ids` (a fresh sandbox only) makes its ids a function of the seed and the
        requests, for tests that compare them; by default ids never repeat, as Kraken's.
        With `follow_loop` its time follows a fast-forwarding event loop started at 0
        (looptime) from where the sandbox stood: `tg run` on simulated time.

        The sandbox is this process's until `close()`: another process opening it waits
        (up to LOCK_WAIT_S, after telling `on_wait`), so two processes never trade on two
        copies of one exchange and lose each other's orders. Within a process it may be
        opened again; each open is closed once.
        """
        lock = _lock(state_path)
        try:
            lock.acquire(blocking=False)
        except Timeout:
            if on_wait is not None:
                on_wait(f"waiting up to {LOCK_WAIT_S:g} s for another tg process using the sandbox {state_path}")
            try:
                lock.acquire(timeout=LOCK_WAIT_S)
            except Timeout:
                raise SandboxInUse(
                    f"another tg process has had the sandbox {state_path} for over {LOCK_WAIT_S:g} s; "
                    "the embedded sandbox serves one process at a time (serve it with `tg sim serve` "
                    "to share one exchange among processes)"
                ) from None
        try:
            sandbox = cls._load(
                state_path,
                seed=seed,
                start_time=start_time,
                tier=tier,
                faults=faults,
                paths=paths,
                fixed_ids=fixed_ids,
                balances=balances,
                follow_loop=follow_loop,
            )
        except BaseException:
            lock.release()
            raise
        sandbox._lock = lock
        return sandbox

    @classmethod
    def _load(
        cls,
        state_path: Path,
        *,
        seed: int,
        start_time: float | None,
        tier: Tier | None,
        faults: FaultSchedule | None,
        paths: Mapping[str, PricePath] | None,
        fixed_ids: bool,
        balances: Mapping[str, Decimal] | None,
        follow_loop: bool,
    ) -> EmbeddedExchange:
        state_file = StateFile(state_path)
        try:
            state = state_file.load()
            start = (SANDBOX_EPOCH if start_time is None else start_time) if state is None else state.processed_until
            clock: Clock = LoopClock(start) if follow_loop else VirtualClock(start)
            if state is None:
                exchange = Exchange.create(clock, seed=seed, paths=paths, fixed_ids=fixed_ids, balances=balances)
                exchange.create_api_key(DEFAULT_ACCOUNT)
            else:
                exchange = Exchange(state, clock, paths, history=state_file)
        except BaseException:
            state_file.close()
            raise
        return cls(state_file, exchange, clock, tier=tier, faults=faults)

    @property
    def api_key(self) -> str:
        return self._credentials.key

    @property
    def api_secret(self) -> str:
        """Base64, as Kraken hands secrets out."""
        return self._credentials.secret

    @property
    def _credentials(self) -> ApiKey:
        return next(k for k in self.exchange.state.api_keys.values() if k.account == DEFAULT_ACCOUNT)

    def save(self) -> None:
        """Match the market up to now and write the state to the state file, in one
        transaction: a crash mid-write leaves the state saved before. What is settled
        is the file's to answer for from then on."""
        self.exchange.sync()
        self._file.save(self.exchange.state)
        self.exchange.keep_history_in(self._file)

    def close(self) -> None:
        """Let other processes open the sandbox (what is not saved is lost)."""
        self._file.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> EmbeddedExchange:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def advance(self, seconds: float) -> None:
        self.exchange.advance(seconds)

    def reset(self, *, seed: int | None = None, balances: Mapping[str, Decimal] | None = None) -> None:
        """Start over: opening balances, no orders, back at the opening time, the same
        API key pair; the same seed and balances unless new ones are given. `clock` and
        `transport` are replaced: take them anew."""
        old = self.exchange.state
        credentials = self._credentials
        self.clock = VirtualClock(old.origin)
        self.exchange = Exchange.create(
            self.clock,
            seed=old.seed if seed is None else seed,
            balances=old.initial_balances if balances is None else balances,
            fixed_ids=not old.id_space,
        )
        self.exchange.state.api_keys[credentials.key] = ApiKey(
            key=credentials.key, secret=credentials.secret, account=DEFAULT_ACCOUNT
        )
        self.app = self._app()
        self.transport = httpx.ASGITransport(app=self.app)

    def _app(self) -> SandboxApp:
        return create_app(self.exchange, tier=self.tier, faults=self.faults)
