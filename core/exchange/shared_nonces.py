"""Nonces shared by every tg process of this machine that uses one API key (a served
sandbox or Kraken; the embedded sandbox needs none): a file under an async file lock,
apart from core.exchange.signing because that lock is a fair part of the time tg takes to
start."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from filelock import AsyncFileLock

from core.domain.clock import Clock
from core.domain.errors import ConfigError
from core.exchange.signing import NonceSource


class SharedNonceSource(NonceSource):
    """One source of nonces for an API key across every process of this machine.

    Kraken refuses a nonce not above the last one it processed for the key, so two
    processes sharing a key must neither repeat nor reorder theirs: the nonce is drawn
    from a file under an exclusive file lock, and the lock is held until the request
    carrying it has been answered, so requests of one key leave this machine in nonce
    order."""

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.path = path
        self._lock = AsyncFileLock(f"{path}.lock", thread_local=False)

    @classmethod
    def for_key(cls, folder: Path, api_key: str, clock: Clock | None = None) -> SharedNonceSource:
        """The source of `api_key`'s nonces in `folder` (the file is named by a hash of the key)."""
        return cls(folder / f"nonce-{hashlib.sha256(api_key.encode()).hexdigest()[:16]}", clock)

    @asynccontextmanager
    async def reserved(self) -> AsyncIterator[int]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            await self._lock.acquire()
        except OSError as exc:
            raise ConfigError(f"cannot lock the nonce file {self.path}: {exc.strerror}") from exc
        try:
            self._last = max(self._last, self._stored())
            nonce = self.next()
            self._store(nonce)
            yield nonce
        finally:
            await self._lock.release()

    def resync(self, ahead_s: float = 1.0) -> None:
        super().resync(ahead_s)
        self._store(self._last)

    def _stored(self) -> int:
        try:
            return int(self.path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _store(self, nonce: int) -> None:
        try:
            self.path.write_text(str(nonce))
        except OSError as exc:
            raise ConfigError(f"cannot write the nonce file {self.path}: {exc.strerror}") from exc
