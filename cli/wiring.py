"""Connects the pieces a command needs: settings, the store, the exchange (the embedded
sandbox by default, a served simulator or the real Kraken by URL) and the clock."""

from __future__ import annotations

import hashlib
import ipaddress
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from cli.options import OUTPUT, checked_url
from core.domain.clock import Clock, SkippableSystemClock, SystemClock
from core.domain.config import Settings
from core.domain.errors import BusyError, InputError, StorageError
from core.exchange import Credentials, KrakenClient, NonceSource
from core.exchange.ratelimit import KrakenRateLimiter
from core.execution.leases import LeaseKeeper
from core.execution.spool import PendingWrites, spool_path
from core.storage.store import Store
from simulator.exceptions import SandboxInUse, SandboxStateError

if TYPE_CHECKING:
    from simulator.embedded import EmbeddedExchange


def sandbox_path(db_path: Path) -> Path:
    """The embedded exchange lives beside the database that records its orders."""
    return db_path.with_name(f"{db_path.stem}.sandbox.db")


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Session:
    settings: Settings
    store: Store
    client: KrakenClient
    clock: Clock
    sandbox: EmbeddedExchange | None
    spool: PendingWrites
    leases: LeaseKeeper


def notice(message: str) -> None:
    """Something a person waiting at the terminal should know; never on stdout (--json),
    and not with --quiet."""
    if not OUTPUT.quiet:
        print(f"note: {message}", file=sys.stderr, flush=True)


def open_embedded(path: Path, **options: Any) -> EmbeddedExchange:
    """The embedded sandbox at `path`, this process's until closed; its own errors
    become tg's, so they read as one line."""
    from simulator.embedded import EmbeddedExchange  # the sandbox: a served exchange or Kraken does without

    try:
        return EmbeddedExchange.open(path, on_wait=notice, **options)
    except SandboxInUse as exc:
        raise BusyError(str(exc)) from exc
    except SandboxStateError as exc:
        raise StorageError(str(exc)) from exc
    except OSError as exc:  # its directory cannot be made, its lock file cannot be written
        raise StorageError(
            f"cannot keep the sandbox's state at {path}: {exc.strerror}; check that its directory is writable"
        ) from exc


def embedded_sandbox(settings: Settings, *, follow_loop: bool = False, path: Path | None = None) -> EmbeddedExchange:
    """The embedded sandbox beside the database, shaped by the simulator settings; a
    setting that a sandbox created earlier no longer takes is said to. `follow_loop`:
    its time follows a fast-forwarding event loop (simulated time); `path`: elsewhere than
    beside the database."""
    from simulator.ratelimits import Tier

    simulator = settings.simulator
    path = path or sandbox_path(settings.db_path)
    sandbox = open_embedded(
        path,
        seed=simulator.seed,
        tier=Tier(simulator.tier),
        balances=quote_balances(settings),
        follow_loop=follow_loop,
    )
    state = sandbox.exchange.state
    if state.seed != simulator.seed:
        notice(
            f"the sandbox {path} was created with seed {state.seed}; simulator.seed = {simulator.seed} "
            "takes effect after `tg sim reset`"
        )
    if state.initial_balances != quote_balances(settings):
        notice(
            f"the sandbox {path} was created with other opening balances; simulator.quote_balance "
            "takes effect after `tg sim reset`"
        )
    return sandbox


def quote_balances(settings: Settings) -> dict[str, Decimal]:
    """What a fresh sandbox account holds: simulator.quote_balance of each quote currency."""
    amount = settings.simulator.quote_balance
    return {"ZUSD": amount, "USDT": amount}


@asynccontextmanager
async def open_session(
    settings: Settings,
    *,
    url: str | None = None,
    live: bool = False,
    simulated_time: bool = False,
    reading: bool = False,
) -> AsyncIterator[Session]:
    """Open the store and the exchange; the sandbox's state is saved whatever happens.
    `simulated_time`: the embedded sandbox follows the (fast-forwarding) event loop;
    `reading`: the command only looks, so a missing database is not created."""
    url = checked_url(url or settings.kraken.url)
    if live and url is None:
        raise InputError("--live needs --url: it allows trading at a non-loopback address, the real Kraken")
    if url is not None and not is_loopback(url) and not (live or settings.kraken.live):
        raise InputError(f"{url} is not a loopback address, so it would be the real Kraken: add --live to trade there")
    store = Store.open(settings.db_location, create=not reading)
    sandbox: EmbeddedExchange | None = None
    limiter: KrakenRateLimiter | None = None
    try:
        if url is None:
            sandbox = embedded_sandbox(settings, follow_loop=simulated_time)
            clock: Clock = sandbox.clock
            client = KrakenClient(
                sandbox.base_url,
                Credentials(api_key=sandbox.api_key, api_secret=sandbox.api_secret),
                transport=sandbox.transport,
                clock=clock,
                rate_limiter=sandbox_rate_limiter(settings, sandbox.tier, clock),
            )
        else:
            clock = SystemClock()
            credentials = Credentials.from_env()
            limiter = await served_limiter(settings, url, clock)
            levels = limiter_levels(settings, credentials) if limiter is not None else None
            if limiter is not None and levels is not None:
                limiter.share(levels)  # with every process of this key, as Kraken counts
            client = KrakenClient(
                url,
                credentials,
                clock=clock,
                timeout_s=settings.kraken.timeout_s,
                rate_limiter=limiter,
                nonce_source=shared_nonces(settings, credentials, clock),
            )
        try:
            yield Session(
                settings=settings,
                store=store,
                client=client,
                clock=clock,
                sandbox=sandbox,
                spool=PendingWrites(spool_path(settings.db_path)),
                leases=LeaseKeeper(store, on_wait=notice),
            )
        finally:
            await client.aclose()
            if limiter is not None:
                await limiter.flush()
    finally:
        try:
            if sandbox is not None:
                sandbox.save()
        finally:
            if sandbox is not None:
                sandbox.close()
            store.close()


async def served_limiter(settings: Settings, url: str, clock: Clock) -> KrakenRateLimiter | None:
    """The limiter for `url`: Kraken's counters as configured, or, for a sandbox served
    on this machine, the tier it enforces (none when it enforces none), read from its
    control plane."""
    configured = KrakenRateLimiter.from_settings(settings.kraken.rate_limit, clock=clock)
    if not is_loopback(url):
        return configured
    from core.domain.errors import TgError
    from core.exchange.sandbox_control import SandboxControl

    control = SandboxControl(url)
    try:
        limits = (await control.state(orders=False))["rate_limits"]
    except TgError:
        return configured  # not a sandbox (a tunnel to Kraken, say): Kraken's counters
    finally:
        await control.aclose()
    return sandbox_rate_limiter(settings, None if limits is None else str(limits["tier"]), clock)


def limiter_levels(settings: Settings, credentials: Credentials | None) -> Path | None:
    """Where the processes of a key leave its rate counters' levels for the next one."""
    if credentials is None:
        return None
    return settings.data_dir / "ratelimits" / f"{hashlib.sha256(credentials.api_key.encode()).hexdigest()[:16]}.json"


def shared_nonces(settings: Settings, credentials: Credentials | None, clock: Clock) -> NonceSource | None:
    """Every tg process of this machine draws a key's nonces from one file (in the data
    directory), so processes sharing a key never send one out of order."""
    if credentials is None:
        return None
    from core.exchange.shared_nonces import SharedNonceSource  # filelock's async lock: served exchanges only

    return SharedNonceSource.for_key(settings.data_dir / "nonces", credentials.api_key, clock)


def sandbox_rate_limiter(settings: Settings, tier: str | None, clock: Clock) -> KrakenRateLimiter | None:
    """The configured limiter at the tier the sandbox enforces (None: it enforces none)."""
    if tier is None:
        return None
    limits = settings.kraken.rate_limit.model_copy(update={"tier": str(tier)})
    return KrakenRateLimiter.from_settings(limits, clock=clock)


@dataclass(frozen=True)
class SimulationSandboxes:
    """A fresh embedded exchange per simulated run, seeded, at the configured tier. A
    class rather than a closure so that `tg simulate --workers` can hand it to its
    worker processes."""

    settings: Settings

    def __call__(self, seed: int, folder: Path) -> EmbeddedExchange:
        from simulator.ratelimits import Tier

        return open_embedded(
            folder / "sandbox.db",
            seed=seed,
            tier=Tier(self.settings.simulator.tier),
            balances=quote_balances(self.settings),
        )


def simulation_sandbox(settings: Settings) -> SimulationSandboxes:
    return SimulationSandboxes(settings)


def fault_catalog() -> list[str]:
    """The sandbox's faults tg's flows can meet: tg speaks REST, so those only a
    WebSocket client meets (streams, tokens) are left out."""
    from simulator.faults import CATALOG

    return [name for name, fault in CATALOG.items() if not fault.websocket_only]


@dataclass
class ServedSandbox:
    """A sandbox served by `tg sim serve`, reached over the network with keys from the environment."""

    base_url: str
    transport: httpx.AsyncBaseTransport
    api_key: str
    api_secret: str
    clock: Clock

    def close(self) -> None:
        """The served sandbox outlives the run: nothing to let go."""


def served_sandbox(url: str) -> Callable[[int, Path], ServedSandbox]:
    """Every simulated run on the one served sandbox (reset between runs by the run itself)."""
    checked_url(url)
    if not is_loopback(url):
        raise InputError(f"{url} is not a loopback address: tg simulate only drives a sandbox served on this machine")
    credentials = Credentials.from_env()
    if credentials is None:
        raise InputError(
            "set TG_KRAKEN_KEY_FILE to the key file `tg sim serve` wrote (or TG_KRAKEN_API_KEY and "
            "TG_KRAKEN_API_SECRET to its keys)"
        )
    sandbox = ServedSandbox(
        base_url=url,
        transport=httpx.AsyncHTTPTransport(),
        api_key=credentials.api_key,
        api_secret=credentials.api_secret,
        clock=SkippableSystemClock(),
    )
    return lambda seed, folder: sandbox
