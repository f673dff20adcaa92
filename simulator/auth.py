"""Kraken's private-call authentication, checked the way Kraken checks it.

API-Sign = base64(HMAC-SHA512(key=base64decode(secret),
                              msg=urlpath + SHA256(nonce + postdata)))
over the exact bytes of the body. Checks run in Kraken's order: the key, then the
signature, then the nonce, which must exceed the last one accepted for that key, or
with a nonce window lie within it and be new (a missing or malformed nonce is refused
before the signature is looked at).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from simulator.exceptions import InvalidKey, InvalidNonce, InvalidSignature
from simulator.exchange import Exchange
from simulator.models import ApiKey
from simulator.params import Params, Request, body_params

_MAX_NONCE = 2**64 - 1


def sign(secret: str, urlpath: str, nonce: str, postdata: bytes) -> str:
    return base64.b64encode(_signature(secret, urlpath, nonce, postdata)).decode()


def _signature(secret: str, urlpath: str, nonce: str, postdata: bytes) -> bytes:
    digest = hashlib.sha256(nonce.encode() + postdata).digest()
    return hmac.digest(base64.b64decode(secret), urlpath.encode() + digest, "sha512")


def authenticate(exchange: Exchange, request: Request) -> tuple[ApiKey, Params]:
    """The key that signed `request` and the request's parameters; consumes the nonce."""
    key_name = request.headers.get("api-key")
    if not key_name:
        raise InvalidKey()
    api_key = exchange.api_key(key_name)
    params = body_params(request)
    nonce = _nonce(params)
    try:
        expected = _signature(api_key.secret, request.path, nonce, request.body)
        given = base64.b64decode(request.headers.get("api-sign", ""), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignature() from None
    if not hmac.compare_digest(expected, given):
        raise InvalidSignature()
    _consume_nonce(api_key, int(nonce))
    return api_key, params


def _consume_nonce(api_key: ApiKey, value: int) -> None:
    if value <= api_key.last_nonce:
        in_window = value > api_key.last_nonce - api_key.nonce_window
        if not in_window or value in api_key.recent_nonces:
            raise InvalidNonce()
    api_key.last_nonce = max(api_key.last_nonce, value)
    if api_key.nonce_window:
        floor = api_key.last_nonce - api_key.nonce_window
        api_key.recent_nonces = [n for n in (*api_key.recent_nonces, value) if n > floor]


def _nonce(params: Params) -> str:
    """The nonce as it was signed: the form value, or the JSON number's digits."""
    value = params.get("nonce")
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{1,20}", text) or int(text) > _MAX_NONCE:
        raise InvalidNonce()
    return text
