"""pytest fixtures for testing a bot against the sandbox Kraken, loaded by pytest
itself once tg is installed (entry point `pytest11`, name `tg_sandbox`).

    def test_my_bot_survives_a_refused_stop(kraken_sandbox):
        kraken_sandbox.control.add_fault("stop-fail")
        bot = MyBot(api_url=kraken_sandbox.url, key=kraken_sandbox.key, secret=kraken_sandbox.secret)
        ...
        assert kraken_sandbox.control.fault_log()[0]["fault"] == "stop-fail"

- `kraken_sandbox`: a fresh sandbox for one test, on a free 127.0.0.1 port;
  `@pytest.mark.kraken_sandbox(seed=7, tier="starter", faults=["stop-fail"],
  scenario="path.toml", frozen=False)` sets it up otherwise.
- `kraken_sandbox_session`: one sandbox for the whole session (reset it yourself, or
  use `kraken_sandbox_reset`, which hands it over reset, its rules cleared, its
  clock frozen).

Each is a simulator.testing.ServedSandbox: `url`, `key`, `secret`, `control` (the
control-plane client, simulator.client.SandboxClient) and `ccxt_config()`. A project
that does not want the fixtures turns the plugin off with `-p no:tg_sandbox`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from simulator.testing import ServedSandbox

MARKER = "kraken_sandbox"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(seed=42, tier=None, faults=(), scenario=None, frozen=True): how the kraken_sandbox fixture "
        "sets up its sandbox",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    from simulator.testing import served_sandbox

    marker = request.node.get_closest_marker(MARKER)
    options: dict[str, Any] = {} if marker is None else dict(marker.kwargs)
    known = inspect.signature(served_sandbox).parameters
    if marker is not None and (marker.args or options.keys() - known.keys()):
        unknown = ", ".join(sorted(options.keys() - known.keys())) or "positional arguments"
        raise pytest.UsageError(f"@pytest.mark.{MARKER}: unknown {unknown}; it takes {', '.join(known)} (by name)")
    if options.get("scenario") is not None:
        scenario = Path(options["scenario"])
        options["scenario"] = scenario if scenario.is_absolute() else request.path.parent / scenario
    return options


@contextmanager
def _serving(**options: Any) -> Iterator[ServedSandbox]:
    """A served sandbox; a setup it refuses (a missing scenario, a bad fault) fails the
    test with the one line that says why, not a traceback."""
    from core.domain.errors import InputError
    from simulator.testing import served_sandbox

    with ExitStack() as stack:
        try:
            served = stack.enter_context(served_sandbox(**options))
            problem = None
        except InputError as exc:
            problem = f"kraken_sandbox: {exc}"
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        yield served


@pytest.fixture
def kraken_sandbox(request: pytest.FixtureRequest) -> Iterator[ServedSandbox]:
    """A fresh served sandbox for this test (see the module docstring)."""
    with _serving(**_options(request)) as served:
        yield served


@pytest.fixture(scope="session")
def kraken_sandbox_session() -> Iterator[ServedSandbox]:
    """One served sandbox for the session, in its default setup."""
    with _serving() as served:
        yield served


@pytest.fixture
def kraken_sandbox_reset(kraken_sandbox_session: ServedSandbox) -> ServedSandbox:
    """The session's sandbox, reset, without fault rules, its clock frozen: cheap isolation."""
    kraken_sandbox_session.control.clear_faults()
    kraken_sandbox_session.control.freeze()
    kraken_sandbox_session.control.reset()
    return kraken_sandbox_session
