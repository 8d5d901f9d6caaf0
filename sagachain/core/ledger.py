"""The public ledger: what anyone can know from genesis and the blocks.

``ChainState`` is the state a chain's public data defines: the public objects,
which shard owns which account (and which are in transit between shards), the
classes, the nonces used, the blocks seen per shard and the enclaves' status.
The auditor builds one from a chain file; the simulator keeps one as the
finalized chain. Both feed blocks through the same rule checks
(``sagachain.core.rules``) and then ``apply_block``.

Changes can be undone: validating a proposal applies it entry by entry (each
rule sees the state its entry runs on) and then rolls back, leaving the state
as it was. The undo log holds the old value of every key written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sagachain.core.block import (
    AcquireEntry,
    Block,
    BreakawayEntry,
    DeployEntry,
    EnclaveEntry,
    EntryRef,
    MixedEntry,
    ObjectUpdate,
    OpenEntry,
    ReleaseEntry,
    RollbackEntry,
)
from sagachain.core.genesis import Genesis, Params
from sagachain.core.objects import (
    BALANCE_FIELD,
    AccountRecord,
    ClassRecord,
    EnclaveRecord,
    NodeRecord,
    RuntimeRecord,
    ShardRecord,
    StoredObject,
    account_state_hash,
)
from sagachain.core.epoch_keys import KeySchedule
from sagachain.core.roster import (
    ROSTER_CLASS_ID,
    ROSTER_ENTRY_CLASS_ID,
    ROSTER_EPOCH_CLASS_ID,
    EpochRecord,
    RosterEntry,
    Seats,
    entry_of,
    epoch_id,
    epoch_of,
    head_of,
    read_rekey,
    roster_id,
    seats_of,
)

ACTIVE = "active"
TERMINATED = "terminated"
BROKEN_AWAY = "broken-away"


@dataclass(frozen=True, slots=True)
class Transit:
    """An account released by ``from_shard`` to ``to_shard`` and not yet acquired (L2L-1)."""

    release: EntryRef
    from_shard: str
    to_shard: str
    state_hash: bytes
    nonce: int


@dataclass(slots=True)
class BlockSummary:
    """What later rules need of a finalized block: GAS-3 window figures, rollback targets."""

    hash: bytes
    time: int
    open_gas: int
    open_count: int
    entries: tuple[Any, ...]
    cum_gas: int = 0  # open gas of this shard's blocks so far, this one included (GAS-3 windows by subtraction)
    cum_count: int = 0

    def window_figures(self) -> tuple[int, int]:
        return self.cum_gas, self.cum_count


@dataclass
class EnclaveStatus:
    state: str = ACTIVE
    since: tuple[str, int] | None = None  # (shard, height) of the block that ended it
    reason: str = ""


@dataclass
class Tallies:
    """Coin that left balances (fees) and coin minted (coinbases): MINT-5's two sides."""

    fees: int = 0
    tax: int = 0
    coinbase: int = 0
    payouts: dict[bytes, int] = field(default_factory=dict)


class ChainState:
    """The public state of a chain, built from genesis and applied blocks."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.genesis_hash = genesis.hash
        self.params: Params = genesis.params
        self.runtimes: dict[bytes, RuntimeRecord] = {r.id: r for r in genesis.runtimes}
        self.classes: dict[bytes, ClassRecord] = {c.id: c for c in genesis.classes}
        self.nodes: dict[bytes, NodeRecord] = {n.id: n for n in genesis.nodes}
        self.shards: dict[str, ShardRecord] = {s.id: s for s in genesis.shards}
        self.enclaves: dict[str, EnclaveRecord] = {e.id: e for e in genesis.enclaves}
        self.accounts: dict[bytes, AccountRecord] = {a.id: a for a in genesis.accounts}
        self.objects: dict[bytes, StoredObject] = {o.id: o.value for o in genesis.objects}
        self.objects_of: dict[bytes, set[bytes]] = defaultdict(set)
        for oid, obj in self.objects.items():
            self.objects_of[obj.owner].add(oid)
        self.owner: dict[bytes, str] = {a.id: a.shard for a in genesis.accounts}
        self.transit: dict[bytes, Transit] = {}
        self.nonces: dict[bytes, int] = {}
        self.seen_tx: set[bytes] = set()
        self.blocks: dict[tuple[str, int], BlockSummary] = {}
        self.heads: dict[str, int] = {s.id: 0 for s in genesis.shards}
        self.basis: dict[str, dict[str, int]] = {s.id: {} for s in genesis.shards}
        self.acquired: set[EntryRef] = set()
        self.status: dict[str, EnclaveStatus] = {e.id: EnclaveStatus() for e in genesis.enclaves}
        self.halted: dict[str, tuple[int, str]] = {}  # shard -> (height of its refused block, why): see ``halt``
        self.tallies = Tallies()
        self.supply = genesis.supply()
        self.circulating = self.supply
        self._undo: list[tuple[Any, Any, Any]] | None = None
        self.roster_enclaves: dict[bytes, str] = {roster_id(e.id): e.id for e in genesis.enclaves}
        self.seats: dict[str, tuple[Seats, ...]] = {}
        self.schedules: dict[str, KeySchedule] = {}  # each roster's public key schedule (MEM-3)
        for enclave in self.enclaves:
            seats = self._seats_now(enclave, "", 0)
            if seats is not None:
                self.seats[enclave] = (seats,)
                head = head_of(self.objects.get(roster_id(enclave)))
                assert head is not None
                self.schedules[enclave] = KeySchedule(enclave, head.strategy)
                self._advance_schedule(enclave, epoch_of(self.objects.get(epoch_id(enclave, 1))))

    # -- reading -----------------------------------------------------------

    def account_enclave(self, account: bytes) -> str | None:
        record = self.accounts.get(account)
        return record.enclave if record else None

    def class_enclave(self, class_id: bytes) -> str | None:
        """The enclave a class is bound to, through its own record or any base (CLS-3)."""
        seen: set[bytes] = set()
        cid: bytes | None = class_id
        while cid is not None and cid not in seen:
            seen.add(cid)
            record = self.classes.get(cid)
            if record is None:
                return None
            if record.enclave is not None:
                return record.enclave
            cid = record.base
        return None

    def shard_enclave(self, shard: str) -> str | None:
        record = self.shards.get(shard)
        return record.enclave if record else None

    def owns(self, shard: str, account: bytes) -> bool:
        """L2L-3: the shard owns the account and it is not in transit."""
        return self.owner.get(account) == shard and account not in self.transit

    def committee_at(self, shard: str, height: int) -> tuple[tuple[bytes, ...], dict[bytes, bytes]]:
        """The committee that signs ``shard``'s block at ``height`` (the next one: the shard's
        head is ``height - 1``), with each member's node key.

        A public shard's committee is the genesis one. An enclave shard's is the
        roster's seated MEMBERs (MEM-1) as of the latest roster change its parent
        block could see: on its own shard below ``height``, or within the heights
        its parent named in its gas basis. Fixing it by the parent means every
        member knows the committee before the first proposal at ``height``.
        """
        record = self.shards[shard]
        history = self.seats.get(record.enclave) if record.enclave else None
        if not history:
            return record.committee, {n: self.nodes[n].public_key for n in record.committee if n in self.nodes}
        seen = self.basis.get(shard, {})
        for seats in reversed(history):
            if seats.height == 0 or (seats.shard == shard and seats.height < height) or seats.height <= seen.get(seats.shard, 0):
                return seats.committees.get(shard, ()), seats.keys
        raise AssertionError("the genesis seats are always visible")

    def roster_entries(self, enclave: str) -> list[RosterEntry]:
        """Every entry on ``enclave``'s roster as the public state holds it now."""
        found = (entry_of(self.objects[oid]) for oid in self.objects_of.get(roster_id(enclave), ()))
        return sorted((e for e in found if e is not None), key=lambda e: e.node)

    def _seats_now(self, enclave: str, shard: str, height: int) -> Seats | None:
        head = head_of(self.objects.get(roster_id(enclave)))
        return seats_of(shard, height, head, self.roster_entries(enclave)) if head is not None else None

    def rosters_touched(self, updates: tuple[ObjectUpdate, ...]) -> list[str]:
        """The enclaves whose roster objects (head, entries, epochs) these updates write or delete."""
        touched = set()
        for update in updates:
            value = update.value if update.value is not None else self.objects.get(update.id)
            if value is not None and value.class_id in _ROSTER_CLASSES and value.owner in self.roster_enclaves:
                touched.add(self.roster_enclaves[value.owner])
        return sorted(touched)

    def rekey_problems(self, enclave: str, record: EpochRecord, change: tuple[str, bytes, bytes]) -> list[str]:
        """MEM-3: why ``record`` cannot start the next epoch of ``enclave`` for ``change`` (op, node,
        new key), judged from public data against the roster's key schedule."""
        rekey = read_rekey(record.rekey)
        if rekey is None:
            return [f"the key material of epoch {record.epoch} does not decode as a rekey"]
        op, node, key = change
        if (rekey.change.op, rekey.change.node, rekey.change.key) != (op, node, key):
            return [f"the key material of epoch {record.epoch} is for {rekey.change.op} of {rekey.change.node.hex()[:12]}, the roster change is {op} of {node.hex()[:12]}"]
        schedule = self.schedules.get(enclave)
        problem = schedule.problem(rekey) if schedule is not None else "the enclave has no key schedule"
        return [problem] if problem else []

    def _advance_schedule(self, enclave: str, record: EpochRecord | None) -> None:
        """Move the key schedule to the epoch ``record`` starts; material the rules refused
        (MEM-3, reported when the block was judged) leaves it where it was."""
        schedule = self.schedules.get(enclave)
        rekey = read_rekey(record.rekey) if record is not None else None
        if schedule is None or rekey is None or schedule.problem(rekey) is not None:
            return
        advanced = schedule.copy()
        advanced.apply(rekey)
        self._put(self.schedules, enclave, advanced)

    def _note_seats(self, enclave: str, block: Block) -> None:
        """Record the seats a roster change leaves, located at this block (see ``committee_at``)."""
        seats = self._seats_now(enclave, block.shard, block.height)
        if seats is not None:
            self._put(self.seats, enclave, (*self.seats.get(enclave, ()), seats))

    def enclave_active(self, enclave: str | None) -> bool:
        return enclave is None or self.status[enclave].state == ACTIVE

    def shard_active(self, shard: str) -> bool:
        return shard not in self.halted and self.enclave_active(self.shard_enclave(shard))

    def advances(self, shard: str) -> bool:
        """Whether ``shard`` can still get blocks honoured: not halted, its enclave (if any) not ended."""
        return shard in self.shards and self.shard_active(shard)

    def account_objects(self, account: bytes) -> dict[bytes, StoredObject]:
        return {oid: self.objects[oid] for oid in self.objects_of.get(account, ())}

    def public_state_hash(self, account: bytes) -> bytes:
        return account_state_hash(self.account_objects(account))

    def balance(self, account: bytes) -> int:
        return _coin(self.objects.get(account))

    def entry_at(self, ref: EntryRef) -> Any:
        summary = self.blocks.get((ref.shard, ref.height))
        if summary is None or not 0 <= ref.index < len(summary.entries):
            return None
        return summary.entries[ref.index]

    # -- undoable writes -----------------------------------------------------

    def begin(self) -> None:
        assert self._undo is None, "nested begin"
        self._undo = []

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        assert self._undo is not None, "rollback without begin"
        for container, key, old in reversed(self._undo):
            if old is _MISSING:
                if isinstance(container, set):
                    container.discard(key)
                else:
                    container.pop(key, None)
            elif isinstance(container, set):
                container.add(key)
            else:
                container[key] = old
        self._undo = None

    def _put(self, container: dict[Any, Any], key: Any, value: Any) -> None:
        if self._undo is not None:
            self._undo.append((container, key, container.get(key, _MISSING)))
        container[key] = value

    def _pop(self, container: dict[Any, Any], key: Any) -> None:
        if key in container:
            if self._undo is not None:
                self._undo.append((container, key, container[key]))
            del container[key]

    def _add(self, container: set[Any], key: Any) -> None:
        if key not in container:
            if self._undo is not None:
                self._undo.append((container, key, _MISSING))
            container.add(key)

    def _discard(self, container: set[Any], key: Any) -> None:
        if key in container:
            if self._undo is not None:
                self._undo.append((container, key, True))
            container.discard(key)

    def _set_attr(self, obj: Any, name: str, value: Any) -> None:
        self._put(obj.__dict__, name, value)

    # -- applying --------------------------------------------------------------

    def set_object(self, oid: bytes, value: StoredObject | None) -> None:
        old = self.objects.get(oid)
        delta = _coin(value) - _coin(old)
        if delta:
            self._put(self.__dict__, "circulating", self.circulating + delta)
        if old is not None:
            self._discard(self.objects_of[old.owner], oid)
        if value is None:
            self._pop(self.objects, oid)
            return
        self._put(self.objects, oid, value)
        if value.owner not in self.objects_of:
            self._put(self.objects_of, value.owner, set())
        self._add(self.objects_of[value.owner], oid)

    def debit_fee(self, payer: bytes, fee: int) -> None:
        obj = self.objects.get(payer)
        if obj is not None and fee:
            self.set_object(payer, obj.with_fields(**{BALANCE_FIELD: self.balance(payer) - fee}))

    def apply_updates(self, updates: tuple[ObjectUpdate, ...]) -> None:
        for update in updates:
            self.set_object(update.id, update.value)

    def apply_entry(self, block: Block, index: int, entry: Any) -> None:
        """Apply one entry's public effect (no checks; rules check before this runs)."""
        shard = block.shard
        if isinstance(entry, OpenEntry | EnclaveEntry | MixedEntry):
            tx = entry.tx
            self._add(self.seen_tx, tx.id)
            self._put(self.nonces, tx.sender, tx.nonce)
            self.debit_fee(tx.gas_payer, entry.fee)
            if not isinstance(entry, EnclaveEntry):
                rosters = self.rosters_touched(entry.updates) if self.roster_enclaves else []
                self.apply_updates(entry.updates)
                for enclave in rosters:
                    self._note_seats(enclave, block)
                    for update in entry.updates:
                        record = epoch_of(update.value)
                        if record is not None and update.id == epoch_id(enclave, record.epoch):
                            self._advance_schedule(enclave, record)
        elif isinstance(entry, ReleaseEntry):
            ref = EntryRef(shard=shard, height=block.height, index=index)
            self._put(self.transit, entry.account, Transit(ref, shard, entry.to_shard, entry.state_hash, entry.nonce))
        elif isinstance(entry, AcquireEntry):
            transit = self.transit.get(entry.account)
            self._pop(self.transit, entry.account)
            self._put(self.owner, entry.account, shard)
            self._add(self.acquired, entry.release)
            if transit is not None and transit.nonce > self.nonces.get(entry.account, 0):
                self._put(self.nonces, entry.account, transit.nonce)
        elif isinstance(entry, DeployEntry):
            self._put(self.classes, entry.cls.id, entry.cls)
        elif isinstance(entry, BreakawayEntry):
            self.end_enclave(entry.enclave, BROKEN_AWAY, (shard, block.height), entry.reason)
        elif isinstance(entry, RollbackEntry):
            pass  # TX-7: only the enclave's off-chain state changes; nothing public moves

    def end_enclave(self, enclave: str, state: str, where: tuple[str, int], reason: str) -> None:
        status = self.status.get(enclave)
        if status is None or status.state != ACTIVE:
            return
        self._set_attr(status, "state", state)
        self._set_attr(status, "since", where)
        self._set_attr(status, "reason", reason)

    def halt(self, shard: str, height: int, reason: str) -> None:
        """A final block of ``shard`` broke a rule and was refused: nothing after it is honoured.

        An honest committee never finalizes such a block, so its committee is
        faulty; every later block of the shard builds on the refused one.
        """
        if shard not in self.halted:
            self._put(self.halted, shard, (height, reason))

    def finish_block(self, block: Block) -> None:
        """Record the block itself: head, summary, coin tallies (after its entries)."""
        header = block.header
        opens = [e for e in block.entries if isinstance(e, OpenEntry)]
        open_gas = sum(e.gas_used for e in opens)
        last = self.blocks.get((block.shard, self.heads.get(block.shard, 0)))
        summary = BlockSummary(
            hash=block.hash,
            time=header.time,
            open_gas=open_gas,
            open_count=len(opens),
            entries=block.entries,
            cum_gas=(last.cum_gas if last else 0) + open_gas,
            cum_count=(last.cum_count if last else 0) + len(opens),
        )
        self._put(self.blocks, (block.shard, block.height), summary)
        self._put(self.heads, block.shard, block.height)
        self._put(self.basis, block.shard, {h.shard: h.height for h in header.gas_basis})
        t = self.tallies
        self._set_attr(t, "fees", t.fees + header.fees)
        self._set_attr(t, "tax", t.tax + header.tax)
        self._set_attr(t, "coinbase", t.coinbase + header.coinbase)
        producer_share = header.coinbase + header.fees - header.tax
        self._put(t.payouts, header.producer, t.payouts.get(header.producer, 0) + producer_share)
        self._put(t.payouts, self.params.foundation, t.payouts.get(self.params.foundation, 0) + header.tax)

    def cumulative_open(self, shard: str, height: int) -> tuple[int, int]:
        """Open gas and open transactions of ``shard``'s blocks 1..``height`` (those on chain)."""
        height = min(height, self.heads.get(shard, 0))
        summary = self.blocks.get((shard, height)) if height >= 1 else None
        return summary.window_figures() if summary else (0, 0)

    def apply_block(self, block: Block) -> None:
        for index, entry in enumerate(block.entries):
            self.apply_entry(block, index, entry)
        self.finish_block(block)


_ROSTER_CLASSES = (ROSTER_CLASS_ID, ROSTER_ENTRY_CLASS_ID, ROSTER_EPOCH_CLASS_ID)


def _coin(obj: StoredObject | None) -> int:
    return int(obj.fields.get(BALANCE_FIELD, 0) or 0) if obj is not None else 0


class _Missing:
    __slots__ = ()


_MISSING: Any = _Missing()
