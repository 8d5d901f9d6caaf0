"""A node's copy of the public chain: final blocks applied in an order their dependencies allow.

Shards finalize blocks independently and gossip them, so a node receives
them in an order of the network's choosing. A block can only be judged on
the state its producer built it on: its parent, the heads it names in its
GAS-3 ``gas_basis`` (every shard height the producer had seen, a vector
clock), and the releases its acquires take (L2L-1). The view holds a block
back until those are applied here, then judges it with the same rule checks
the auditor runs. A block breaking any rule is refused, never applied, and
its rule ids are returned for the log and the metrics: an honest committee
never produces one, so refusing it cannot split honest nodes.

Pure: no I/O, no clock. The node's ledger task feeds it and persists what
it applies, in the order it applies it, which is the order an export of
the node's chain then lists blocks in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sagachain.core.block import AcquireEntry, Block
from sagachain.core.ledger import ChainState
from sagachain.core.rules import Tools, check_and_apply

MAX_WAITING = 4096  # blocks held back at once; beyond this the highest are dropped and fetched again later


@dataclass(frozen=True, slots=True)
class Refusal:
    """A final block this node will not apply, and the rules it breaks."""

    block: Block
    rules: tuple[str, ...]
    reason: str


@dataclass
class ChainView:
    chain: ChainState
    tools: Tools
    heads: dict[str, int] = field(default_factory=dict)  # shard -> height applied here
    hashes: dict[str, bytes] = field(default_factory=dict)  # shard -> hash of its head applied here
    waiting: dict[tuple[str, int], Block] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for shard in self.chain.shards:
            self.heads.setdefault(shard, 0)
            self.hashes.setdefault(shard, self.chain.genesis_hash)

    def restored(self, block: Block) -> None:
        """A block replayed from the node's own file: applied already, just remember the head."""
        self.heads[block.shard] = block.height
        self.hashes[block.shard] = block.hash

    def missing(self, block: Block) -> str | None:
        """What ``block`` waits for before it can be judged here, or None when nothing."""
        if block.height != self.heads.get(block.shard, 0) + 1:
            return f"{block.shard} height {block.height - 1} (have {self.heads.get(block.shard, 0)})"
        for head in block.header.gas_basis:
            if head.shard in self.heads and self.heads[head.shard] < head.height:
                return f"{head.shard} height {head.height} named in its gas basis"
        for entry in block.entries:
            if isinstance(entry, AcquireEntry) and self.heads.get(entry.release.shard, 0) < entry.release.height:
                return f"the release of its acquire at {entry.release.shard} height {entry.release.height}"
        return None

    def known(self, block: Block) -> bool:
        """Already applied here, or already waiting."""
        if block.height <= self.heads.get(block.shard, 0):
            return True
        return (block.shard, block.height) in self.waiting

    def offer(self, block: Block) -> tuple[list[Block], list[Refusal]]:
        """Take a final block; return the blocks now applied (in order) and those refused."""
        if block.shard not in self.heads:
            return [], [Refusal(block, ("TX-5",), f"shard {block.shard!r} is not in the genesis")]
        if not self.known(block):
            self.waiting[(block.shard, block.height)] = block
            if len(self.waiting) > MAX_WAITING:
                del self.waiting[max(self.waiting, key=lambda k: k[1])]
        return self.drain()

    def drain(self) -> tuple[list[Block], list[Refusal]]:
        applied: list[Block] = []
        refused: list[Refusal] = []
        progress = True
        while progress:
            progress = False
            for key in sorted(self.waiting, key=lambda k: (k[1], k[0])):
                block = self.waiting[key]
                if self.missing(block) is not None:
                    continue
                del self.waiting[key]
                problem = self.judge(block)
                if problem is None:
                    applied.append(block)
                    progress = True
                else:
                    refused.append(problem)
        return applied, refused

    def judge(self, block: Block, *, ignore: frozenset[str] = frozenset()) -> Refusal | None:
        """Apply ``block`` if it breaks no rule (besides ``ignore``); else leave the state as it was."""
        if block.header.parent != self.hashes[block.shard]:
            return Refusal(block, ("TX-5",), f"parent {block.header.parent.hex()[:12]} is not the applied head "
                           f"{self.hashes[block.shard].hex()[:12]} of {block.shard}: a conflicting final block")
        self.chain.begin()
        found = [v for v in check_and_apply(self.chain, block, self.tools) if v.rule not in ignore]
        if found or ignore:
            self.chain.rollback()
        else:
            self.chain.commit()
            self.heads[block.shard] = block.height
            self.hashes[block.shard] = block.hash
        if found:
            rules = tuple(sorted({v.rule for v in found}))
            return Refusal(block, rules, "; ".join(f"{v.rule}: {v.reason}" for v in found[:3]))
        return None

    def check_proposal(self, block: Block) -> str | None:
        """A committee member's judgment of a proposed block (no qc yet): the reason to refuse, or None."""
        waiting = self.missing(block)
        if waiting is not None:
            return f"waiting for {waiting}"
        refusal = self.judge(block, ignore=frozenset({"SH-1"}))
        if refusal is not None:
            return f"{refusal.reason} ({', '.join(refusal.rules)})"
        return None
