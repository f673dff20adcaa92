"""The sandbox over TCP: uvicorn serving the same ASGI app the embedded exchange uses,
on real time, so that any Kraken client pointed at its URL can trade on it.

The listening socket is bound before uvicorn starts, by this module: the URL (and a
port picked by the system for port 0) is known at once, a busy port is reported as
bad input rather than logged by the server, and clients that connect before the event
loop runs simply wait in the socket's backlog.

A served control plane (/_sandbox/) answers loopback clients only, unless it has a
control token; a sandbox reachable from other machines (`allow_remote`) must have one.
Keys it generates go to a key file readable only by its owner, never to a terminal.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import socket
import stat
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import uvicorn

from core.domain.clock import Clock, SkippableSystemClock
from core.domain.errors import InputError
from simulator.app import SandboxApp, create_app
from simulator.control_guard import is_loopback_name, token_problem
from simulator.exchange import DEFAULT_ACCOUNT, Exchange
from simulator.faults import FaultRule, FaultSchedule, FaultSpecError, load_plan, parse_spec
from simulator.models import ApiKey
from simulator.ratelimits import Tier
from simulator.scenario import ScenarioError, load_scenario
from simulator.websocket.hub import PATH

TierName = Literal["starter", "intermediate", "pro"]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
KeyPair = tuple[str, str]
"""(API key, base64 secret), as Kraken hands them out."""

_SHUTDOWN_GRACE_S = 2
_KEY_FILE_MAX_BYTES = 4_096


def is_loopback_host(host: str) -> bool:
    """Whether binding to `host` keeps the sandbox on this machine."""
    return is_loopback_name(host)


class SandboxServer:
    """An ASGI app behind uvicorn on a socket bound at construction. `run` serves until
    `stop` is called (from any thread) or, in the main thread, until Ctrl-C.

    `sandbox` is the served sandbox's control plane (None for another app): use it
    between requests only, as the server's thread uses it while answering.
    `token_required` tells whether that control plane asks for a bearer token."""

    def __init__(
        self, app: ASGIApp, listener: socket.socket, *, log_level: str = "warning", keys: Sequence[ApiKey] = ()
    ) -> None:
        self.sandbox = app.sandbox if isinstance(app, SandboxApp) else None
        self.token_required = isinstance(app, SandboxApp) and app.guard.token is not None
        self.keys = tuple(keys)
        self._listener = listener
        config = uvicorn.Config(app, log_level=log_level, lifespan="auto", timeout_graceful_shutdown=_SHUTDOWN_GRACE_S)
        self._server = uvicorn.Server(config)

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    @property
    def ws_url(self) -> str:
        """Where Kraken's WebSocket v2 is served: public and private channels alike."""
        return self.url.replace("http://", "ws://", 1) + PATH

    def run(self) -> None:
        try:
            self._server.run(sockets=[self._listener])
        except KeyboardInterrupt:
            # uvicorn has shut down gracefully and re-raised the signal: that is the
            # ordinary way to stop a foreground server, not an error.
            pass
        finally:
            self._listener.close()

    def stop(self) -> None:
        self._server.should_exit = True

    def close(self) -> None:
        """Release the socket of a server that will not run."""
        self._listener.close()


def check_control_token(token: str | None) -> None:
    """A control token must be long enough not to be guessed over the network."""
    problem = None if token is None else token_problem(token)
    if problem is not None:
        raise InputError(f"{problem} (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")


def check_address(host: str, port: int, *, allow_remote: bool = False, control_token: str | None = None) -> None:
    """Refuse a non-loopback address unless asked for, and a remote sandbox whose control
    plane anyone who reaches it could drive."""
    if not allow_remote and not is_loopback_host(host):
        raise InputError(
            f"{host} is not a loopback address: the sandbox would be reachable from other "
            "machines. Use 127.0.0.1, or add --allow-remote (with a control token) if that "
            "is what you want"
        )
    if allow_remote and control_token is None:
        raise InputError(
            "--allow-remote needs a control token, or anyone reaching the sandbox could reset "
            "it and install faults: set TG_SANDBOX_TOKEN (or --control-token)"
        )
    check_control_token(control_token)
    if not 0 <= port <= 65_535:
        raise InputError(f"port {port} is out of range: use 1-65535, or 0 for any free port")


def bind(host: str, port: int, *, allow_remote: bool = False, control_token: str | None = None) -> socket.socket:
    check_address(host, port, allow_remote=allow_remote, control_token=control_token)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family)
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port or stop whatever holds it"
        ) from exc


def sandbox_exchange(
    *, seed: int, keys: Sequence[KeyPair] | None, clock: Clock | None = None, nonce_window: int = 0
) -> tuple[Exchange, list[ApiKey]]:
    """A fresh exchange, on real time unless given a clock, with the given key pairs on
    its one account, or a newly generated pair when none are given."""
    exchange = Exchange.create(clock or SkippableSystemClock(), seed=seed)
    if not keys:
        generated = exchange.create_api_key(DEFAULT_ACCOUNT)
        generated.nonce_window = nonce_window
        return exchange, [generated]
    created = []
    for key, secret in keys:
        _check_key_pair(key, secret)
        if key in exchange.state.api_keys:
            raise InputError(f"the API key {key!r} is given twice; give each key once")
        api_key = ApiKey(key=key, secret=secret, account=DEFAULT_ACCOUNT, nonce_window=nonce_window)
        exchange.state.api_keys[key] = api_key
        created.append(api_key)
    return exchange, created


def fault_schedule(specs: Sequence[str], *, seed: int, fault_file: Path | None = None) -> FaultSchedule:
    """The faults of a file (whose own seed wins) and of `--fault` specs, in that order.
    A spec is a name of the catalog in simulator.faults, optionally with settings:
    `NAME:key=value,...`."""
    rules: list[FaultRule] = []
    try:
        if fault_file is not None:
            file_seed, file_rules = load_plan(fault_file)
            seed = seed if file_seed is None else file_seed
            rules.extend(file_rules)
        rules.extend(parse_spec(spec) for spec in specs)
    except FaultSpecError as exc:
        raise InputError(f"{exc} (see `tg sim faults`)") from exc
    return FaultSchedule(seed=seed, rules=rules)


def sandbox_server(
    host: str,
    port: int,
    *,
    seed: int = 42,
    tier: TierName | None = "starter",
    faults: Sequence[str] = (),
    fault_file: Path | None = None,
    scenario: Path | None = None,
    keys: Sequence[KeyPair] | None = None,
    allow_remote: bool = False,
    control_token: str | None = None,
    log_level: str = "warning",
    clock: Clock | None = None,
    nonce_window: int = 0,
) -> SandboxServer:
    """A sandbox ready to serve on `host:port` (bound already, not yet answering).
    `tier` None serves without rate limits; `control_token` guards its control plane;
    `scenario` (a TOML file, simulator.scenario) is scheduled from the opening time."""
    check_address(host, port, allow_remote=allow_remote, control_token=control_token)
    schedule = fault_schedule(faults, seed=seed, fault_file=fault_file)
    planned = None
    if scenario is not None:
        try:
            planned = load_scenario(scenario)
        except ScenarioError as exc:
            raise InputError(str(exc)) from None
    exchange, api_keys = sandbox_exchange(seed=seed, keys=keys, clock=clock, nonce_window=nonce_window)
    # Over TCP a lost answer is a connection that never answers, as on the internet; and
    # only loopback Host names are the sandbox's own (the in-process name is not).
    app = create_app(
        exchange,
        tier=None if tier is None else Tier(tier),
        faults=schedule,
        lost_response="hang",
        control_token=control_token,
        control_hosts=(),
    )
    if planned is not None:
        app.sandbox.load_scenario(planned)
    listener = bind(host, port, allow_remote=allow_remote, control_token=control_token)
    return SandboxServer(app, listener, log_level=log_level, keys=api_keys)


def serve(server: SandboxServer, *, on_ready: Callable[[SandboxServer], None] | None = None) -> None:
    """Serve `server` until interrupted. `on_ready` is called once, with the server's
    URL and keys, before the first request is answered; if it fails, the socket is
    released and nothing is served."""
    if on_ready is not None:
        try:
            on_ready(server)
        except BaseException:
            server.close()
            raise
    server.run()


@contextmanager
def running(server: SandboxServer) -> Iterator[SandboxServer]:
    """`server` answering from a background thread for the duration of the block."""
    thread = threading.Thread(target=server.run, name="sandbox-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join()


@contextmanager
def serving(
    *,
    seed: int = 42,
    tier: TierName | None = "starter",
    faults: Sequence[str] = (),
    keys: Sequence[KeyPair] | None = None,
    control_token: str | None = None,
    clock: Clock | None = None,
    nonce_window: int = 0,
) -> Iterator[SandboxServer]:
    """A fresh sandbox on 127.0.0.1 and a free port, answering from a background
    thread until the block ends: for tests and benchmarks. With a VirtualClock its
    market stands still (and is the same on every run) unless the clock is advanced."""
    with running(
        sandbox_server(
            "127.0.0.1",
            0,
            seed=seed,
            tier=tier,
            faults=faults,
            keys=keys,
            control_token=control_token,
            clock=clock,
            nonce_window=nonce_window,
        )
    ) as server:
        yield server


@contextmanager
def serving_app(app: ASGIApp) -> Iterator[SandboxServer]:
    """Any ASGI app on 127.0.0.1 and a free port, the way `serving` runs the sandbox:
    the baseline a benchmark compares it with."""
    with running(SandboxServer(app, bind("127.0.0.1", 0))) as server:
        yield server


def _check_key_pair(key: str, secret: str) -> None:
    if not key or not key.isprintable() or " " in key:
        raise InputError("an API key must be non-empty printable text without spaces")
    try:
        decoded = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise InputError(
            f"the secret given for API key {key!r} is not base64; Kraken's secrets are "
            "base64, and clients decode them before signing"
        )


def check_key_file_target(path: Path) -> None:
    """Refuse a `path` for generated keys that holds something else: only a missing
    file, or a key file of this kind (owner-only, two lines), may be overwritten."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"cannot inspect key file {path} ({exc.strerror or exc}); give another --keys-out") from exc
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path} exists and is not a regular file (a link?); give another --keys-out")
    mode = stat.S_IMODE(info.st_mode)
    if mode & ~0o600:
        raise InputError(
            f"{path} exists with mode {mode:04o}, so it is no key file written here; "
            "move it away or give another --keys-out"
        )
    if not _holds_key_pair(path, info.st_size):
        raise InputError(f"{path} exists and does not hold a key pair; move it away or give another --keys-out")


def write_key_file(path: Path, api_key: ApiKey) -> None:
    """Write `api_key` to `path` in the two-line format TG_KRAKEN_KEY_FILE is read in,
    readable only by its owner from the first byte (a temporary file, then renamed)."""
    check_key_file_target(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # whatever the umask
            handle.write(f"{api_key.key}\n{api_key.secret}\n")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InputError(f"cannot write key file {path} ({exc.strerror or exc}); give another --keys-out") from exc


def _holds_key_pair(path: Path, size: int) -> bool:
    if size > _KEY_FILE_MAX_BYTES:
        return False
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return False
    if len(lines) != 2:
        return False
    try:
        return bool(base64.b64decode(lines[1], validate=True))
    except (binascii.Error, ValueError):
        return False
