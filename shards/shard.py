"""One shard as a pure state machine: its queue, its L2L negotiation, its blocks.

The machine takes events (a transaction submitted, an L2L request received,
another shard's block become final, a block timer fired) and returns what to
do (requests to send, a block to put to the committee). It never does I/O,
never reads a clock and draws no random numbers: time comes in as ``now``.
The simulator and the node are its drivers.

Building a block: acquires of accounts released to this shard first (so this
block's transactions may use them), then open transactions, then enclave and
mixed ones (their GAS-3 charge depends on the open ones), then the releases
the shard granted, then the borrowed accounts it returns to their home shard
(placements with homes only, see ``shards.placement``). Every transaction runs against the public ledger with its
predecessors' effects applied; the ledger is rolled back afterwards, because
the block becomes part of it only once the committee has signed it.

What the machine decides it returns: every event that can refuse something
returns the list of ``Rejection``s it made (empty: none), and ``build`` a
``Built``. The driver counts and reports them, and since a refused
transaction's nonce is void for every shard (so its sender's later ones can
go on), tells the other machines with ``void_nonce``. The live shards (SH-2)
are the driver's decision too, handed over with ``set_live``. The machine
keeps its own copies of both: it shares no mutable collection with a driver.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sagachain.core.block import (
    AcquireEntry,
    Block,
    BlockHeader,
    DeployEntry,
    EnclaveEntry,
    Entry,
    EntryRef,
    Head,
    MixedEntry,
    OpenEntry,
    ReleaseEntry,
    RollbackEntry,
    BreakawayEntry,
    body_hash,
)
from sagachain.core.ledger import ChainState
from sagachain.core.objects import ShardRecord, StoredObject, committee_hash
from sagachain.core.rules.classes import class_problems
from sagachain.core.rules.formulas import gas_3_charge, gas_3_floor, mint_3_allowance
from sagachain.core.rules.tools import Tools
from sagachain.core.tx import OPEN, Transaction
from sagachain.errors import RuleViolation
from shards.admission import admission_problem
from shards.enclave_store import EnclaveStore
from shards.execution import Outcome, execute, kind_of
from shards.placement import LookAhead, Placement, Queued, needs
from shards.shard_events import Built, Proposal, Rejection, Request


@dataclass
class ShardMachine:
    record: ShardRecord
    chain: ChainState
    store: EnclaveStore | None = None
    placement: Placement = field(default_factory=LookAhead)
    max_txs: int = 64
    request_retry: int = 2_000
    height: int = 0
    parent: bytes = b""
    queue: deque[Queued] = field(default_factory=deque)
    incoming: dict[bytes, tuple[EntryRef, bytes]] = field(default_factory=dict)
    grants: dict[bytes, str] = field(default_factory=dict)
    asked: dict[bytes, int] = field(default_factory=dict)
    heads: dict[str, int] = field(default_factory=dict)
    deploys: list[DeployEntry] = field(default_factory=list)
    specials: list[Entry] = field(default_factory=list)
    borrowed: set[bytes] = field(default_factory=set)  # accounts acquired here whose home is elsewhere
    live: frozenset[str] | None = None  # shards accepting accounts (SH-2), as the driver last set them; None: all
    void: dict[bytes, set[int]] = field(default_factory=dict, init=False)  # refused nonces per sender: its own, and those the driver tells it of

    def __post_init__(self) -> None:
        if not self.parent:
            self.parent = self.chain.genesis_hash

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def enclave(self) -> str | None:
        return self.record.enclave

    # -- events ------------------------------------------------------------------

    def submit(self, tx: Transaction, now: int, tools: Tools) -> list[Rejection]:
        """Queue a transaction, or refuse it at once with the rule it cannot pass: the node's
        admission (``shards.admission``, TX-1 and the dispatch checks), then the shard's own."""
        problem = admission_problem(self.chain, tools, tx)
        if problem is not None:
            return [self._refuse(Rejection(problem[0], problem[1], tx))]
        kind, enclave = kind_of(self.chain, tx)
        if kind != OPEN and enclave != self.enclave:
            return [self._refuse(Rejection("CMI-2", f"{kind} transaction of enclave {enclave} sent to shard {self.id}", tx))]
        self.queue.append(Queued(tx, now, kind))
        return []

    def submit_deploy(self, entry: DeployEntry, tools: Tools) -> list[Rejection]:
        """CLS-1, CLS-3: deploy a class in the next block if the rules allow it."""
        problems = list(class_problems(self.chain, entry.cls, tools))
        bound = entry.cls.enclave or (self.chain.class_enclave(entry.cls.base) if entry.cls.base else None)
        if bound is not None and bound != self.enclave:
            problems.append(("CMI-2", f"class {entry.cls.name} is bound to {bound}; deploy it on that enclave's shards"))
        if problems:
            rule_id, reason = problems[0]
            return [Rejection(rule_id, reason)]
        self.deploys.append(entry)
        return []

    def on_request(self, request: Request) -> list[Rejection]:
        """L2L-1, L2L-2, L2L-4: grant a valid request, ignore an invalid one (refusing what a rule forbids)."""
        account = request.account
        enclave = self.chain.account_enclave(account)
        if enclave is not None and self.chain.shard_enclave(request.requester) != enclave:
            return [Rejection("L2L-2", f"{request.requester} asked for enclave account of {enclave}; ignored")]
        if not self.chain.shard_active(request.requester):
            return [Rejection("L2L-4", f"{request.requester} belongs to an ended enclave; no accounts for it")]
        if not self.chain.owns(self.id, account) or account in self.grants:
            return []
        if enclave is not None and enclave != self.enclave:
            return []  # taken against L2L-2 by a misbehaving committee: this shard holds no state to release
        if self.placement.grant(account, request.priority, self._runnable()):
            self.grants[account] = request.requester
        return []

    def set_live(self, shards: frozenset[str]) -> None:
        """SH-2: the driver's scaler changed which shards accept accounts; borrowed ones go home among these."""
        self.live = shards

    def void_nonce(self, sender: bytes, nonce: int) -> None:
        """Another shard refused the sender's transaction with this nonce: its later ones may go on here too."""
        self.void.setdefault(sender, set()).add(nonce)

    def on_final(self, block: Block) -> None:
        """A block the ledger honoured: learn heads, releases to this shard, own progress."""
        self.heads[block.shard] = max(self.heads.get(block.shard, 0), block.height)
        if block.shard == self.id:
            self.height, self.parent = block.height, block.hash
            for entry in block.entries:
                if isinstance(entry, AcquireEntry):
                    self.borrowed.add(entry.account)
                    self.incoming.pop(entry.account, None)
                elif isinstance(entry, ReleaseEntry):
                    self.borrowed.discard(entry.account)
                    self.grants.pop(entry.account, None)
        for index, entry in enumerate(block.entries):
            if isinstance(entry, ReleaseEntry) and entry.to_shard == self.id:
                ref = EntryRef(shard=block.shard, height=block.height, index=index)
                self.incoming[entry.account] = (ref, entry.state_hash)
                self.asked.pop(entry.account, None)

    def forget_final(self) -> None:
        """Drop queued transactions that are on chain now, wherever they ran: in a committee
        every member queues every transaction, and only the proposer's build removes them
        from its own queue; a node may also have handed one to two shards as accounts moved."""
        if self.queue:
            seen = self.chain.seen_tx
            self.queue = deque(q for q in self.queue if q.tx.id not in seen)

    def on_rejected(self, proposal: Proposal) -> None:
        """Our own proposal failed validation (it raced a block that became final first):
        take its work back, so no transaction, acquire or operator action is lost."""
        self.queue.extendleft(reversed(proposal.included))
        for index, entry in enumerate(proposal.block.entries):
            if isinstance(entry, AcquireEntry):
                self.incoming[entry.account] = (entry.release, entry.state_hash)
            elif isinstance(entry, DeployEntry):
                self.deploys.append(entry)
            elif isinstance(entry, RollbackEntry | BreakawayEntry):
                self.specials.append(entry)

    def on_own_ignored(self, block: Block) -> None:
        """The chain ignores this shard's block; the shard itself still built on it."""
        self.height, self.parent = block.height, block.hash

    def requests(self, now: int) -> list[tuple[str, Request]]:
        """Requests to send now for accounts the queue needs (L2L-1 look-ahead)."""
        owned = frozenset(a for a in self._queue_accounts() if self.chain.owns(self.id, a))
        out = []
        for account, priority in self.placement.wanted(self._runnable(), owned):
            if account in self.incoming or now - self.asked.get(account, -self.request_retry) < self.request_retry:
                continue
            transit = self.chain.transit.get(account)
            owner = transit.to_shard if transit else self.chain.owner.get(account)
            if owner is None or owner == self.id:
                continue
            self.asked[account] = now
            out.append((owner, Request(account, self.id, priority)))
        return out

    def drain(self, destination: Callable[[bytes], str]) -> list[Queued]:
        """SH-2, retiring this shard: grant every account it owns to ``destination(account)``
        and hand back its queue for the driver to route elsewhere. Accounts still
        arriving are acquired in the next block and granted onward by the next drain."""
        for account, owner in sorted(self.chain.owner.items()):
            if owner == self.id and self.chain.owns(self.id, account) and account not in self.grants:
                self.grants[account] = destination(account)
        queued, self.queue = list(self.queue), deque()
        return queued

    def holds_nothing(self) -> bool:
        """No account owned or arriving, nothing queued or granted: a drained shard."""
        return not self.queue and not self.incoming and not self.grants and self.id not in self.chain.owner.values()

    def _runnable(self) -> list[Queued]:
        """Queued transactions whose sender's nonce is next: only these compete for accounts.

        A transaction waiting for an earlier nonce of its sender (queued on
        another shard, maybe) must neither hold nor ask for accounts, or the two
        shards could each wait for the other forever.
        """
        return [q for q in self.queue if q.tx.nonce == self.next_nonce(q.tx.sender)]

    def _queue_accounts(self) -> set[bytes]:
        return {a for q in self.queue for a in (*q.tx.account_ids(), q.tx.gas_payer)}

    # -- building ----------------------------------------------------------------

    def build(self, now: int, producer: bytes) -> Built:
        """Build the next block (no proposal when there is nothing to put in one), refusing
        queued transactions that break a rule when they run."""
        refused: list[Rejection] = []
        self.chain.begin()
        try:
            return Built(self._build(now, producer, [], refused), refused)
        finally:
            self.chain.rollback()

    def _build(self, now: int, producer: bytes, entries: list[Entry], refused: list[Rejection]) -> Proposal | None:
        chain = self.chain
        height = self.height + 1
        draft = _DraftBlock(self.id, height)
        for account, (ref, state_hash) in sorted(self.incoming.items()):
            if not self._state_arrived(account, state_hash):
                continue  # an enclave account whose off-chain state has not reached this shard yet
            entries.append(AcquireEntry(account=account, release=ref, state_hash=state_hash))
            chain.apply_entry(draft, len(entries) - 1, entries[-1])
            del self.incoming[account]
        for deploy in self.deploys:
            entries.append(deploy)
            chain.apply_entry(draft, len(entries) - 1, deploy)
        self.deploys.clear()
        basis = tuple(Head(shard=s, height=h) for s, h in sorted(self.heads.items()) if h > 0)
        floor = gas_3_floor(chain, basis)
        store = self.store.copy() if self.store is not None else None
        included: list[Queued] = []
        open_gas: list[int] = []
        snapshots: dict[EntryRef, dict[bytes, dict[bytes, StoredObject]]] = {}
        enclave_writes: dict[bytes, StoredObject | None] = {}
        for opens in (True, False):
            for item in list(self.queue):
                if len(included) >= self.max_txs:
                    break
                if (item.kind == OPEN) != opens or not self._ready(item.tx):
                    continue
                charge = None if opens else gas_3_charge(floor, open_gas)
                try:
                    outcome = execute(chain, self.id, item.tx, store=store, enclave_charge=charge, time=now)
                except RuleViolation as exc:
                    self.queue.remove(item)
                    refused.append(self._refuse(Rejection(exc.rule or "", exc.message, item.tx)))
                    continue
                self.queue.remove(item)
                included.append(item)
                entries.append(outcome.entry)
                chain.apply_entry(draft, len(entries) - 1, outcome.entry)
                if isinstance(outcome.entry, OpenEntry):
                    open_gas.append(outcome.entry.gas_used)
                else:
                    self._keep_enclave(outcome, store, enclave_writes, snapshots, EntryRef(shard=self.id, height=height, index=len(entries) - 1))
        for special in self.specials:
            entries.append(special)
            chain.apply_entry(draft, len(entries) - 1, special)
            if isinstance(special, RollbackEntry) and store is not None:
                store.restore(special.to)  # so a release later in this block hashes the rolled-back state
        self.specials.clear()
        released = set()
        for account, to_shard in sorted(self.grants.items()):
            if chain.owns(self.id, account) and chain.shard_active(to_shard):  # not into an enclave that just ended
                entries.append(self._release(account, to_shard, store))
                released.add(account)
        self.grants.clear()
        entries.extend(self._returns(store, released))
        if not entries:
            return None
        block = self._seal(now, producer, height, entries, basis, floor)
        return Proposal(block, enclave_writes, snapshots, included)

    def _returns(self, store: EnclaveStore | None, released: set[bytes]) -> list[ReleaseEntry]:
        """Borrowed accounts no queued transaction needs go back to their home shard (if the placement has homes)."""
        needed = {a for q in self._runnable() for a in needs(q.tx)} | released
        out = []
        for account in sorted(self.borrowed):
            home = self.placement.home(account, self.chain, self.live if self.live is not None else self.chain.shards)
            if home is None or home == self.id:
                self.borrowed.discard(account)
            elif account not in needed and self.chain.owns(self.id, account):
                out.append(self._release(account, home, store))
        return out

    def _state_arrived(self, account: bytes, state_hash: bytes) -> bool:
        """An enclave account is acquired only once this shard's replica of the enclave's
        off-chain state matches the hash its release published (TX-3, L2L-1)."""
        if self.store is None or self.chain.account_enclave(account) is None:
            return True
        return self.store.account_hash(account) == state_hash

    def _refuse(self, rejection: Rejection) -> Rejection:
        """A refused transaction's nonce becomes void here at once, so the sender's later ones can go on."""
        assert rejection.tx is not None
        self.void_nonce(rejection.tx.sender, rejection.tx.nonce)
        return rejection

    def next_nonce(self, sender: bytes) -> int:
        """The sender's next nonce: one past the last on chain, skipping nonces of refused transactions.

        TX-1 asks only that a nonce be fresh (above the last one on chain);
        keeping each sender's transactions in nonce order is what stops a later
        one, run first on another shard, from making an earlier one stale.
        """
        nonce = self.chain.nonces.get(sender, 0) + 1
        void = self.void.get(sender, ())
        while nonce in void:
            nonce += 1
        return nonce

    def _ready(self, tx: Transaction) -> bool:
        """All accounts co-resident here (L2L-1) and the sender's next nonce in sequence."""
        accounts = (*tx.account_ids(), tx.gas_payer)
        return all(self.chain.owns(self.id, a) for a in accounts) and tx.nonce == self.next_nonce(tx.sender)

    def _keep_enclave(
        self,
        outcome: Outcome,
        store: EnclaveStore | None,
        writes: dict[bytes, StoredObject | None],
        snapshots: dict[EntryRef, dict[bytes, dict[bytes, StoredObject]]],
        ref: EntryRef,
    ) -> None:
        """Keep an enclave transaction's off-chain writes, and its output state for TX-7."""
        assert store is not None
        store.write(outcome.enclave_writes)
        writes.update(outcome.enclave_writes)
        accounts = sorted(a for a in outcome.entry.tx.account_ids() if self.chain.account_enclave(a) == self.enclave)
        snapshots[ref] = {a: store.objects_of(a) for a in accounts}

    def _release(self, account: bytes, to_shard: str, store: EnclaveStore | None) -> ReleaseEntry:
        if self.chain.account_enclave(account) is not None:
            assert store is not None
            state_hash = store.account_hash(account)
        else:
            state_hash = self.chain.public_state_hash(account)
        return ReleaseEntry(account=account, to_shard=to_shard, state_hash=state_hash, nonce=self.chain.nonces.get(account, 0))

    def committee(self) -> tuple[bytes, ...]:
        """Who signs this shard's next block: the genesis committee, or for an enclave shard
        the roster's seats as its last block could see them (MEM-1, ``ChainState.committee_at``)."""
        return self.chain.committee_at(self.id, self.height + 1)[0]

    def _seal(self, now: int, producer: bytes, height: int, entries: list[Entry], basis: tuple[Head, ...], floor: int) -> Block:
        txs = [e for e in entries if isinstance(e, OpenEntry | EnclaveEntry | MixedEntry)]
        header = BlockHeader(
            chain=self.chain.genesis_hash,
            shard=self.id,
            height=height,
            parent=self.parent,
            time=now,
            producer=producer,
            committee=committee_hash(self.id, self.committee()),
            body=body_hash(entries),
            gas_floor=floor,
            gas_basis=basis,
            coinbase=mint_3_allowance(self.chain.params, self.record.is_enclave, entries),
            fees=sum(e.fee for e in txs),
            tax=sum(e.tax for e in txs),
        )
        return Block(header=header, entries=tuple(entries), qc=())

    # -- special entries scheduled by the enclave's operators --------------------

    def rollback(self, accounts: list[bytes], to: EntryRef, state_hash: bytes) -> None:
        """TX-7: schedule the replacement of the accounts' state hash by an earlier one."""
        self.specials.append(RollbackEntry(accounts=tuple(sorted(accounts)), to=to, state_hash=state_hash))

    def breakaway(self, reason: str) -> None:
        """LIFE-1: schedule this enclave shard's declaration that it leaves the chain."""
        assert self.enclave is not None
        self.specials.append(BreakawayEntry(enclave=self.enclave, reason=reason))


@dataclass(frozen=True)
class _DraftBlock:
    """Enough of a block for ChainState.apply_entry while the block is being built."""

    shard: str
    height: int
