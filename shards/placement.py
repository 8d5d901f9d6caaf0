"""Account placement for L2L-1: where transactions go, which accounts a leader asks for,
which requests an owner grants, and where an idle account returns.

Placement is a policy behind one small interface so that a researcher can
plug in another from a scenario file (``s.placement(MyStrategy())``). Three
come with the project:

- ``LookAhead`` is the negotiation SagaChain describes (SagaScale): a leader
  looks at the first transactions of its queue and asks the owners for the
  accounts they need; an owner grants a request unless one of its own queued
  transactions needs the account and is older (ties broken by transaction
  id), so the oldest transaction anywhere always makes progress. Accounts stay
  where they were last used.
- ``HashHome`` is the baseline without foresight: every account has a fixed
  home shard (a hash of its id), transactions go to their payer's home, a
  leader asks only for what the head of its queue needs, and a borrowed
  account goes back home as soon as no queued transaction needs it.
- ``Affinity`` learns homes from the workload: it keeps a networkx graph of
  which accounts recent final transactions touched together (a sliding
  window), finds its communities, and gives each community one home shard,
  so accounts used together live together.

Every strategy only reads public data (declared accounts of queued and final
transactions), and none draws random numbers: the same run places the same
accounts the same way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from itertools import combinations, islice
from typing import TYPE_CHECKING, Protocol

import networkx as nx

from sagachain.core.block import Block, EnclaveEntry, MixedEntry, OpenEntry
from sagachain.core.tx import Transaction

if TYPE_CHECKING:
    from sagachain.core.ledger import ChainState


@dataclass(frozen=True, slots=True, order=True)
class Priority:
    """Age of the transaction behind a request: older wins, then the lower id."""

    arrived: int
    tx_id: bytes


@dataclass(frozen=True, slots=True)
class Queued:
    """A transaction waiting in a shard's queue; ``kind`` (TX-2..TX-4) is fixed when it is queued."""

    tx: Transaction
    arrived: int
    kind: str = "open"

    @property
    def priority(self) -> Priority:
        return Priority(self.arrived, self.tx.id)


def needs(tx: Transaction) -> tuple[bytes, ...]:
    """Every account a transaction needs on its shard: the declared ones and the gas payer."""
    return (*tx.account_ids(), tx.gas_payer)


class Placement(Protocol):
    def wanted(self, queue: Sequence[Queued], owned: frozenset[bytes]) -> list[tuple[bytes, Priority]]:
        """Accounts to request for the queue, each with the priority of its neediest transaction."""
        ...

    def grant(self, account: bytes, requester: Priority, queue: Sequence[Queued]) -> bool:
        """Whether the owner releases ``account`` to a request of priority ``requester``."""
        ...

    def home(self, account: bytes, chain: ChainState, live: Collection[str]) -> str | None:
        """The shard ``account`` belongs on when idle (one of ``live``), or None if it stays where it is."""
        ...

    def observe(self, block: Block, chain: ChainState, live: Collection[str]) -> None:
        """Learn from a final block (the affinity strategy's window)."""
        ...


def _grant_oldest(account: bytes, requester: Priority, queue: Sequence[Queued], depth: int) -> bool:
    for item in islice(queue, depth):
        if account in needs(item.tx):
            return requester < item.priority
    return True


def _wanted(queue: Sequence[Queued], owned: frozenset[bytes], depth: int) -> list[tuple[bytes, Priority]]:
    best: dict[bytes, Priority] = {}
    for item in islice(queue, depth):
        for account in needs(item.tx):
            if account not in owned and (account not in best or item.priority < best[account]):
                best[account] = item.priority
    return sorted(best.items(), key=lambda kv: (kv[1], kv[0]))


def _hashed(account: bytes, shards: Sequence[str]) -> str:
    return shards[int.from_bytes(account[:8], "big") % len(shards)]


def home_shards(account: bytes, chain: ChainState, live: Collection[str]) -> list[str]:
    """Shards an account may call home: its enclave's (L2L-2), else the live public shards (SH-2)."""
    enclave = chain.account_enclave(account)
    return sorted(sid for sid, rec in chain.shards.items() if rec.enclave == enclave and chain.shard_active(sid) and sid in live)


@dataclass
class LookAhead:
    """SagaScale-style look-ahead negotiation over the first ``depth`` queued transactions."""

    depth: int = 32

    def wanted(self, queue: Sequence[Queued], owned: frozenset[bytes]) -> list[tuple[bytes, Priority]]:
        return _wanted(queue, owned, self.depth)

    def grant(self, account: bytes, requester: Priority, queue: Sequence[Queued]) -> bool:
        return _grant_oldest(account, requester, queue, self.depth)

    def home(self, account: bytes, chain: ChainState, live: Collection[str]) -> str | None:
        return None

    def observe(self, block: Block, chain: ChainState, live: Collection[str]) -> None:
        return None


@dataclass
class HashHome:
    """Fixed homes by hash; no look-ahead (only the head of the queue asks); borrowed accounts go home."""

    def wanted(self, queue: Sequence[Queued], owned: frozenset[bytes]) -> list[tuple[bytes, Priority]]:
        return _wanted(queue, owned, 1)

    def grant(self, account: bytes, requester: Priority, queue: Sequence[Queued]) -> bool:
        return _grant_oldest(account, requester, queue, 1)

    def home(self, account: bytes, chain: ChainState, live: Collection[str]) -> str | None:
        shards = home_shards(account, chain, live)
        return _hashed(account, shards) if shards else None

    def observe(self, block: Block, chain: ChainState, live: Collection[str]) -> None:
        return None


@dataclass
class Affinity:
    """Homes from communities of the co-access graph of the last ``window`` final transactions.

    Communities are recomputed every ``every`` final blocks with networkx's
    asynchronous label propagation on the weighted graph, with a fixed seed
    and nodes and edges fed in sorted order, so it is deterministic (sets of
    bytes would iterate in a per-process hash order, which is why the sorted
    copy of the graph matters). Communities are assigned largest first: to
    the shard where most of their members already live, unless that shard
    would carry more than half again its fair share, else to the least loaded
    shard. Staying put matters: every changed home is an account transfer. An
    account never seen yet falls back to its hash home.
    """

    window: int = 500
    every: int = 8
    depth: int = 32
    _recent: deque[tuple[bytes, ...]] = field(default_factory=deque)
    _homes: dict[bytes, str] = field(default_factory=dict)
    _seen_blocks: int = 0

    def wanted(self, queue: Sequence[Queued], owned: frozenset[bytes]) -> list[tuple[bytes, Priority]]:
        return _wanted(queue, owned, self.depth)

    def grant(self, account: bytes, requester: Priority, queue: Sequence[Queued]) -> bool:
        return _grant_oldest(account, requester, queue, self.depth)

    def home(self, account: bytes, chain: ChainState, live: Collection[str]) -> str | None:
        shards = home_shards(account, chain, live)
        if not shards:
            return None
        learned = self._homes.get(account)
        return learned if learned in shards else _hashed(account, shards)

    def observe(self, block: Block, chain: ChainState, live: Collection[str]) -> None:
        for entry in block.entries:
            if isinstance(entry, OpenEntry | EnclaveEntry | MixedEntry):
                self._recent.append(tuple(sorted(set(needs(entry.tx)))))
                if len(self._recent) > self.window:
                    self._recent.popleft()
        self._seen_blocks += 1
        if self._seen_blocks % self.every == 0:
            self._homes = self._assign(chain, live)

    def graph(self) -> nx.Graph:
        graph = nx.Graph()
        for accounts in self._recent:
            graph.add_nodes_from(accounts)
            for a, b in combinations(accounts, 2):
                weight = graph.edges[a, b]["weight"] + 1 if graph.has_edge(a, b) else 1
                graph.add_edge(a, b, weight=weight)
        return graph

    def _assign(self, chain: ChainState, live: Collection[str]) -> dict[bytes, str]:
        graph = self.graph()
        ordered = nx.Graph()
        ordered.add_nodes_from(sorted(graph.nodes))
        ordered.add_weighted_edges_from(sorted((min(a, b), max(a, b), d["weight"]) for a, b, d in graph.edges(data=True)))
        communities = sorted((sorted(c) for c in nx.community.asyn_lpa_communities(ordered, weight="weight", seed=0)), key=lambda c: (-len(c), c[0]))
        homes: dict[bytes, str] = {}
        load: dict[str, int] = {}
        for community in communities:
            for group, members in _by_home_set(community, chain, live).items():
                fair = sum(load.get(sid, 0) for sid in group) / len(group) + len(members)
                before = {sid: sum(1 for m in members if self._homes.get(m) == sid) for sid in group}
                # stay where most members already live unless that shard is over its fair share
                staying = [sid for sid in group if before[sid] and load.get(sid, 0) + len(members) <= fair * 1.5]
                target = max(staying, key=lambda sid: (before[sid], -load.get(sid, 0), sid)) if staying else min(group, key=lambda sid: (load.get(sid, 0), sid))
                load[target] = load.get(target, 0) + len(members)
                homes.update((m, target) for m in members)
        return homes


def _by_home_set(community: list[bytes], chain: ChainState, live: Collection[str]) -> dict[tuple[str, ...], list[bytes]]:
    """A community split by where its members may live (an enclave's shards, or the public ones)."""
    groups: dict[tuple[str, ...], list[bytes]] = {}
    for account in community:
        shards = tuple(home_shards(account, chain, live))
        if shards:
            groups.setdefault(shards, []).append(account)
    return groups
