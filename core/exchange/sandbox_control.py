"""The sandbox's control plane (/_sandbox/), spoken over HTTP like the Kraken API.

tg never imports the simulator: it drives it through this documented wire, so the
same code works with the embedded sandbox and with `tg sim serve`. Every request
carries `X-TG-Sandbox: 1`, the header a web page cannot forge without the sandbox's
approval (which it never gives), and, when the sandbox has a control token, the
token as `Authorization: Bearer ...`.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

import httpx

from core.domain.errors import ExchangeError, InputError
from core.exchange import ExchangeOrder
from core.exchange.account import ExchangeTruth
from core.exchange.transport import Sender

TOKEN_ENV = "TG_SANDBOX_TOKEN"
"""The control token of a sandbox served with one (`tg sim serve` reads it too)."""
MARKER_HEADER = "X-TG-Sandbox"


class SandboxControl:
    """tg's client of the control plane. `token` (None: TG_SANDBOX_TOKEN, if set) is
    sent as a bearer token; a sandbox without one ignores it."""

    def __init__(
        self, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None, token: str | None = None
    ) -> None:
        token = token or os.environ.get(TOKEN_ENV) or None
        headers = {MARKER_HEADER: "1"} | ({} if token is None else {"Authorization": f"Bearer {token}"})
        self._sender = Sender(base_url, transport=transport, timeout=30.0, headers=headers)
        self._orders: dict[str, tuple[dict[str, Any], ExchangeOrder]] = {}
        """Each order truth() read, with the wire object it was read from (see _order)."""

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def _call(self, method: str, path: str, data: dict[str, str] | None = None) -> Any:
        try:
            response = await self._sender.send(self._sender.build_request(method, f"/_sandbox/{path}", data=data))
            payload = json.loads(response.content, parse_float=Decimal)
        except (httpx.HTTPError, ValueError) as exc:
            raise ExchangeError(f"the sandbox's control plane did not answer /_sandbox/{path}: {exc}") from exc
        if payload.get("error"):
            message = "; ".join(payload["error"])
            if "Invalid arguments" in message:
                raise InputError(f"the sandbox refused {path}: {message}")
            raise ExchangeError(f"the sandbox refused {path}: {message}")
        return payload["result"]

    async def add_fault(self, spec: str) -> None:
        """Install one fault rule, `NAME` or `NAME:key=value,...`."""
        await self._call("POST", "faults", {"spec": spec})

    async def reset(self) -> None:
        """Opening balances, no orders, empty counters: a fresh exchange for the next run."""
        await self._call("POST", "reset")

    async def clear_faults(self) -> None:
        await self._call("DELETE", "faults")

    async def seed_faults(self, seed: int) -> None:
        await self._call("POST", "seed", {"seed": str(seed)})

    async def advance(self, seconds: float, *, brief_for: str | None = None) -> dict[str, Any]:
        """Move the sandbox's clock; its state comes back. With `brief_for` (a pair key)
        the state leaves out the orders but each account's `open_ids` (the txids of its
        open orders), and prices that pair alone: cheap enough to ask every candle of a
        replay, and all that its watch between decisions needs."""
        data = {"seconds": str(seconds)}
        if brief_for is not None:
            data |= {"orders": "false", "pairs": brief_for, "open_ids": "true"}
        return await self._call("POST", "advance", data)

    async def step(self, seconds: float) -> float:
        """Move the sandbox's clock and answer only its new time: for a caller that reads
        nothing else after the step (the sandbox skips building its state)."""
        answer = await self._call("POST", "advance", {"seconds": str(seconds), "state": "false"})
        return float(answer["time"])

    async def state(self, *, orders: bool = True, prices: bool = True) -> dict[str, Any]:
        """Time, prices, balances, counters and (unless `orders` is False) every order.
        Without `prices` the prices are left out: the sandbox reads one off each pair's
        market, the bulk of the answer's cost when only the counters are wanted."""
        query = ([] if orders else ["orders=false"]) + ([] if prices else ["pairs="])
        return await self._call("GET", "state" + ("?" + "&".join(query) if query else ""))

    async def fault_log(self) -> list[dict[str, Any]]:
        return (await self._call("GET", "fault-log"))["log"]

    async def truth(self) -> ExchangeTruth:
        """Every order and balance as the exchange holds them, unfaulted (one account)."""
        # no prices, and no open orders or recent trades besides the orders: none is read
        accounts = (await self._call("GET", "state?pairs=&open=false&trades=false"))["accounts"]
        if len(accounts) != 1:
            raise InputError(f"the sandbox holds {len(accounts)} accounts; tg checks one")
        [account] = accounts.values()
        return ExchangeTruth(
            orders={txid: self._order(txid, raw) for txid, raw in account["orders"].items()},
            balances={asset: Decimal(str(amount)) for asset, amount in account["balances"].items()},
        )

    def _order(self, txid: str, raw: dict[str, Any]) -> ExchangeOrder:
        """The order `raw` describes, parsed again only when it differs from what was read
        of it before: the truth lists every order ever placed, most of them settled long
        ago, and validating them all anew each time grew with the account's history."""
        kept = self._orders.get(txid)
        if kept is None or kept[0] != raw:
            kept = self._orders[txid] = (raw, ExchangeOrder.from_wire(txid, raw))
        return kept[1]
