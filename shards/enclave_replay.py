"""TX-6 for enclave nodes: re-execute an enclave's transactions on its off-chain state.

A node outside an enclave can check only that the enclave's blocks are
well-formed; an enclave node (a committee member, or an auditor given the
enclave's sealed initial state and its key) also checks both hashes of every
enclave and mixed entry (TX-3, TX-4): the output state hash of the enclave
accounts and the output log hash, and the public updates of a mixed entry.
A member runs this on a proposal before it votes (``ChainView.check_proposal``)
and on every final block, so its own state only ever advances by its own
execution: nothing a proposer sends is applied on trust.

How (the simplest approach that sees exactly what the producer saw):

1. Blocks come in an order their dependencies allow (``shards.chainview``),
   with the reader's one public ``ChainState``.
2. *Before* ``judge_block`` applies a block of an enclave shard, the replay
   opens an undo scope on the public state (``begin``), walks the block's
   entries in order and, for each entry, first re-executes it if it is an
   enclave or mixed entry (``shards.execution.execute`` with the entry's own
   GAS-3 charge, against the public state its predecessors in the block left
   and a working copy of the enclave's store), then applies the entry's public
   effect with ``apply_entry``. Afterwards it rolls the public state back, so
   ``judge_block`` sees the state untouched.
3. The working store mirrors the simulator (``sagachain.sim.runner`` and
   ``shards.shard``): each transaction's enclave writes go into the store and
   the output state of its enclave accounts is kept as a snapshot under the
   entry's reference; a ``RollbackEntry`` (TX-7) puts a snapshot back, and the
   restored state must hash to the rollback's recorded state hash.
4. Only when ``judge_block`` honours the block (``applied``) does the working
   store become the enclave's store (in place: a shard machine holding the
   store sees it); for a block not applied the replay and its findings are
   dropped.

When a recorded hash differs from the re-execution, the replay keeps going on
its own (re-executed) state: that is the state an honest enclave node holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field


from sagachain.core.block import Block, EnclaveEntry, EntryRef, MixedEntry, ObjectUpdate, RollbackEntry
from sagachain.core.ledger import ChainState
from sagachain.core.rules.catalog import Violation
from sagachain.errors import SagaError
from shards.enclave_store import EnclaveStore
from shards.execution import execute

RULE = "TX-6"
TEXT = "given the enclave's state and key: re-executing each enclave and mixed entry gives its state and log hashes"


@dataclass
class ReplayStats:
    """What the replay of one enclave covered."""

    enclave: str
    blocks: int = 0
    txs: int = 0
    rollbacks: int = 0
    violations: int = 0


@dataclass
class PendingReplay:
    """A replayed block waiting for the judge's verdict."""

    enclave: str
    work: EnclaveStore
    violations: list[Violation]
    txs: int
    rollbacks: int


@dataclass
class EnclaveReplay:
    """Re-executes the blocks of the enclaves whose stores it was given."""

    stores: dict[str, EnclaveStore]
    stats: dict[str, ReplayStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stores = {name: store.copy() for name, store in self.stores.items()}
        self.stats = {name: ReplayStats(name) for name in self.stores}

    def track(self, store: EnclaveStore) -> None:
        """Re-execute ``store``'s enclave from now on, updating ``store`` itself (a member's replica)."""
        self.stores[store.enclave] = store
        self.stats.setdefault(store.enclave, ReplayStats(store.enclave))

    def untrack(self, enclave: str) -> None:
        """Stop: the state is stale (a block's replay was missed) until it is installed whole again."""
        self.stores.pop(enclave, None)

    def tracks(self, enclave: str | None) -> bool:
        return enclave in self.stores

    @property
    def active(self) -> bool:
        return bool(self.stores)

    def replay(self, state: ChainState, block: Block) -> PendingReplay | None:
        """Re-execute ``block``'s enclave entries; None when the block is not one to replay."""
        enclave = state.shard_enclave(block.shard) if block.shard in state.shards else None
        if enclave is None or enclave not in self.stores:
            return None
        if not state.enclave_active(enclave):
            return None  # judge_block will ignore it
        work = self.stores[enclave].copy()
        found: list[Violation] = []
        txs = rollbacks = 0
        state.begin()
        try:
            for index, entry in enumerate(block.entries):
                if isinstance(entry, EnclaveEntry | MixedEntry):
                    txs += 1
                    found.extend(self._replay_tx(state, block, index, entry, enclave, work))
                elif isinstance(entry, RollbackEntry):
                    rollbacks += 1
                    found.extend(_replay_rollback(block, index, entry, work))
                state.apply_entry(block, index, entry)
        finally:
            state.rollback()
        return PendingReplay(enclave, work, found, txs, rollbacks)

    def settle(self, pending: PendingReplay, applied: bool) -> list[Violation]:
        """Keep the replay of an honoured block; drop that of an ignored one."""
        if not applied:
            return []
        self.stores[pending.enclave].adopt(pending.work)
        stats = self.stats[pending.enclave]
        stats.blocks += 1
        stats.txs += pending.txs
        stats.rollbacks += pending.rollbacks
        stats.violations += len(pending.violations)
        return pending.violations

    def _replay_tx(
        self, state: ChainState, block: Block, index: int, entry: EnclaveEntry | MixedEntry, enclave: str, work: EnclaveStore
    ) -> list[Violation]:
        tx = entry.tx

        def v(reason: str) -> Violation:
            return Violation(RULE, reason, block.shard, block.height, index, tx.id)

        try:
            outcome = execute(state, block.shard, tx, store=work, enclave_charge=entry.gas_charged, time=block.header.time)
        except SagaError as exc:
            return [v(f"re-execution on the enclave state refused the transaction: {exc}")]
        except Exception as exc:  # noqa: BLE001 - a hostile entry must not stop the audit
            return [v(f"re-execution failed: {type(exc).__name__}: {exc}")]
        produced = outcome.entry
        found: list[Violation] = []
        if type(produced) is not type(entry):
            found.append(v(f"recorded as {entry.kind}, but re-execution classifies it as {produced.kind}"))
        if getattr(produced, "state_hash", None) != entry.state_hash:
            found.append(v(f"output state hash {entry.state_hash.hex()[:12]} differs from the re-execution's {_hex(getattr(produced, 'state_hash', None))}"))
        if getattr(produced, "log_hash", None) != entry.log_hash:
            found.append(v(f"output log hash {entry.log_hash.hex()[:12]} differs from the re-execution's {_hex(getattr(produced, 'log_hash', None))}"))
        if isinstance(entry, MixedEntry) and _norm(getattr(produced, "updates", ())) != _norm(entry.updates):
            found.append(v("non-enclave updates differ from a re-execution on the enclave state (TX-4)"))
        work.write(outcome.enclave_writes)
        accounts = sorted(a for a in tx.account_ids() if state.account_enclave(a) == enclave)
        work.snapshots[EntryRef(shard=block.shard, height=block.height, index=index)] = {a: work.objects_of(a) for a in accounts}
        return found


def _replay_rollback(block: Block, index: int, entry: RollbackEntry, work: EnclaveStore) -> list[Violation]:
    """TX-7 as an enclave node sees it: the target's saved state is put back and must hash as recorded."""

    def v(reason: str) -> Violation:
        return Violation(RULE, reason, block.shard, block.height, index)

    target = f"{entry.to.shard}#{entry.to.height} entry {entry.to.index}"
    if not work.restore(entry.to):
        return [v(f"rollback to {target}: no enclave transaction of this enclave was replayed there")]
    restored = work.state_hash(list(entry.accounts))
    if restored != entry.state_hash:
        return [v(f"rollback to {target}: the restored state hashes to {restored.hex()[:12]}, the entry says {entry.state_hash.hex()[:12]}")]
    return []


def _norm(updates: tuple[ObjectUpdate, ...]) -> dict[bytes, object]:
    return {u.id: u.value for u in updates}


def _hex(value: bytes | None) -> str:
    return value.hex()[:12] if isinstance(value, bytes) else "none"
