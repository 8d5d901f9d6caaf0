"""The ``members`` committee model: every committee member runs the node's consensus machine.

``s.committees("members")`` (or ``sagachain run --committees members``) puts one
``shards.committee.CommitteeMachine`` per member on every honest shard, the
machine a node runs. Its messages (proposals, prevotes, precommits, commits,
decisions) travel one by one over the simulated network, with its delays and
its loss; its timers are events of the run. So rounds, locks, view changes,
the commit certificate (SH-1) and evidence of equivocation are the protocol's
own, not a count: a crashed member stops receiving, sending and ticking, and
catches up from the last final block when it restarts; members split by
``s.partition_members`` hear only their side until the heal; a silent or
equivocating member (``s.misbehave(shard, "silent" | "equivocate")``) and a
lying proposer (``shards.lies``) are outvoted by the honest rest.

What the members share is the shard's ledger view. One ``ShardMachine`` builds
for whoever proposes and one ``ChainState`` judges, because every honest
member in this model has applied the same final blocks (that a node's own
chain view reaches the auditor's ledger from any gossip order is shown by
``tests/test_readers_agree.py``). A proposal's judgment (the rules, and the
TX-6 re-execution on the enclave replica) is therefore made once per block
and reused by every honest member; each still pays ``validate_ms`` of virtual
time before it acts on the proposal.

Pacing: a shard builds at most one block per ``block_interval``, as in the
modelled committee, and the propose timeout is ``block_interval`` longer than
the node's, so waiting for the next slot is not taken for a silent proposer.
An idle shard's members sleep, as a node's do (``CommitteeMachine.wake``).
Colluding committees (``byzantine``) stay modelled: all their members sign.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sagachain.core.block import Block
from sagachain.core.keys import modelled_verify, verify as ed25519_verify
from sagachain.sim.scenario import MEMBER_FAULTS, Misbehaviour
from sagachain.world.declarations import MODELLED
from shards import committee as cm
from shards.shard import Proposal

if TYPE_CHECKING:
    from sagachain.sim.runner import Simulation

VOTE_BYTES = 160  # an encoded prevote, precommit or commit: shard, height, round, a hash, a signer, a signature


@dataclass
class Seat:
    """One member of one committee as the simulator runs it."""

    node: bytes
    machine: cm.CommitteeMachine
    up: bool = True
    started: bool = False
    need: tuple[int, int] | None = None  # (height, round) it was asked to propose a block for
    ticks: set[int] = field(default_factory=set)  # times a tick of its machine is already scheduled for


@dataclass
class Committee:
    """One shard's members and what they built at the height they work on."""

    sid: str
    seats: dict[bytes, Seat]
    height: int
    asleep: bool = False
    next_build: int = 0  # a shard builds at most one block per block_interval
    built: list[Proposal] = field(default_factory=list)  # this height's blocks, as built (their work may go back)
    returned: set[int] = field(default_factory=set)  # indexes in ``built`` whose work went back to the queue
    blocks: dict[bytes, int] = field(default_factory=dict)  # block hash (a lie, a twin) -> index in ``built``
    lies: set[bytes] = field(default_factory=set)  # blocks their byzantine proposer vouches for
    twins: dict[bytes, bytes] = field(default_factory=dict)  # an equivocator's block -> the other block it proposed
    verdicts: dict[bytes, str | None] = field(default_factory=dict)  # the members' judgment per block hash, this height
    groups: list[set[bytes]] | None = None  # a partition among the members
    last: Block | None = None  # the last final block, for a member that restarts behind


@dataclass
class Fault:
    """A silent or equivocating member: the round-0 proposer of ``at_height``, for ``count`` heights."""

    plan: Misbehaviour
    node: bytes | None = None

    def active(self, node: bytes, height: int, committee: tuple[bytes, ...]) -> bool:
        if self.node is None:
            self.node = committee[self.plan.at_height % len(committee)]
        return node == self.node and self.plan.at_height <= height < self.plan.at_height + self.plan.count


class MemberCommittees:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        interval = sim.sc.timing.block_interval
        self.timeouts = cm.Timeouts(propose=interval + 300, prevote=200, precommit=200, increment=100, resend=2_000)
        self.verify = modelled_verify if sim.sc.crypto == MODELLED else ed25519_verify
        self.faults: dict[str, list[Fault]] = {}
        for plan in sim.sc.misbehaviours:
            if plan.kind in MEMBER_FAULTS:
                self.faults.setdefault(plan.shard, []).append(Fault(plan))
        self.committees: dict[str, Committee] = {}
        self.stats: Counter[str] = Counter()
        self.rounds: Counter[int] = Counter()  # decided heights by the round that decided them
        self.evidence: set[tuple[bytes, str, int]] = set()  # (signer, shard, height) shown to have equivocated
        self.final: dict[tuple[str, int], bytes] = {}  # the block each height decided first
        self.forks: list[str] = []  # members that decided another block at a decided height: a safety failure
        self.decisions: dict[tuple[str, int], bytes] = {}  # the block the first member to decide a height decided
        self.last_final: dict[str, int] = {}  # when each shard's last block became final

    def __contains__(self, sid: str) -> bool:
        return sid in self.committees

    def stalled(self, since: int) -> list[str]:
        """Shards that have work (a queue, accounts to hand over or take, votes under way) but
        decided no block since ``since``: a liveness failure once every fault has healed."""
        out = []
        for sid, committee in self.committees.items():
            shard = self.sim.machines[sid]
            working = bool(shard.queue or shard.incoming or shard.grants or shard.deploys or shard.specials)
            if sid not in self.sim.stopped and working and self.last_final.get(sid, 0) < since:
                out.append(sid)
        return out

    def report(self) -> dict[str, object]:
        """What results.json says of the run's consensus (``metrics.consensus``)."""
        return {
            "model": "members",
            "decided_by_round": {str(r): n for r, n in sorted(self.rounds.items())},
            "messages": self.stats["messages"],
            "messages_lost": self.stats["lost"],
            "nil_prevotes_for_refused_blocks": self.stats["refused_proposals"],
            "equivocations": self.stats["equivocations"],
            "evidence": len(self.evidence),
            "forks": list(self.forks),
        }

    # -- seating -----------------------------------------------------------------------

    def start(self, shards: list[str]) -> None:
        for sid in shards:
            self._seat(sid, 1, down=set())

    def _seat(self, sid: str, height: int, down: set[bytes]) -> None:
        """Seat the committee of ``height`` (it changes with the roster, MEM-1), each member with
        the key the roster holds for it there (MEM-5); members down stay down."""
        chain = self.sim.chain
        members, keys = chain.committee_at(sid, height)
        seats = {}
        for node in members:
            machine = cm.CommitteeMachine(
                shard=sid, committee=members, public_keys=dict(keys), node_id=node,
                key=self.sim.membership.signing_key(sid, height, node),
                validate=lambda block, sid=sid, node=node: self._validate(sid, node, block),
                height=height, timeouts=self.timeouts, verify=self.verify,
            )
            seats[node] = Seat(node, machine, up=node not in down)
        previous = self.committees.get(sid)
        committee = Committee(sid, seats, height, last=previous.last if previous else None,
                              next_build=previous.next_build if previous else 0)
        self.committees[sid] = committee
        for seat in seats.values():
            if seat.up:
                seat.started = True
                self._act(committee, seat, seat.machine.start(self.sim.events.now))

    # -- the driver's events -----------------------------------------------------------

    def on_tick(self, sid: str) -> None:
        """The shard's block-interval tick: sleep while idle, wake when work comes, build."""
        committee = self.committees[sid]
        shard = self.sim.machines[sid]
        up = [s for s in committee.seats.values() if s.up]
        working = bool(shard.queue or shard.incoming or shard.grants or shard.deploys or shard.specials)
        if not (working or any(s.machine.busy for s in up)):
            committee.asleep = True
            return
        if committee.asleep:
            committee.asleep = False
            for seat in up:
                self._act(committee, seat, seat.machine.wake(self.sim.events.now))
        for seat in up:
            self._build(committee, seat)

    def crash(self, sid: str, nodes: int) -> None:
        """The last ``nodes`` members still up stop: no messages in or out, no timers."""
        committee = self.committees[sid]
        for seat in [s for s in committee.seats.values() if s.up][-nodes:] if nodes > 0 else []:
            seat.up, seat.need = False, None

    def restart(self, sid: str, nodes: int) -> None:
        """The first ``nodes`` members down come back, catching up from the last final block."""
        committee = self.committees[sid]
        now = self.sim.events.now
        for seat in [s for s in committee.seats.values() if not s.up][:nodes]:
            seat.up = True
            if not seat.started:
                seat.started = True
                self._act(committee, seat, seat.machine.start(now))
                continue
            if committee.last is not None and seat.machine.height <= committee.last.height:
                self._act(committee, seat, seat.machine.next_height(committee.last, now))
            self._act(committee, seat, seat.machine.wake(now))

    def split(self, sid: str, groups: list[list[int]]) -> None:
        """Members (by their place in the committee) hear only their own group until ``heal``."""
        committee = self.committees[sid]
        order = list(committee.seats)
        committee.groups = [{order[i] for i in group if i < len(order)} for group in groups]

    def heal(self) -> None:
        for committee in self.committees.values():
            committee.groups = None

    # -- a member's actions --------------------------------------------------------------

    def _act(self, committee: Committee, seat: Seat, actions: list[cm.Action]) -> None:
        for action in actions:
            if isinstance(action, cm.Broadcast):
                if isinstance(action.message, cm.Commit):
                    self._check_decision(committee.sid, seat, action.message)
                self._broadcast(committee, seat, action.message)
            elif isinstance(action, cm.Send):
                self._post(committee, seat, action.to, action.message)
            elif isinstance(action, cm.NeedBlock):
                seat.need = (action.height, action.round)
                self._build(committee, seat)
            elif isinstance(action, cm.Decided):
                decided_round = seat.machine.round
                self.sim.events.after(0, lambda b=action.block, r=decided_round: self._decided(committee.sid, seat, b, r))
            elif isinstance(action, cm.Evidence):
                self.evidence.add((action.signer, committee.sid, committee.height))
            elif isinstance(action, cm.ScheduleTick):
                self._schedule_tick(committee, seat, action.at)

    def _check_decision(self, sid: str, seat: Seat, commit: cm.Commit) -> None:
        """A member signs a commit once it decided: every member must decide the same block at a
        height, whether or not it gathers the certificate itself (safety, SH-1)."""
        first = self.decisions.setdefault((sid, commit.height), commit.block_hash)
        if first != commit.block_hash:
            self.forks.append(f"{sid}#{commit.height}: member {seat.node.hex()[:12]} decided {commit.block_hash.hex()[:12]}, "
                              f"another member decided {first.hex()[:12]}")

    def _faulty(self, committee: Committee, seat: Seat, kind: str, height: int) -> bool:
        """Whether ``seat`` misbehaves in ``kind`` at ``height`` (of the message or block at stake)."""
        members = tuple(committee.seats)
        return any(f.plan.kind == kind and f.active(seat.node, height, members) for f in self.faults.get(committee.sid, []))

    def _broadcast(self, committee: Committee, seat: Seat, message: cm.Message) -> None:
        others = [n for n in committee.seats if n != seat.node]
        if (isinstance(message, cm.Proposal) and message.valid_round == -1 and message.block.hash in committee.blocks
                and self._faulty(committee, seat, "equivocate", message.height)):
            twin = self._twin(committee, seat, message)
            half = len(others) // 2
            for index, node in enumerate(others):  # each half gets its block first, the other one next
                first, second = (message, twin) if index < half else (twin, message)
                self._post(committee, seat, node, first)
                self._post(committee, seat, node, second)
            self.stats["equivocations"] += 1
            return
        if isinstance(message, cm.Prevote | cm.Precommit | cm.Commit) and message.block_hash in committee.twins:
            # it backs, to each half, the block that half saw first: the attack that locking defeats
            twin_vote = self._twin_vote(committee, seat, message)
            half = len(others) // 2
            for index, node in enumerate(others):
                self._post(committee, seat, node, message if index < half else twin_vote)
            return
        for node in others:
            self._post(committee, seat, node, message)

    def _twin_vote(self, committee: Committee, seat: Seat, vote: cm.Prevote | cm.Precommit | cm.Commit) -> cm.Message:
        """The equivocator's vote for its other block, signed like the vote it stands in for."""
        twin = committee.twins[vote.block_hash]
        key = seat.machine.key
        if isinstance(vote, cm.Commit):
            return replace(vote, block_hash=twin, signature=key.sign(twin))
        draft = replace(vote, block_hash=twin, signature=b"")
        return replace(draft, signature=key.sign(draft.digest()))

    def _twin(self, committee: Committee, seat: Seat, message: cm.Proposal) -> cm.Proposal:
        """A second, different proposal for the same round: the same entries a millisecond later.
        Each half of the committee receives one block first and the other right after it, so the
        halves prevote different blocks, and every honest member holds the two signed proposals."""
        block = message.block
        twin = Block(header=replace(block.header, time=block.header.time + 1), entries=block.entries, qc=())
        committee.blocks[twin.hash] = committee.blocks[block.hash]
        committee.twins[block.hash] = twin.hash
        key = seat.machine.key
        draft = replace(message, block=twin, producer_vote=key.sign(twin.hash), signature=b"")
        return replace(draft, signature=key.sign(draft.digest()))

    def _post(self, committee: Committee, seat: Seat, to: bytes, message: cm.Message) -> None:
        height = message.block.height if isinstance(message, cm.Decision) else message.height
        if self._faulty(committee, seat, "silent", height):
            return
        if committee.groups is not None and not any(seat.node in g and to in g for g in committee.groups):
            self.stats["lost"] += 1
            return
        carries = message.block if isinstance(message, cm.Proposal | cm.Decision) else None
        size = self.sim._size(carries) if carries is not None else VOTE_BYTES
        delay = self.sim.network.send(committee.sid, committee.sid, size, reliable=False)
        self.stats["messages"] += 1
        if delay is None:
            self.stats["lost"] += 1
            return
        if carries is not None:  # the member checks the block before it acts on it
            delay += self.sim.costs.validate_ms(carries, size, len(committee.seats))
        self.sim.events.after(delay, lambda: self._receive(committee.sid, to, message))

    def _receive(self, sid: str, node: bytes, message: cm.Message) -> None:
        committee = self.committees[sid]
        seat = committee.seats.get(node)
        if seat is None or not seat.up or sid in self.sim.stopped:
            return
        self._act(committee, seat, seat.machine.receive(message, self.sim.events.now))

    def _schedule_tick(self, committee: Committee, seat: Seat, at: int) -> None:
        if at in seat.ticks:
            return
        seat.ticks.add(at)
        self.sim.events.at(at, lambda: self._tick(committee, seat, at))

    def _tick(self, committee: Committee, seat: Seat, at: int) -> None:
        seat.ticks.discard(at)
        if self.committees.get(committee.sid) is not committee or not seat.up or committee.asleep or committee.sid in self.sim.stopped:
            return  # a committee reseated since, a member down, an idle shard (woken later) or a stopped one
        self._act(committee, seat, seat.machine.tick(self.sim.events.now))
        self._build(committee, seat)

    # -- blocks --------------------------------------------------------------------------

    def _build(self, committee: Committee, seat: Seat) -> None:
        """Build the block ``seat`` was asked for, once this shard's next slot has come."""
        if seat.need is None or not seat.up:
            return
        sim, sid = self.sim, committee.sid
        shard = sim.machines[sid]
        height, round_ = seat.need
        if seat.machine.height != height or seat.machine.round != round_ or not seat.machine.wants_block or shard.height + 1 != height:
            seat.need = None
            return
        now = sim.events.now
        if now < committee.next_build or self._faulty(committee, seat, "silent", height) or sid in sim.retiring:
            return  # the shard's next tick asks again
        self._give_back(committee)  # this height's earlier blocks return their work: nothing is built twice
        built = shard.build(now, seat.node)
        sim.note_refusals(built.refused)
        proposal = built.proposal
        if proposal is None:
            return
        seat.need = None
        committee.next_build = now + sim.sc.timing.block_interval
        if sid in sim.liars:
            lie = sim.liars.tamper(sim.chain, proposal.block, tuple(committee.seats), seat.node)
            if lie is not proposal.block:
                committee.lies.add(lie.hash)
                proposal = replace(proposal, block=lie)
        committee.blocks[proposal.block.hash] = len(committee.built)
        committee.built.append(proposal)
        delay = sim.costs.build_ms(proposal.block, sim._size(proposal.block))
        sim.events.after(delay, lambda: self._propose(committee, seat, proposal))

    def _propose(self, committee: Committee, seat: Seat, proposal: Proposal) -> None:
        if self.committees.get(committee.sid) is not committee or not seat.up:
            return
        actions = seat.machine.propose(proposal.block, self.sim.events.now)
        if any(isinstance(a, cm.Refused) for a in actions):
            self._give_back(committee)  # the round passed while it was built
        self._act(committee, seat, actions)

    def _give_back(self, committee: Committee) -> None:
        shard = self.sim.machines[committee.sid]
        for index, proposal in enumerate(committee.built):
            if index not in committee.returned:
                committee.returned.add(index)
                shard.on_rejected(proposal)

    def _validate(self, sid: str, node: bytes, block: Block) -> str | None:
        """The member's judgment of a proposal, made once per block for the members alike."""
        committee = self.committees[sid]
        if block.hash in committee.lies and block.header.producer == node:
            return None  # a byzantine proposer vouches for its own block
        if block.height != committee.height:  # a member behind: the shared ledger holds this height already
            decided = self.final.get((sid, block.height))
            return None if decided == block.hash else f"height {block.height} of {sid} is decided already"
        if block.hash not in committee.verdicts:
            committee.verdicts[block.hash] = self.sim.judge_proposal(sid, block)
            if committee.verdicts[block.hash] is not None:
                self.stats["refused_proposals"] += 1
        return committee.verdicts[block.hash]

    def _decided(self, sid: str, seat: Seat, block: Block, decided_round: int) -> None:
        """``seat`` holds a quorum certificate for ``block``. The first such decision of a height
        makes the block final; every later one must name the same block (safety)."""
        committee = self.committees[sid]
        decided = self.final.get((sid, block.height))
        if decided is not None:
            if decided != block.hash:
                self.forks.append(f"{sid}#{block.height}: member {seat.node.hex()[:12]} decided {block.hash.hex()[:12]}, "
                                  f"the height's final block is {decided.hex()[:12]}")
            self._advance(committee, seat, block)
            return
        if block.height != committee.height or sid in self.sim.stopped or self._faulty(committee, seat, "silent", block.height):
            return  # a silent member's decision stays with it: it waits to store the others' block
        self.final[(sid, block.height)] = block.hash
        self.last_final[sid] = self.sim.events.now
        shard = self.sim.machines[sid]
        index = committee.blocks[block.hash]
        for other, built in enumerate(committee.built):
            if other != index and other not in committee.returned:
                committee.returned.add(other)
                shard.on_rejected(built)
        proposal = committee.built[index]
        if index in committee.returned:  # its work went back when a later round built again: take it out
            shard.deploys = [d for d in shard.deploys if d not in block.entries]
            shard.specials = [s for s in shard.specials if s not in block.entries]
        self.rounds[decided_round] += 1
        self.sim.decided(sid, replace(proposal, block=block), block)
        shard.forget_final()
        committee.last = block
        if sid in self.sim.stopped:
            return
        height = block.height + 1
        down = {n for n, s in committee.seats.items() if not s.up}
        keys = dict(seat.machine.public_keys)
        if self.sim.chain.committee_at(sid, height) != (tuple(committee.seats), keys):
            self._seat(sid, height, down)
            return
        committee.height = height
        committee.built, committee.returned, committee.blocks, committee.lies, committee.verdicts = [], set(), {}, set(), {}
        committee.twins = {}
        for other in committee.seats.values():
            other.need = None
        self._advance(committee, seat, block)
        size = self.sim._size(block)
        for other in committee.seats.values():  # the others store it when it reaches them (gossip, block sync)
            if other is not seat and other.up:
                delay = self.sim.network.send(sid, sid, size) or 0
                self.sim.events.after(delay, lambda o=other: self._advance(committee, o, block))

    def _advance(self, committee: Committee, seat: Seat, block: Block) -> None:
        """``seat``'s node stored ``block``: its machine moves on to the next height."""
        current = self.committees.get(committee.sid)
        if current is not None and current.seats.get(seat.node) is seat and seat.up and seat.machine.height <= block.height:
            self._act(current, seat, seat.machine.next_height(block, self.sim.events.now))
