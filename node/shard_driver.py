"""The shard driver: the node's hands for the shard and committee machines it serves.

For every shard whose committee this node sits on, a ``ShardMachine``
(queue, L2L negotiation, block building) and a ``CommitteeMachine``
(consensus rounds) run here, fed with the network's messages and the clock,
and what they ask for is carried out: consensus messages go to the other
members, a block is built when this node proposes, a decided block goes to
the ledger task. Which shards those are is the roster's to say (MEM-1): the
seats are followed after every final block, and a committee that changes
from one height to the next gets a new committee machine.

A committee member judges a proposal with the chain view before it votes,
after re-executing it when it holds the enclave's state (TX-6). The ``lie``
setting of node.toml (tests only) makes this node propose tampered enclave
blocks instead, so that tests can watch honest members vote nil.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from node.config import NodeConfig
from node.connections import Link
from node.enclave_sync import EnclaveSync
from node.messages import Consensus, FinalBlock, L2LRequest
from node.metrics import NodeMetrics
from node.peers import Peers
from node.wire import ProtocolError
from sagachain.core.block import Block
from sagachain.core.keys import KeyPair
from sagachain.core.tx import Transaction
from shards import committee as cm
from shards.chainview import ChainView
from shards.enclave_replica import changes_state
from shards.lies import LIES
from shards.placement import Priority
from shards.shard import Proposal, Rejection, Request, ShardMachine

log = logging.getLogger("sagachain.node")

TICK = 0.05  # seconds between ticks of a shard with work
# Consensus timeouts in ms. Channels are TCP, so a message is lost only with its connection:
# resending every 2 s (not the simulator's lossy-network 400 ms) spares re-sent proposals,
# which carry whole blocks, most of their decoding.
TIMEOUTS = cm.Timeouts(propose=300, prevote=200, precommit=200, increment=100, resend=2_000)
REQUESTS = 0.25  # seconds between L2L request rounds of a shard
FORGED = frozenset({"bad signature", "the block's producer did not sign it", "qc holds a bad signature"})  # committee refusals
REFUSED_KEPT = 10_000  # refused transaction ids remembered for receipts


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ServedShard:
    """A shard whose committee this node sits on: its two machines and the driver's notes."""

    machine: ShardMachine
    committee: cm.CommitteeMachine
    queued: set[bytes] = field(default_factory=set)
    need: tuple[int, int] | None = None  # (height, round) the committee asked us to build for
    mine: dict[int, Proposal] = field(default_factory=dict)  # height -> the proposal we made
    asleep: bool = True
    next_requests: float = 0.0


class ShardDriver:
    """The machines of every shard this node may serve, and the seats it holds now."""

    nursery: trio.Nursery  # set by ``start``: a seat the roster grants later gets a driver task of its own

    def __init__(self, *, config: NodeConfig, key: KeyPair, seeds: list[bytes], node_id: bytes, view: ChainView,
                 machines: dict[str, ShardMachine], enclaves: EnclaveSync, peers: Peers, names: dict[bytes, str],
                 metrics: NodeMetrics, final_in: trio.MemorySendChannel[tuple[str, Block, bytes | None]]) -> None:
        self.config, self.key, self.seeds, self.node_id, self.view = config, key, seeds, node_id, view
        self.machines = machines  # every shard this node may serve, seated or not
        self.enclaves, self.peers, self.names, self.metrics, self.final_in = enclaves, peers, names, metrics, final_in
        self.served: dict[str, ServedShard] = {}  # the shards whose committee this node sits on now
        self.refused: OrderedDict[bytes, tuple[str, str]] = OrderedDict()  # tx id -> (rule, reason), for receipts
        self.lies: set[bytes] = set()  # hashes of the tampered proposals this node made (config ``lie``, tests only)
        self.reseat(now_ms(), starting=True)

    def start(self, nursery: trio.Nursery) -> None:
        """Drive every shard seated at start-up, in ``nursery``."""
        self.nursery = nursery
        for sid in self.served:
            nursery.start_soon(self._drive, sid)

    def members(self, shard: str) -> tuple[bytes, ...]:
        """Who signs ``shard``'s next block: its genesis committee, or an enclave shard's seats (MEM-1)."""
        return self.view.chain.committee_at(shard, self.view.heads[shard] + 1)[0]

    def reseat(self, now: int, starting: bool = False) -> None:
        """Follow the roster's seats (MEM-1): sit on an enclave shard the roster seats this node on,
        leave one it no longer does, and start a new committee machine when the committee of the
        next height differs from the running one. Public committees never change."""
        chain = self.view.chain
        for sid, machine in self.machines.items():
            height = self.view.heads[sid] + 1
            committee, keys = chain.committee_at(sid, height)
            served = self.served.get(sid)
            if served is not None and served.committee.committee == committee and served.committee.public_keys == keys:
                continue
            if self.node_id not in committee:
                if served is not None:
                    del self.served[sid]
                    log.info("shard %s: this node's seat ended at height %d (MEM-1)", sid, height)
                continue
            signer = next((KeyPair(seed) for seed in self.seeds if KeyPair(seed).public == keys.get(self.node_id)), self.key)
            machine_committee = cm.CommitteeMachine(  # signs with the key the roster holds for it at that height (MEM-5)
                shard=sid, committee=committee, public_keys=dict(keys), node_id=self.node_id, key=signer,
                validate=lambda block, sid=sid: self._validate(sid, block), height=height,
                ready=lambda block, sid=sid: self._ready(sid, block), timeouts=TIMEOUTS,
            )
            if served is None:
                self.served[sid] = ServedShard(machine, machine_committee)
                if not starting:
                    log.info("shard %s: the roster seats this node from height %d (MEM-1)", sid, height)
                    self.nursery.start_soon(self._drive, sid)
            else:
                served.committee, served.need = machine_committee, None
                log.info("shard %s: committee of %d from height %d (MEM-1)", sid, len(committee), height)
                self.act(sid, machine_committee.start(now))

    # -- transactions ------------------------------------------------------------------------------

    def submit(self, served: ServedShard, tx: Transaction) -> None:
        """Queue an admitted ``tx`` on a served shard's machine."""
        served.queued.add(tx.id)
        self.collect_refusals(served, served.machine.submit(tx, now_ms(), self.view.tools))

    def collect_refusals(self, served: ServedShard, rejections: list[Rejection]) -> None:
        """Count and log what the machine refused; remember refused transactions for their receipts."""
        machine = served.machine
        for rejection in rejections:
            self.metrics.rejected_txs.labels(rejection.rule or "?").inc()
            if rejection.tx is not None:
                served.queued.discard(rejection.tx.id)
                self.refused[rejection.tx.id] = (rejection.rule, rejection.reason)
                while len(self.refused) > REFUSED_KEPT:
                    self.refused.popitem(last=False)
                log.info("shard %s refused transaction %s: %s (%s)", machine.id, rejection.tx.id.hex()[:12], rejection.reason, rejection.rule)
            else:
                log.info("shard %s: %s (%s)", machine.id, rejection.reason, rejection.rule)

    def on_request(self, message: L2LRequest) -> None:
        """Another leader asks for an account one of our shards owns (L2L-1)."""
        chain = self.view.chain
        owner = chain.owner.get(message.account)
        served = self.served.get(owner) if owner is not None else None
        if served is None or message.requester not in chain.shards:
            return
        request = Request(message.account, message.requester, Priority(message.arrived, message.tx_id))
        self.collect_refusals(served, served.machine.on_request(request))

    # -- consensus ---------------------------------------------------------------------------------

    def on_consensus(self, link: Link, body: cm.Message) -> None:
        served = self.served.get(body.shard)
        if served is None or link.node_id not in self.members(body.shard):
            return
        actions = served.committee.receive(body, now_ms())
        forged = [a.reason for a in actions if isinstance(a, cm.Refused) and a.reason in FORGED]
        self.act(body.shard, actions)
        if forged:  # an honest member never signs badly: drop the connection and count a strike
            raise ProtocolError(f"{body.kind} for {body.shard} height {body.height}: {forged[0]}", rule="SH-1")

    def _ready(self, sid: str, block: Block) -> bool:
        """Whether this node holds what ``block`` builds on: the blocks it names, and for an
        enclave block a current replica to re-execute it on (TX-6); a stale one waits for the
        whole state from a member."""
        if self.view.missing(block) is not None:
            return False
        enclave = self.view.chain.shard_enclave(sid)
        if changes_state(block) and enclave is not None:
            return self.enclaves.can_judge(enclave)
        return True

    def _validate(self, sid: str, block: Block) -> str | None:
        """The member's judgment before it votes; a rule broken (not a wait) is logged with its rule id."""
        if block.hash in self.lies:
            return None  # a liar vouches for its own lie
        problem = self.view.check_proposal(block)
        if problem is not None and problem.startswith("TX-6"):
            log.warning("shard %s: votes nil on block %d of %s: its own re-execution differs (%s)",
                        sid, block.height, self.names.get(block.header.producer, block.header.producer.hex()[:12]), problem)
        elif problem is not None and not problem.startswith("waiting"):
            log.warning("shard %s: votes nil on block %d: %s", sid, block.height, problem)
        return problem

    def act(self, sid: str, actions: list[cm.Action]) -> None:
        """Carry out what a committee machine asks for: send, build, hand a decided block on."""
        served = self.served[sid]
        for action in actions:
            if isinstance(action, cm.Broadcast):
                for member in self.members(sid):
                    if member != self.node_id:
                        self.peers.send_to(member, Consensus(body=action.message))
            elif isinstance(action, cm.Send):
                self.peers.send_to(action.to, Consensus(body=action.message))
            elif isinstance(action, cm.NeedBlock):
                log.debug("shard %s: proposer of height %d round %d", sid, action.height, action.round)
                served.need = (action.height, action.round)
                self._build(sid)
            elif isinstance(action, cm.Decided):
                log.debug("shard %s: decided height %d in round %d", sid, action.block.height, served.committee.round)
                self.final_in.send_nowait((f"committee {sid}", action.block, None))
            elif isinstance(action, cm.Evidence):
                log.warning("shard %s: %s signed two conflicting messages (SH-1): %s / %s", sid,
                            self.names.get(action.signer, action.signer.hex()[:12]), action.first, action.second)
            elif isinstance(action, cm.Refused):
                log.debug("shard %s committee refused: %s", sid, action.reason)

    def _build(self, sid: str) -> None:
        served = self.served[sid]
        if served.need is None:
            return
        height, round_ = served.need
        machine, committee = served.machine, served.committee
        if committee.height != height or committee.round != round_ or machine.height + 1 != height:
            served.need = None
            return
        enclave = machine.enclave
        if enclave is not None and not self.enclaves.can_build(enclave):
            return
        built = machine.build(now_ms(), self.node_id)
        self.collect_refusals(served, built.refused)
        proposal = built.proposal
        if proposal is None:
            return
        if self.config.lie and enclave is not None:
            proposal = self._tell_lie(sid, proposal)
        served.need = None
        served.mine[height] = proposal
        log.debug("shard %s: proposing height %d with %d entries", sid, height, len(proposal.block.entries))
        actions = committee.propose(proposal.block, now_ms())
        if any(isinstance(a, cm.Refused) for a in actions):
            log.info("shard %s: own block %d not proposed: %s", sid, height, [a.reason for a in actions if isinstance(a, cm.Refused)])
            del served.mine[height]
            machine.on_rejected(proposal)
        self.act(sid, actions)

    def _tell_lie(self, sid: str, proposal: Proposal) -> Proposal:
        """Test fault (``lie`` in node.toml): propose the tampered block a byzantine member would."""
        block = Block(header=proposal.block.header, entries=proposal.block.entries, qc=())
        lie = LIES[self.config.lie](self.view.chain, block)
        if lie is None:
            return proposal
        self.lies.add(lie.hash)
        log.warning("shard %s: LYING (test fault %r): proposing a tampered block %d", sid, self.config.lie, lie.height)
        return replace(proposal, block=lie)

    async def _drive(self, sid: str) -> None:
        """Tick a seated shard's machines; ends when the roster takes the seat away."""
        served = self.served[sid]
        self.act(sid, served.committee.start(now_ms()))
        while True:
            await trio.sleep(TICK)
            if self.served.get(sid) is not served:
                return  # the seat ended (and maybe began again, with a driver of its own)
            machine, committee = served.machine, served.committee
            working = bool(machine.queue or machine.incoming or machine.grants or machine.deploys or machine.specials)
            if not (working or committee.busy):
                served.asleep = True
                continue
            now = now_ms()
            if served.asleep:
                served.asleep = False
                self.act(sid, committee.wake(now))
            self.act(sid, committee.tick(now))
            self._build(sid)
            if trio.current_time() >= served.next_requests:
                served.next_requests = trio.current_time() + REQUESTS
                for owner, request in machine.requests(now):
                    message = L2LRequest(account=request.account, requester=request.requester,
                                         arrived=request.priority.arrived, tx_id=request.priority.tx_id)
                    for member in self.members(owner):
                        if member != self.node_id:
                            self.peers.send_to(member, message)
                    if owner in self.served:
                        self.on_request(message)
            self.metrics.queue.labels(sid).set(len(machine.queue))

    # -- a final block -----------------------------------------------------------------------------

    def on_final(self, block: Block) -> None:
        """Before the block is stored: our queue and proposals forget what it settled; every machine applies it."""
        served = self.served.get(block.shard)
        if served is not None:
            served.queued -= {e.tx.id for e in block.tx_entries()}
            for height in sorted(h for h in served.mine if h <= block.height):
                mine = served.mine.pop(height)
                if mine.block.hash != block.hash:
                    served.machine.on_rejected(mine)  # its work goes back; what another block took is dropped below
        for machine in self.machines.values():
            machine.on_final(block)
            machine.forget_final()

    def after_stored(self, block: Block) -> None:
        """Once the block is durable: the committee moves to the next height, peers outside the
        committee hear of the block, and the seats follow the roster the block may have changed."""
        served = self.served.get(block.shard)  # only the ledger task reseats: the seat ``on_final`` saw
        if served is not None:
            if block.height >= served.committee.height:
                served.need = None
                self.act(block.shard, served.committee.next_height(block, now_ms()))
            for peer in self.peers.peer_ids:
                if peer not in self.members(block.shard):
                    self.peers.send_to(peer, FinalBlock(block=block))
        self.reseat(now_ms())

    def status(self) -> dict[str, Any]:
        shards = {}
        for shard, height in sorted(self.view.heads.items()):
            served = self.served.get(shard)
            shards[shard] = {
                "height": height,
                "member": served is not None,
                "queue": len(served.machine.queue) if served else 0,
                "round": served.committee.round if served else 0,
                "waiting": sum(1 for s, _ in self.view.waiting if s == shard),
            }
        return shards
