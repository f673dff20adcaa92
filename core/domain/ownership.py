"""Which orders on an account are tg's: the client order id namespace of one tg database.

Several tg databases, other bots and people may trade one Kraken account. tg acts only
on what it placed, and it knows that from the order alone: every order it sends
carries a client order id (Kraken's cl_ord_id, long-UUID form) whose first twelve hex
digits are the install id of the database that sent it. An order outside that
namespace is foreign: reported, never adopted, cancelled, protected or flattened. A
database can take over another's namespace explicitly (`tg reconcile --adopt ID`),
for the day a database is lost.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from core.domain.enums import OrderRole
from core.domain.errors import InputError

INSTALL_ID_LENGTH = 12
_INSTALL_ID = re.compile(r"[0-9a-f]{12}")


def new_install_id() -> str:
    return secrets.token_hex(INSTALL_ID_LENGTH // 2)


def parse_install_id(text: str) -> str:
    """An install id as a user types it (case and dashes forgiven)."""
    cleaned = text.strip().lower().replace("-", "")
    if not _INSTALL_ID.fullmatch(cleaned):
        raise InputError(
            f"{text!r} is not a tg install id: twelve hex digits, as `tg reconcile` reports "
            "them (the first twelve of each tg order's client order id)"
        )
    return cleaned


def _prefix(install_id: str) -> str:
    return f"{install_id[:8]}-{install_id[8:12]}-"


_ROLE_DIGIT = {OrderRole.ENTRY: "8", OrderRole.STOP_LOSS: "9", OrderRole.TAKE_PROFIT: "a", OrderRole.CLOSE: "b"}
_ROLE_OF_DIGIT = {digit: role for role, digit in _ROLE_DIGIT.items()}


def role_of(cl_ord_id: str) -> OrderRole | None:
    """What a tg order is for, read from its client order id."""
    return _ROLE_OF_DIGIT.get(cl_ord_id[19:20].lower()) if install_id_of(cl_ord_id) else None


def install_id_of(cl_ord_id: str | None) -> str | None:
    """The install id a client order id was minted under, if it has tg's form."""
    if cl_ord_id is None or len(cl_ord_id) != 36 or cl_ord_id[8] != "-" or cl_ord_id[13] != "-":
        return None
    candidate = (cl_ord_id[:8] + cl_ord_id[9:13]).lower()
    return candidate if _INSTALL_ID.fullmatch(candidate) else None


@dataclass(frozen=True)
class OrderNamespace:
    """The ids this database mints (`install_id`) and the ones it owns: its own and any
    it adopted."""

    install_id: str
    adopted: frozenset[str] = frozenset()

    @classmethod
    def of(cls, install_id: str, adopted: Iterable[str] = ()) -> OrderNamespace:
        return cls(install_id, frozenset(adopted) - {install_id})

    def new_client_order_id(self, role: OrderRole) -> str:
        """A fresh cl_ord_id in this namespace: a version-4 UUID whose first groups are the
        install id, so Kraken accepts it and any tg can tell whose it is, and whose variant
        digit (one of the four a UUID allows) says what the order is for."""
        rest = secrets.token_hex(10)
        return f"{_prefix(self.install_id)}4{rest[:3]}-{_ROLE_DIGIT[role]}{rest[3:6]}-{rest[6:18]}"

    def owns(self, cl_ord_id: str | None) -> bool:
        found = install_id_of(cl_ord_id)
        return found is not None and (found == self.install_id or found in self.adopted)
