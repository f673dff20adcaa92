"""The independent judge of a served sandbox's account: ccxt, a client that shares no
code with tg, on its own API key of the account tg trades, and the checks that hold of
any account tg traded on, whatever the test did to it.

What each test asks beyond these (its foreign orders, its databases, its listings) it
asks itself, with the account as `look_through_ccxt` gets it.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ccxt

TG_KEY = "tgTestKey0123456789abcdef"
TG_SECRET = base64.b64encode(bytes(range(64))).decode()
JUDGE_KEY = "judgeCcxtKey0123456789"
"""ccxt signs with millisecond nonces, tg with microsecond ones: on one key tg's first
call would put ccxt's nonces behind for good. So the judge has its own key on the same
account, as a second API key on a real Kraken account would."""
JUDGE_SECRET = base64.b64encode(bytes(range(64, 128))).decode()
KEYS = [(TG_KEY, TG_SECRET), (JUDGE_KEY, JUDGE_SECRET)]
"""What the served sandbox is given: tg's key and the judge's, on its one account."""


def judge_client(url: str) -> ccxt.kraken:
    """ccxt's Kraken on the judge's key, pointed at the sandbox served at `url`."""
    import ccxt

    kraken = ccxt.kraken({"apiKey": JUDGE_KEY, "secret": JUDGE_SECRET, "enableRateLimit": False, "timeout": 10_000})
    kraken.urls["api"] = {"public": url, "private": url}
    return kraken


@dataclass(frozen=True)
class Seen:
    """One order on the account, as the exchange lists it."""

    txid: str
    cl_ord_id: str | None
    side: str
    ordertype: str
    volume: Decimal
    filled: Decimal
    price: Decimal
    status: str

    @classmethod
    def of(cls, txid: str, info: Mapping[str, Any]) -> Seen:
        """From Kraken's wire form of an order (OpenOrders, ClosedOrders)."""
        return cls(
            txid=txid,
            cl_ord_id=info.get("cl_ord_id") or None,
            side=info["descr"]["type"],
            ordertype=info["descr"]["ordertype"],
            volume=Decimal(info["vol"]),
            filled=Decimal(info["vol_exec"]),
            price=Decimal(info["descr"]["price"]),
            status=info["status"],
        )

    @property
    def live(self) -> bool:
        return self.status in ("open", "pending")

    @property
    def remaining(self) -> Decimal:
        return self.volume - self.filled

    def line(self) -> str:
        return (
            f"{self.txid} {self.side} {self.ordertype} {self.volume} filled {self.filled} "
            f"@ {self.price} {self.status} cl_ord_id={self.cl_ord_id}"
        )


@dataclass
class Account:
    btc: Decimal
    orders: dict[str, Seen]
    problems: list[str] = field(default_factory=list)
    """What the listing itself showed wrong (a txid listed twice)."""

    @classmethod
    def listed(cls, btc: Decimal, orders: Iterable[tuple[str, Mapping[str, Any]]]) -> Account:
        account = cls(btc, {})
        for txid, info in orders:
            if txid in account.orders:
                account.problems.append(f"txid {txid} listed twice")
            account.orders[txid] = Seen.of(txid, info)
        return account


def look_through_ccxt(judge: ccxt.kraken) -> Account:
    """The account as ccxt gets it from the served sandbox: the BTC balance, the open
    orders and every page of the closed ones (Kraken pages them by 50)."""
    btc = Decimal(judge.fetch_balance()["info"]["result"].get("XXBT", {}).get("balance", "0"))
    listed: list[tuple[str, Mapping[str, Any]]] = list(judge.private_post_openorders()["result"]["open"].items())
    offset, total = 0, None
    while total is None or offset < total:
        page = judge.private_post_closedorders({"ofs": offset})["result"]
        total = int(page["count"])
        if not page["closed"]:
            break
        listed += page["closed"].items()
        offset += len(page["closed"])
    return Account.listed(btc, listed)


# --- what holds of any account tg traded on ------------------------------------------


def net(orders: Iterable[Seen]) -> Decimal:
    """The BTC the orders bought, less what they sold."""
    return sum((o.filled if o.side == "buy" else -o.filled for o in orders), Decimal(0))


def repeated_client_ids(account: Account) -> list[str]:
    """The exchange accepts a client order id once: more is a retry placed twice."""
    ids = Counter(o.cl_ord_id for o in account.orders.values() if o.cl_ord_id)
    return [f"client order id {i} accepted {n} times" for i, n in sorted(ids.items()) if n > 1]


def cover(who: str, held: Decimal, orders: Sequence[Seen]) -> list[str]:
    """`who`'s live stop-losses among `orders` cover exactly the `held` BTC, and its
    live take-profits would sell no more than that."""
    live = [o for o in orders if o.live]
    stops = sum((o.remaining for o in live if o.ordertype.startswith("stop-loss")), Decimal(0))
    targets = sum((o.remaining for o in live if o.ordertype.startswith("take-profit")), Decimal(0))
    found = []
    if stops != held:
        found.append(f"{who} holds {held} BTC but its live stop-losses cover {stops}")
    if targets > held:
        found.append(f"{who} holds {held} BTC but its live take-profits would sell {targets}")
    return found
