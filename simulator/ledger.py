"""The ledger: every change to a balance is posted here as an entry, so that Ledgers
and QueryLedgers tell the whole story of an account and its balances add up.

A trade posts two entries with the trade id as refid, one per asset it moved, the
fee on the entry of the asset it was charged in (`amount` is the gross movement,
`balance` what is left after amount and fee), as Kraken's ledger does. Opening an
account (at creation, at a reset) deposits its opening balances; `adjust` posts what
the control plane changes by hand. Ledger ids come from their own counter in the
state's id space, so posting entries never changes an order's serial (and so its fills).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from simulator.exceptions import InvalidArguments
from simulator.exchange_base import CLOSED_ORDERS_PAGE, ExchangeBase
from simulator.history import LedgerQuery
from simulator.models import Account, LedgerEntry, LedgerType, kraken_id

MAX_QUERIED = 20
"""QueryLedgers takes at most this many ids."""


class Ledger(ExchangeBase):
    def ledger_entries(self, account: str, query: LedgerQuery) -> tuple[list[LedgerEntry], int]:
        """One page of the account's entries, newest first, and how many match in all."""
        self.sync()
        wanted = query.offset + CLOSED_ORDERS_PAGE
        held = [e for e in reversed(self._state.ledger.values()) if e.account == account and query.matches(e)]
        kept, count = self._history.ledger(account, query, max(0, wanted - len(held)))
        return [*held, *kept][query.offset : wanted], count + len(held)

    def query_ledgers(self, account: str, ids: list[str]) -> list[LedgerEntry]:
        self.sync()
        if len(ids) > MAX_QUERIED:
            raise InvalidArguments("id")
        found = []
        for ledger_id in ids:
            entry = self._ledger_entry(ledger_id)
            if entry is None or entry.account != account:
                raise InvalidArguments("id")
            found.append(entry)
        return found

    def ledger_entry(self, ledger_id: str) -> LedgerEntry | None:
        return self._ledger_entry(ledger_id)

    def adjust(self, account: str, asset: str, amount: Decimal, kind: LedgerType = LedgerType.ADJUSTMENT) -> str:
        """Move `amount` of `asset` in or out of `account` by hand (a deposit, a
        withdrawal, an adjustment): the one way to change a balance outside a trade."""
        self.sync()
        return self._post(account, asset, amount, Decimal(0), kind, self._funding_ref(), self.now())

    def _open(self, account: str, balances: Mapping[str, Decimal], at: float) -> None:
        """Open (or reopen) `account` with `balances`, deposited at `at`."""
        self._state.accounts[account] = Account({})
        for asset, amount in balances.items():
            self._post(account, asset, amount, Decimal(0), LedgerType.DEPOSIT, self._funding_ref(), at)

    def _post(
        self, account: str, asset: str, amount: Decimal, fee: Decimal, kind: LedgerType, refid: str, at: float
    ) -> str:
        """Move `amount` of `asset` and charge `fee` on top; the new entry's id."""
        state = self._state
        balances = state.accounts[account].balances
        balance = balances.get(asset, Decimal(0)) + amount - fee
        balances[asset] = balance
        state.ledger_serial += 1
        entry = LedgerEntry(
            id=self._ledger_id("L", state.ledger_serial),
            refid=refid,
            account=account,
            time=at,
            type=kind,
            asset=asset,
            amount=amount,
            fee=fee,
            balance=balance,
        )
        state.ledger[entry.id] = entry
        return entry.id

    def _funding_ref(self) -> str:
        return self._ledger_id("Q", self._state.ledger_serial + 1)

    def _ledger_id(self, prefix: str, serial: int) -> str:
        space = self._state.id_space
        return kraken_id(prefix, self._state.seed, f"{space}:ledger:{serial}" if space else f"ledger:{serial}")
