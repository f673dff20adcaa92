"""A throwaway PostgreSQL server for the tests: the installed binaries (initdb, pg_ctl)
run a cluster in a temporary directory, on 127.0.0.1 and a free port, trusted without a
password, torn down when the session ends.

initdb refuses to run as root, so as root the server runs as an unprivileged user
(TG_TEST_PG_USER, default `postgres`, which Debian's package creates). Missing binaries
fail the PostgreSQL tests rather than skip them: .ci/run installs Debian's postgresql.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import psycopg
import pytest

from core.domain.ownership import new_install_id
from core.storage.schema import METADATA
from core.storage.store import Store

SUPERUSER = "tg"


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class PostgresServer:
    port: int
    folder: Path
    _names = count(1)
    _pool: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty place on the server, as a URL tg takes: a schema of its own,
        named by the URL's search_path (a new schema takes a millisecond, a new
        database a tenth of a second or more)."""
        name = self._name()
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url()}?options=-csearch_path%3D{name}"

    @contextlib.contextmanager
    def tg_database(self) -> Iterator[str]:
        """A database tg has already created its tables in, empty, with an install id of
        its own: one of a pool, emptied when the block ends (TRUNCATE takes a hundredth
        of a second; creating the tables half a second, copying a template database a
        second on a busy machine)."""
        url = self._pool.pop() if self._pool else self._created()
        yield url
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '5s'")
                tables = ", ".join(t.name for t in METADATA.sorted_tables if t.name != "meta")
                conn.execute(f"TRUNCATE {tables} RESTART IDENTITY")
                conn.execute("UPDATE meta SET value = %s WHERE key = 'install_id'", [new_install_id()])
        except psycopg.Error:
            return  # still in use (a test left a connection open): not reused
        self._pool.append(url)

    def _created(self) -> str:
        name = self._name()
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        Store.open(self.url(name)).close()
        return self.url(name)

    def _name(self) -> str:
        return f"t{os.getpid()}_{next(self._names)}"


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    user = os.environ.get("TG_TEST_PG_USER", "postgres")
    try:
        pwd.getpwnam(user)
    except KeyError:
        pytest.fail(f"PostgreSQL cannot run as root and there is no user {user!r}: set TG_TEST_PG_USER to one")
    return ["runuser", "-u", user, "--", *argv]


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.fail("the PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql")
    memory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # no disk to wait for
    folder = Path(tempfile.mkdtemp(prefix="tg-postgres-", dir=memory))
    if os.geteuid() == 0:
        user = pwd.getpwnam(os.environ.get("TG_TEST_PG_USER", "postgres"))
        os.chown(folder, user.pw_uid, user.pw_gid)
    data = folder / "data"
    port = _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    try:
        subprocess.run(
            _as_server_user([initdb, "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"]),
            check=True,
            capture_output=True,
        )
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]),
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        log = folder / "log"
        detail = (exc.stderr or b"").decode(errors="replace") + (log.read_text() if log.exists() else "")
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {detail}")
    try:
        yield PostgresServer(port, folder)
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


class Link:
    """A TCP relay to the server on 127.0.0.1 that the test can cut: `cut()` drops every
    connection and refuses new ones, as a server that went down or a network that
    failed would; `restore()` listens again on the same port."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = self._serve()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        return listener

    def _serve(self) -> threading.Thread:
        thread = threading.Thread(target=self._accept, args=(self._listener,), daemon=True, name="pg-link")
        thread.start()
        return thread

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def url(self, server_url: str, server_port: int) -> str:
        """`server_url` reached through this link."""
        return server_url.replace(f":{server_port}/", f":{self.port}/")

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone would not
        self._listener.close()
        self._thread.join()
        with self._lock:
            for end in self._open:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            self._open.clear()

    def restore(self) -> None:
        self._listener = self._listen(self.port)
        self._thread = self._serve()

    def close(self) -> None:
        self.cut()
