"""How a private request proves who sent it: the API credentials, the nonce that
makes each request unique, and Kraken's API-Sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from core.domain.clock import Clock, SystemClock
from core.domain.errors import ConfigError

KEY_ENV = "TG_KRAKEN_API_KEY"
SECRET_ENV = "TG_KRAKEN_API_SECRET"
KEY_FILE_ENV = "TG_KRAKEN_KEY_FILE"

_US_PER_S = 1_000_000


def sign(url_path: str, nonce: str, postdata: str | bytes, secret_b64: str) -> str:
    """Kraken's API-Sign: base64(HMAC-SHA512(secret, path + SHA256(nonce + body)))."""
    body = postdata.encode() if isinstance(postdata, str) else postdata
    digest = hashlib.sha256(nonce.encode() + body).digest()
    mac = hmac.new(base64.b64decode(secret_b64), url_path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


@dataclass(frozen=True, repr=False)
class Credentials:
    """A Kraken API key and its base64 secret. Neither shows in repr or str."""

    api_key: str
    api_secret: str

    def __post_init__(self) -> None:
        if not self.api_key or not self.api_secret:
            raise ConfigError(f"the Kraken API key or secret is empty; set {KEY_ENV} and {SECRET_ENV}")
        try:
            base64.b64decode(self.api_secret, validate=True)
        except binascii.Error as exc:
            raise ConfigError(
                "the Kraken API secret is not valid base64; copy the private key exactly as "
                f"Kraken issued it into {SECRET_ENV} (or the key file)"
            ) from exc

    def __repr__(self) -> str:
        return f"Credentials(api_key={self.api_key[:4]}…)"

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Credentials | None:
        """Credentials from TG_KRAKEN_API_KEY/SECRET or the TG_KRAKEN_KEY_FILE file;
        None when none of them is set (public calls only)."""
        key = environ.get(KEY_ENV) or None
        secret = environ.get(SECRET_ENV) or None
        key_file = environ.get(KEY_FILE_ENV) or None
        if key_file is not None:
            if key is not None or secret is not None:
                raise ConfigError(
                    f"both {KEY_FILE_ENV} and {KEY_ENV}/{SECRET_ENV} are set; unset one so it is "
                    "clear which Kraken key tg trades with"
                )
            return cls._from_file(Path(key_file))
        if key is None and secret is None:
            return None
        if key is None or secret is None:
            missing, present = (KEY_ENV, SECRET_ENV) if key is None else (SECRET_ENV, KEY_ENV)
            raise ConfigError(f"{present} is set but {missing} is not; set both")
        return cls(api_key=key, api_secret=secret)

    @classmethod
    def _from_file(cls, path: Path) -> Credentials:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & ~0o600:
                raise ConfigError(
                    f"key file {path} has mode {mode:04o}, readable beyond its owner; run `chmod 600 {path}`"
                )
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as exc:
            raise ConfigError(f"cannot read key file {path} ({KEY_FILE_ENV}): {exc.strerror}") from exc
        except UnicodeDecodeError:  # no detail: the bytes may be the secret's
            raise ConfigError(
                f"key file {path} ({KEY_FILE_ENV}) is not UTF-8 text: the API key, then the secret"
            ) from None
        if len(lines) != 2:
            raise ConfigError(
                f"key file {path} must hold exactly two lines, the API key then the secret; it holds {len(lines)}"
            )
        return cls(api_key=lines[0], api_secret=lines[1])


class NonceSource:
    """Strictly increasing nonces: wall-clock microseconds, never below the last + 1.

    Synchronous on purpose: within one event loop no two tasks can interleave inside
    next(), so no lock is needed. Being wall-clock based, a restarted process starts
    above the nonces of the previous one (unless that one ran ahead by resync()).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock if clock is not None else SystemClock()
        self._last = 0

    def _now_us(self) -> int:
        return int(self._clock.time() * _US_PER_S)

    def next(self) -> int:
        self._last = max(self._last + 1, self._now_us())
        return self._last

    @asynccontextmanager
    async def reserved(self) -> AsyncIterator[int]:
        """A nonce for one request, held until the request is answered (the caller
        sends one private request at a time)."""
        yield self.next()

    def resync(self, ahead_s: float = 1.0) -> None:
        """Jump ahead after Kraken refused a nonce (another client with the same key,
        or a clock stepped back), so the next nonce clears whatever Kraken last saw."""
        self._last = max(self._last + 1, self._now_us() + int(ahead_s * _US_PER_S))
