"""A reader's copy of the public chain: final blocks judged in an order their dependencies allow.

Every reader of a chain is one of these: a node (blocks arrive from its
committees and peers in an order of the network's choosing), the auditor
(blocks come in file order) and the differential tests that hold the two
side by side. A block can only be judged on the state its producer built it
on: its parent, the heads it names in its GAS-3 ``gas_basis`` (every shard
height the producer had seen, a vector clock), and the releases its acquires
take (L2L-1). The view holds a block back until those are judged here, then
judges it with ``judge_block``, the one judge: the block is applied, refused
(it broke a rule: its shard halts) or ignored (MINT-4, LIFE-1, a halted
shard). A dependency on a shard that can never advance again (halted, or of
an ended enclave) is not waited for: the judge names what is wrong.

An enclave member gives the view an ``EnclaveReplay`` tracking its
replica's store: every enclave and mixed entry is re-executed on it before
the judge runs (TX-6), and the store advances only by that re-execution.
The same replay checks a proposal before the member votes
(``check_proposal``).

Pure: no I/O, no clock. The node's ledger task feeds it and persists what it
applies, in the order it applies it; the auditor feeds it a chain file and
calls ``flush`` at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sagachain.core.block import AcquireEntry, Block
from sagachain.core.ledger import ChainState
from sagachain.core.rules import Coverage, Tools, Verdict, Violation, judge_block
from shards.enclave_replay import EnclaveReplay

MAX_WAITING = 4096  # blocks held back at once; beyond this the highest are dropped and fetched again later
AUDIT = "AUDIT"  # a check crashed on a block: a bug of ours, reported, never hidden


@dataclass(frozen=True, slots=True)
class Judged:
    """One final block and what it did: the judge's verdict, and what this reader's own
    re-execution of its enclave entries found (TX-6; empty unless the reader is a member)."""

    block: Block
    verdict: Verdict
    replayed: tuple[Violation, ...] = ()
    reexecuted: bool = False  # the reader's replay ran this block's enclave entries on its store

    @property
    def outcome(self) -> str:
        return self.verdict.outcome


@dataclass
class ChainView:
    chain: ChainState
    tools: Tools
    replay: EnclaveReplay | None = None
    coverage: Coverage | None = None
    heads: dict[str, int] = field(default_factory=dict)  # shard -> highest height judged here
    waiting: dict[tuple[str, int], Block] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for shard in self.chain.shards:
            self.heads.setdefault(shard, 0)

    def restored(self, block: Block) -> None:
        """A block replayed from the node's own file: applied already, just remember the head."""
        self.heads[block.shard] = block.height

    def _waits_on(self, shard: str, height: int) -> bool:
        return self.heads.get(shard, height) < height and self.chain.advances(shard)

    def missing(self, block: Block) -> str | None:
        """What ``block`` waits for before it can be judged here, or None when nothing."""
        if block.height != self.heads.get(block.shard, 0) + 1:
            return f"{block.shard} height {block.height - 1} (have {self.heads.get(block.shard, 0)})"
        for head in block.header.gas_basis:
            if self._waits_on(head.shard, head.height):
                return f"{head.shard} height {head.height} named in its gas basis"
        for entry in block.entries:
            if isinstance(entry, AcquireEntry) and self._waits_on(entry.release.shard, entry.release.height):
                return f"the release of its acquire at {entry.release.shard} height {entry.release.height}"
        return None

    def known(self, block: Block) -> bool:
        """Already judged here, or already waiting."""
        if block.height <= self.heads.get(block.shard, 0):
            return True
        return (block.shard, block.height) in self.waiting

    def offer(self, block: Block) -> list[Judged]:
        """Take a final block; return the blocks judged now, in the order they were judged."""
        if block.shard not in self.heads:
            reason = f"shard {block.shard!r} is not in the genesis"
            return [Judged(block, Verdict([Violation("TX-5", reason, block.shard, block.height)], False))]
        if not self.known(block):
            self.waiting[(block.shard, block.height)] = block
            if len(self.waiting) > MAX_WAITING:
                del self.waiting[max(self.waiting, key=lambda k: k[1])]
        return self.drain()

    def drain(self) -> list[Judged]:
        judged: list[Judged] = []
        progress = True
        while progress:
            progress = False
            for key in sorted(self.waiting, key=lambda k: (k[1], k[0])):
                block = self.waiting[key]
                if self.missing(block) is not None:
                    continue
                del self.waiting[key]
                judged.append(self.judge(block))
                progress = True
        return judged

    def flush(self) -> list[Judged]:
        """The input has ended: judge what still waits (its dependencies will never come), lowest first."""
        judged = self.drain()
        while self.waiting:
            key = min(self.waiting, key=lambda k: (k[1], k[0]))
            block = self.waiting.pop(key)
            if block.height <= self.heads[block.shard]:
                continue
            judged.append(self.judge(block))
            judged.extend(self.drain())
        return judged

    def judge(self, block: Block) -> Judged:
        """Judge ``block`` now (its dependencies are here, or will never be) and record the verdict."""
        pending = None
        try:
            pending = self.replay.replay(self.chain, block) if self.replay is not None else None
            verdict = judge_block(self.chain, block, self.tools, self.coverage)
        except Exception as exc:  # noqa: BLE001 - a hostile block must not stop a reader
            verdict = self._crashed(block, exc)
        replayed: tuple[Violation, ...] = ()
        if pending is not None and self.replay is not None:
            replayed = tuple(self.replay.settle(pending, verdict.applied))
        if verdict.final:  # a forgery without a quorum takes no height: the genuine block may still come
            self.heads[block.shard] = block.height
        return Judged(block, verdict, replayed, reexecuted=pending is not None and verdict.applied)

    def _crashed(self, block: Block, exc: Exception) -> Verdict:
        if getattr(self.chain, "_undo", None) is not None:
            self.chain.rollback()
        reason = f"the checks could not judge this block ({type(exc).__name__}: {exc}); this is a bug, please report it"
        if self.coverage is not None:
            self.coverage.count(AUDIT).violations += 1
        self.chain.halt(block.shard, block.height, f"its block {block.height} could not be judged ({AUDIT})")
        return Verdict([Violation(AUDIT, reason, block.shard, block.height)], False)

    def check_proposal(self, block: Block) -> str | None:
        """A committee member's judgment of a proposed block (no qc yet): the reason to refuse, or None.

        The member re-executes the block's enclave entries on its own replica
        first (TX-6), when it has one: a forged state change, a wrong log hash
        or public updates its own execution does not give are refused.
        """
        waiting = self.missing(block)
        if waiting is not None:
            return f"waiting for {waiting}"
        pending = self.replay.replay(self.chain, block) if self.replay is not None else None
        if pending is not None and pending.violations:
            return "; ".join(f"{v.rule}: {v.reason}" for v in pending.violations[:3])
        verdict = judge_block(self.chain, block, self.tools, proposal=True, keep=False)
        if verdict.violations:
            return f"{verdict.summary()} ({', '.join(verdict.rules)})"
        return None
