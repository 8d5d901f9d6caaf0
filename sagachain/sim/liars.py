"""A lying proposer among honest members, in the simulator's modelled committee.

``Scenario.misbehave(shard, kind)`` with a kind of ``shards.lies`` seats one
liar on the shard's committee: the member that proposes ``at_height`` in
round 0. Whenever it is a round's proposer, from that height on, it tampers
its proposal (the same functions the node uses when configured to lie), for
``count`` lies. The other members re-execute each proposal on the shard's
replica before they vote, as a node's members do (``shards.enclave_replay``,
TX-6): a lie is refused, the round passes to the next member, and the height
is built honestly. No lie becomes final.

Only shards with a liar re-execute here: on any other shard the members'
re-execution runs the same deterministic execution on the same replica as
the proposer and finds what it found, so skipping it changes no outcome, and
its time is charged by ``CostModel.validate_ms`` either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagachain.core.block import Block
from sagachain.core.ledger import ChainState
from sagachain.core.rules.catalog import Violation
from sagachain.sim.scenario import Misbehaviour
from shards.enclave_replay import EnclaveReplay
from shards.enclave_store import EnclaveStore
from shards.lies import LIES


@dataclass
class Liar:
    plan: Misbehaviour
    left: int
    node: bytes | None = None  # fixed when its first height comes: the round-0 proposer of ``at_height``


class Liars:
    def __init__(self, plans: list[Misbehaviour], rotation: int = 0) -> None:
        self.rotation = rotation  # the proposer of height h, round 0, is committee[(h - 1 + rotation) % n]
        self.by_shard: dict[str, list[Liar]] = {}
        for plan in plans:
            self.by_shard.setdefault(plan.shard, []).append(Liar(plan, plan.count))
        self.lies_told = 0
        self.lies_refused = 0

    def __contains__(self, sid: str) -> bool:
        return sid in self.by_shard

    def tamper(self, chain: ChainState, block: Block, committee: tuple[bytes, ...], producer: bytes) -> Block:
        """The proposal ``producer`` sends: ``block`` itself unless it is a liar with a lie left."""
        for liar in self.by_shard.get(block.shard, []):
            if liar.left <= 0 or block.height < liar.plan.at_height:
                continue
            if liar.node is None:
                liar.node = committee[(liar.plan.at_height - 1 + self.rotation) % len(committee)]
            if producer != liar.node:
                continue
            lie = LIES[liar.plan.kind](chain, block)
            if lie is not None:
                liar.left -= 1
                self.lies_told += 1
                return lie
        return block

    def reexecute(self, chain: ChainState, block: Block, store: EnclaveStore | None, always: bool = False) -> list[Violation]:
        """The honest members' TX-6 check of a proposal on the shard's replica; nothing is kept.
        ``always``: on every shard, not only where a liar sits (the members committee model)."""
        if store is None or (block.shard not in self.by_shard and not always):
            return []
        replay = EnclaveReplay({})
        replay.track(store)
        pending = replay.replay(chain, block)
        if pending is None or not pending.violations:
            return []
        self.lies_refused += 1
        return pending.violations
