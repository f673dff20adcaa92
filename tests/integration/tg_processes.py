"""`tg` commands as real processes, for what only a real process shows. Mostly forked
from a server that has tg's CLI imported (TgProcess): a child starts in milliseconds
instead of the second a fresh interpreter needs, so a test can run many at once, or
SIGKILL one at an exact point. `tg_command` is the fresh interpreter, for a signal's
handling or `tg sim serve`'s banner (`tg_sim_serve`).

Only the standard library is imported at module level: the fork server preloads this
module, and every `tg` child is forked from it with tg's CLI already imported.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

PRELOAD = [
    "__main__",
    __name__,
    "cli.main",
    "cli.wiring",
    "cli.render",
    "cli.sim",
    "core.flows.trade_cycle",
    "core.flows.manual",
    "core.execution.reconcile",
    "core.execution.abandon",
    "core.decision.llm.offline",
    "core.decision.llm.providers",
    "core.decision.agents.trading_decision",
    "core.decision.agents.regime_detection",
    "core.decision.agents.technical_analysis",
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
    "pydantic_settings",
    "typer._adapters",
    "typer._click.decorators",
    "rich.table",
    "rich.console",
    # what httpx imports only once a client is made
    "httpx",
    "httpcore",
    "httpcore._backends.anyio",
    "anyio",
    "anyio._backends._asyncio",
    "anyio.streams.tls",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.to_thread",
    "h11",
    "certifi",
    "sniffio",
]
"""What the tests' commands (`tg trade`, `reconcile`, `orders`, `positions`, `sim`)
import, so that no child imports anything. `__main__` (pytest's script) is preloaded
too, or every child would import it again."""
_context: ForkServerContext | None = None


def fork_context() -> ForkServerContext:
    """The forkserver context, one per pytest process, its server preloaded."""
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        assert isinstance(context, ForkServerContext)
        context.set_forkserver_preload(PRELOAD)
        _context = context
    return _context


_LAUNCH = "import sys; from cli.main import main; sys.argv = ['tg', *sys.argv[1:]]; main()"


def tg_command(*args: str) -> list[str]:
    """`tg ARGS` as the console script runs it, in a fresh interpreter: for
    subprocess, where a forked child would not do (a real console, a real signal)."""
    return [sys.executable, "-c", _LAUNCH, *args]


_PROBE = """
import gc, json, sys
out, report = sys.argv[1], sys.argv[2]
sys.argv = ["tg", *sys.argv[3:]]
try:
    from cli.main import main
    main()
finally:
    with open(out, "w") as kept:
        json.dump(eval(report), kept)
"""

EXIT_REPORTS = {
    "modules": "sorted(sys.modules)",
    "collector": '{"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}',
}
"""What `at_exit` can report of a tg process: every module it imported, or the state of
its cyclic garbage collector."""


def at_exit(report: str, *args: str, folder: Path, env: Mapping[str, str] | None = None) -> Any:
    """What `EXIT_REPORTS[report]` says once `tg ARGS` has run to its end through the console
    entry point, in a fresh interpreter in `folder`: for what start-up alone decides. It
    must succeed; no TG_* variable of the parent's leaks in."""
    out = folder / f"{report}.json"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    environ |= {"XDG_DATA_HOME": str(folder / "data"), "HOME": str(folder), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), EXIT_REPORTS[report], *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


@dataclass
class Served:
    """A running `tg sim serve`: its URL and banner; its output and errors once stopped."""

    url: str
    banner: list[str]
    output: str = ""
    errors: str = ""


@contextmanager
def tg_sim_serve(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, tg_options: Sequence[str] = ()
) -> Iterator[Served]:
    """`tg TG_OPTIONS sim serve --port 0 ARGS` in `cwd` until the block ends (then Ctrl-C,
    and it must stop cleanly); its banner read up to the line that closes it. Its output
    and errors are filled in after. As for a forked child, no TG_* variable of the
    parent's leaks in: `env` is all it gets of them."""
    command = tg_command(*tg_options, "sim", "serve", "--port", "0", *args)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TG_")} | dict(env or {})
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=environment
    ) as server:
        assert server.stdout is not None and server.stderr is not None
        banner: list[str] = []
        while not banner or "/_sandbox/" not in banner[-1]:
            line = server.stdout.readline()
            if not line:
                break
            banner.append(line)
        served = Served(banner[0].split()[4] if banner else "", banner)
        try:
            assert banner and banner[0].startswith("sandbox Kraken serving at"), banner + [server.stderr.read()]
            yield served
        finally:
            server.send_signal(signal.SIGINT)
            served.output, served.errors = server.communicate(timeout=10)
    assert server.returncode == 0, served.errors
    assert served.output.strip().endswith("sandbox stopped")


def run_tg_child(argv: Sequence[str], env: Mapping[str, str], cwd: str, out: str, err: str) -> None:
    """The child: `tg ARGV` as the console script runs it, its output in files. It
    ends by SystemExit, as the console script does, and multiprocessing exits with
    that code. No TG_* variable of the parent's leaks in."""
    os.chdir(cwd)
    for name in [k for k in os.environ if k.startswith("TG_")]:
        del os.environ[name]
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["tg", *argv]
    from cli.main import main

    main()


@dataclass
class Finished:
    """A tg command that ended: how, what it printed, and how long it ran."""

    argv: list[str]
    exitcode: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def command(self) -> str:
        return " ".join(self.argv[:2]) if self.argv[0] == "sim" else self.argv[0]

    def json(self) -> Any:
        return json.loads(self.stdout)

    def unclear(self) -> str | None:
        """Why this is not a clear ending (0, or a non-zero code with one `error:` line
        on stderr; `note:` lines are what a waiting process tells its user), or None."""
        said = [line for line in self.stderr.splitlines() if line.strip() and not line.startswith("note: ")]
        if "Traceback" in self.stderr:
            return f"`tg {' '.join(self.argv)}` died with a traceback (exit {self.exitcode}):\n{self.stderr[-2000:]}"
        if self.exitcode == 0 and not said:
            return None
        if self.exitcode in (1, 2) and len(said) == 1 and said[0].startswith("error: "):
            return None
        return f"`tg {' '.join(self.argv)}` ended unclearly: exit {self.exitcode}, stderr {self.stderr[-800:]!r}"


@contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A folder for the commands' databases, in memory when the machine has one:
    SQLite's fsyncs on disk cost a tenth of a second per command."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=base, prefix=prefix) as name:
        yield Path(name)


class TgProcess:
    """One `tg` command running as its own process (its pid can be SIGKILLed); its
    output goes to files in `folder`/out. The timeouts are only safety nets: every
    wait ends on the process's exit long before."""

    _counter = 0

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], folder: Path) -> None:
        TgProcess._counter += 1
        stem = folder / "out" / f"tg-{TgProcess._counter}"
        stem.parent.mkdir(exist_ok=True)
        self.argv = list(argv)
        self._out, self._err = f"{stem}.out", f"{stem}.err"
        self._started = time.monotonic()
        self.process = fork_context().Process(
            target=run_tg_child, args=(self.argv, dict(env), str(folder), self._out, self._err), daemon=True
        )
        self.process.start()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def wait_for_stderr(self, text: str, timeout: float) -> None:
        """Until the command has written `text` to stderr (polling its file), or ended."""
        deadline = time.monotonic() + timeout
        while text not in self._read(self._err):
            if not self.process.is_alive():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"tg {' '.join(self.argv)} never wrote {text!r}: {self._read(self._err)}")
            time.sleep(0.005)

    def wait(self, timeout: float) -> Finished:
        """Wait for the end and collect the output."""
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
            raise TimeoutError(f"tg {' '.join(self.argv)} still ran after {timeout} s: {self._read(self._err)}")
        return Finished(
            self.argv,
            self.process.exitcode,
            self._read(self._out),
            self._read(self._err),
            time.monotonic() - self._started,
        )

    @staticmethod
    def _read(path: str) -> str:
        try:
            return Path(path).read_text()
        except FileNotFoundError:
            return ""
