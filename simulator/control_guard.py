"""Who may drive the control plane (/_sandbox/): every rule in one place, checked by
the app before any control handler runs.

The control plane resets balances, moves time and installs faults without Kraken's
authentication, so two kinds of caller must be kept out: another machine reaching a
served sandbox, and a web page in the operator's browser that forges requests to
127.0.0.1 (a plain form POST, or DNS rebinding a name of its own onto 127.0.0.1).

- With a control token, every control request carries `Authorization: Bearer TOKEN`,
  from any address. Without one, only loopback clients are served, and only under a
  loopback Host name (localhost, 127.x.x.x, [::1]) or a name of the in-process app:
  a rebinding page's requests carry the page's own Host.
- A mutating request (any method but GET and HEAD) carries `X-TG-Sandbox: 1`. A page
  can send a custom header only after a CORS preflight, and the sandbox never
  approves one: it answers no Access-Control-Allow-* header at all.
- A request a browser marks as coming from elsewhere is refused: an Origin that is not
  the sandbox's own, or `Sec-Fetch-Site: cross-site` / `same-site`.

A refusal is Kraken's "EGeneral:Permission denied" (HTTP 403), with a short reason.
The Kraken API routes (/0/public, /0/private) are not concerned.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Collection
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from simulator.exceptions import PermissionDenied
from simulator.params import Request

PREFIX = "/_sandbox"
TOKEN_HEADER = "authorization"
MARKER_HEADER = "x-tg-sandbox"
"""`X-TG-Sandbox: 1`: the custom header that proves a mutating call is not a form post."""
SAFE_METHODS = frozenset({"GET", "HEAD"})
IN_PROCESS_HOSTS = frozenset({"sandbox.kraken"})
"""The Host the embedded harness (simulator/embedded.py) gives its in-process app. No
browser reaches an app behind httpx.ASGITransport; a served app does not accept it."""
MIN_TOKEN_LENGTH = 16
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ControlDenied(PermissionDenied):
    """A control request refused by the guard: answered with HTTP 403, as a refusal
    that no retry or other parameter can turn around."""

    status: ClassVar[int] = 403


def is_control_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def token_problem(token: str) -> str | None:
    """Why `token` cannot be a control token (None: it can); never quotes the token."""
    if len(token) < MIN_TOKEN_LENGTH:
        return f"the control token is {len(token)} characters; use at least {MIN_TOKEN_LENGTH}"
    if not all("!" <= c <= "~" for c in token):
        return "the control token must be printable ASCII without spaces, to travel in an HTTP header"
    return None


@dataclass(frozen=True, repr=False)
class ControlGuard:
    """The rules above for one app. `token` None: loopback only; `hosts`: Host names
    accepted besides loopback ones when there is no token. The token never shows in repr."""

    token: str | None = None
    hosts: Collection[str] = IN_PROCESS_HOSTS

    def __post_init__(self) -> None:
        if self.token is not None and (problem := token_problem(self.token)):
            raise ValueError(problem)

    def __repr__(self) -> str:
        return f"ControlGuard(token={'set' if self.token else 'none'}, hosts={sorted(self.hosts)})"

    def check(self, request: Request, client: str | None, *, page: bool = False) -> None:
        """Raise ControlDenied unless `request` may reach the control plane. `client` is
        the peer's address; None for a request with no network peer (held in hand).
        `page`: the web view's static page, which holds no data and which a browser
        loads without a bearer token (the page sends it, once typed in, on every call)."""
        headers = request.headers
        if not _same_origin(headers.get("origin"), headers.get("host")):
            raise ControlDenied("cross-origin")
        if headers.get("sec-fetch-site", "").strip().lower() in ("cross-site", "same-site"):
            raise ControlDenied("cross-site")
        if self.token is not None:
            if not page and not _bearer_matches(headers.get(TOKEN_HEADER), self.token):
                raise ControlDenied("control token")
        elif client is not None and not is_loopback_name(client):
            raise ControlDenied("loopback only")
        elif not self._host_allowed(headers.get("host")):
            raise ControlDenied("Host")
        if request.method not in SAFE_METHODS and headers.get(MARKER_HEADER, "").strip() != "1":
            raise ControlDenied("X-TG-Sandbox header")

    def _host_allowed(self, host: str | None) -> bool:
        # No browser omits Host, so a request without one is no rebinding page.
        if host is None:
            return True
        name = _split_host(host)[0]
        return name is not None and (is_loopback_name(name) or name in self.hosts)


@functools.lru_cache(maxsize=256)
def is_loopback_name(host: str) -> bool:
    """localhost or a loopback IP (127.0.0.0/8, ::1), bracketed or not. Cached: every
    control request asks it of the same few names, and parsing an address is not free."""
    name = host.strip().lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback


def _bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # compare_digest takes str of ASCII only: compare bytes, in constant time.
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode("ascii"))


def _split_host(host: str) -> tuple[str | None, int | None]:
    """A Host header's name (lower-cased, IPv6 without brackets) and port; (None, None)
    when it is malformed."""
    try:
        parts = urlsplit(f"//{host.strip()}")
        return parts.hostname, parts.port
    except ValueError:
        return None, None


def _same_origin(origin: str | None, host: str | None) -> bool:
    """Whether an Origin header (absent: not a cross-origin browser request) names the
    sandbox's own origin, the one its Host header gives."""
    if origin is None:
        return True
    if host is None:
        return False
    try:
        parts = urlsplit(origin.strip())
        origin_name, origin_port = parts.hostname, parts.port
    except ValueError:
        return False
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or origin_name is None or parts.path or parts.query or parts.username:
        return False
    host_name, host_port = _split_host(host)
    return (origin_name, origin_port or default) == (host_name, host_port or default)
