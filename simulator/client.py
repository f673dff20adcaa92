"""The sandbox's own Python client of its control plane (/_sandbox/): what a test of
someone else's bot holds to reset the exchange, move its clock, shape its price and
install faults while the bot talks to the same sandbox as to Kraken.

Synchronous (httpx), as most bots' tests are; one method a route, named as in
docs/sandbox.md. It sends `X-TG-Sandbox: 1` on every call and, given a control token,
`Authorization: Bearer TOKEN`. A refusal raises ControlRefused with Kraken's strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from simulator.exceptions import ControlRefused
from simulator.faults import FaultRule

Json = dict[str, Any]
MARKER = {"X-TG-Sandbox": "1"}


@dataclass(frozen=True)
class AccountKeys:
    """One account's API key pair, as Kraken hands them out (the secret in base64)."""

    account: str
    key: str
    secret: str = field(repr=False)


class SandboxClient:
    """The control plane of the sandbox at `url` (http://127.0.0.1:PORT)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        headers = MARKER | ({} if token is None else {"Authorization": f"Bearer {token}"})
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, method: str, route: str, body: Json | None = None) -> Any:
        """One control route (`route` without the /_sandbox/ prefix); its result."""
        path = f"/_sandbox/{route}"
        try:
            if method == "GET" or (method == "DELETE" and body):
                response = self._http.request(method, path, params=body)
            else:
                response = self._http.request(method, path, json=body or {})
            payload = response.json()  # money travels as strings; numbers are times and counts
        except (httpx.HTTPError, ValueError) as exc:
            raise ControlRefused(route, [f"no answer from {self.url}: {exc}"], status=0) from exc
        if payload.get("error"):
            raise ControlRefused(route, list(payload["error"]), response.status_code)
        return payload["result"]

    # --- the exchange --------------------------------------------------------

    def reset(self) -> Json:
        """Opening balances, no orders, empty counters; fault rules stay, their log empties."""
        return self.call("POST", "reset")

    def state(self, *, orders: bool = True) -> Json:
        return self.call("GET", "state", None if orders else {"orders": "false"})

    def advance(self, seconds: float) -> Json:
        """Move the exchange's clock; stops, targets and limits fill on the way."""
        return self.call("POST", "advance", {"seconds": seconds})

    def clock(self) -> Json:
        return self.call("GET", "clock")

    def freeze(self) -> Json:
        """Stop the clock: nothing moves but by `advance`."""
        return self.call("POST", "clock", {"frozen": True})

    def release(self) -> Json:
        """Let a frozen clock run with the wall clock again."""
        return self.call("POST", "clock", {"frozen": False})

    def set_balances(self, balances: dict[str, Decimal | str | int], *, account: str = "default") -> Json:
        return self.call("POST", "balances", {"account": account, "balances": _amounts(balances)})

    def add_account(self, account: str, balances: dict[str, Decimal | str | int] | None = None) -> AccountKeys:
        body: Json = {"account": account} | ({} if balances is None else {"balances": _amounts(balances)})
        made = self.call("POST", "accounts", body)
        return AccountKeys(made["account"], made["key"], made["secret"])

    def accounts(self) -> dict[str, list[str]]:
        """Each account's API keys (never a secret)."""
        return self.call("GET", "accounts")["accounts"]

    def shape_price(
        self,
        shape: str,
        *,
        pair: str | None = None,
        pct: Decimal | str | float = 0,
        over: float = 0,
        recover: float | None = None,
        after: float = 0,
    ) -> Json:
        """Lay a price shape over the market (jump, trend, flat, flash-crash)."""
        body: Json = {"shape": shape, "pct": str(pct), "over": over, "after": after}
        body |= {} if pair is None else {"pair": pair}
        body |= {} if recover is None else {"recover": recover}
        return self.call("POST", "price", body)

    def fill(self, txid: str, *, volume: Decimal | str | None = None, price: Decimal | str | None = None) -> Json:
        """Fill a live order now, wholly or `volume` of it; the order comes back."""
        body: Json = {"txid": txid}
        body |= {} if volume is None else {"volume": str(volume)}
        body |= {} if price is None else {"price": str(price)}
        return self.call("POST", "fill", body)[txid]

    def load_scenario(self, toml: str) -> Json:
        """Schedule a scenario (TOML text, simulator.scenario) on the clock from now."""
        return self.call("POST", "scenario", {"toml": toml})

    # --- faults --------------------------------------------------------------

    def add_fault(self, *rules: str | FaultRule | Json) -> list[int]:
        """Install rules (`NAME:key=value,...` specs, FaultRule or plain objects); their ids."""
        given = [r.model_dump(mode="json") if isinstance(r, FaultRule) else r for r in rules]
        return self.call("POST", "faults", {"rules": given})["added"]

    def faults(self) -> list[Json]:
        return self.call("GET", "faults")["rules"]

    def remove_fault(self, rule_id: int) -> list[Json]:
        return self.call("DELETE", "faults", {"id": rule_id})["rules"]

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def seed_faults(self, seed: int) -> None:
        self.call("POST", "seed", {"seed": seed})

    def fault_log(self) -> list[Json]:
        return self.call("GET", "fault-log")["log"]


def _amounts(balances: dict[str, Decimal | str | int]) -> dict[str, str]:
    return {asset: str(amount) for asset, amount in balances.items()}
