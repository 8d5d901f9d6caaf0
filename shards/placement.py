"""Account placement for L2L-1: which accounts a leader asks for, which requests an owner grants.

Placement is a policy behind one small interface so that a researcher can
plug in another (hash placement, affinity on a co-access graph) from a
scenario file. The default, ``LookAhead``, is the negotiation SagaChain
describes: a leader looks at the first transactions of its queue and asks the
owners for the accounts they need; an owner grants a request unless one of its
own queued transactions needs the account and is older (ties broken by
transaction id), so the oldest transaction anywhere always makes progress.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from dataclasses import dataclass
from typing import Protocol

from sagachain.core.tx import Transaction


@dataclass(frozen=True, slots=True, order=True)
class Priority:
    """Age of the transaction behind a request: older wins, then the lower id."""

    arrived: int
    tx_id: bytes


@dataclass(frozen=True, slots=True)
class Queued:
    tx: Transaction
    arrived: int

    @property
    def priority(self) -> Priority:
        return Priority(self.arrived, self.tx.id)


class Placement(Protocol):
    def wanted(self, queue: Sequence[Queued], owned: frozenset[bytes]) -> list[tuple[bytes, Priority]]:
        """Accounts to request for the queue, each with the priority of its neediest transaction."""
        ...

    def grant(self, account: bytes, requester: Priority, queue: Sequence[Queued]) -> bool:
        """Whether the owner releases ``account`` to a request of priority ``requester``."""
        ...


@dataclass(frozen=True)
class LookAhead:
    """SagaScale-style look-ahead negotiation over the first ``depth`` queued transactions."""

    depth: int = 32

    def wanted(self, queue: Sequence[Queued], owned: frozenset[bytes]) -> list[tuple[bytes, Priority]]:
        best: dict[bytes, Priority] = {}
        for item in islice(queue, self.depth):
            for account in (*item.tx.account_ids(), item.tx.gas_payer):
                if account not in owned and (account not in best or item.priority < best[account]):
                    best[account] = item.priority
        return sorted(best.items(), key=lambda kv: (kv[1], kv[0]))

    def grant(self, account: bytes, requester: Priority, queue: Sequence[Queued]) -> bool:
        for item in islice(queue, self.depth):
            if account in item.tx.account_ids() or account == item.tx.gas_payer:
                return requester < item.priority
        return True
