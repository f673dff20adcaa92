"""WebSocket tokens, as GetWebSocketsToken hands them out: a token must be used within
15 minutes of its creation; once used it keeps working (Kraken: "the token does not
expire once a connection to a private channel is maintained"). A fault may revoke one
early (faults.py, token-expiry)."""

from __future__ import annotations

import secrets

from simulator.exceptions import InvalidToken
from simulator.exchange import Exchange
from simulator.models import WsToken

TOKEN_LIFETIME_S = 900
"""What GetWebSocketsToken answers in `expires`, and how long a token waits for first use."""


def issue(exchange: Exchange, account: str) -> str:
    now = exchange.now()
    token = secrets.token_urlsafe(32)
    exchange.state.ws_tokens[token] = WsToken(account=account, issued=now, expires=now + TOKEN_LIFETIME_S)
    return token


def redeem(exchange: Exchange, token: object) -> str:
    """The account `token` acts for, marking it used; InvalidToken if it does not work now."""
    found = exchange.state.ws_tokens.get(token) if isinstance(token, str) else None
    now = exchange.now()
    if (
        found is None
        or (found.revoked is not None and now >= found.revoked)
        or (not found.used and now > found.expires)
    ):
        raise InvalidToken()
    found.used = True
    return found.account


def revoke(exchange: Exchange, token: str, at: float) -> None:
    found = exchange.state.ws_tokens.get(token)
    if found is not None:
        found.revoked = at
