"""A member node's copy of its enclave's off-chain state, kept in step with the chain.

The chain carries only hashes of enclave state (TX-3); the state itself is
the members' business (MEM-4). A member advances its state by its own
re-execution of every enclave block (TX-6, ``shards.enclave_replay``, run by
the member's ``ChainView``): nothing a proposer sends is applied on trust.
``heads`` says which enclave shard heights the state reflects: the state is
*current* when they equal the heights the member's chain has judged. Only a
current replica is re-executed; one that missed a block (it was down, or
joined later) is *stale*: it builds and votes on no enclave block and asks a
current member for the whole state (``get_enclave_state``).

Pure: the driver seals and opens (under epoch keys, ``node.enclave_keys``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sagachain.core.block import Block, EnclaveEntry, MixedEntry, RollbackEntry
from shards.enclave_store import EnclaveStore


def changes_state(block: Block) -> bool:
    """Whether a block's entries change the enclave's off-chain objects."""
    return any(isinstance(e, EnclaveEntry | MixedEntry | RollbackEntry) for e in block.entries)


@dataclass
class EnclaveReplica:
    enclave: str
    shards: tuple[str, ...]
    store: EnclaveStore = field(init=False)
    heads: dict[str, int] = field(default_factory=dict)
    has_state: bool = False

    def __post_init__(self) -> None:
        self.store = EnclaveStore(self.enclave)
        for shard in self.shards:
            self.heads.setdefault(shard, 0)

    def install(self, store: EnclaveStore, heads: dict[str, int]) -> None:
        """Take a whole state (from the file, a genesis bundle or a member), in place: shard
        machines and the replay hold a reference to ``store``."""
        self.store.objects = dict(store.objects)
        self.store.private_code = dict(store.private_code)
        self.store.snapshots = {}
        self.heads = {s: heads.get(s, 0) for s in self.shards}
        self.has_state = True

    def current(self, chain_heads: dict[str, int]) -> bool:
        return self.has_state and all(self.heads[s] == chain_heads.get(s, 0) for s in self.shards)

    def on_final(self, block: Block, replayed: bool) -> bool:
        """Advance with a block applied to the chain; True when the state changed.

        ``replayed``: the member's replay re-executed the block on this
        replica's store. A block the state already reflects (installed from a
        member ahead of this node's chain) is skipped; a state-changing block
        that was not replayed leaves the state stale, to be fetched whole.
        """
        if block.shard not in self.heads or not self.has_state:
            return False
        have = self.heads[block.shard]
        if block.height != have + 1:
            return False
        if changes_state(block) and not replayed:
            return False
        self.heads[block.shard] = block.height
        return changes_state(block)
