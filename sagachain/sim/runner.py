"""The simulator: drives the shard machines with virtual time and a simulated network.

Leaders build a block every ``block_interval`` virtual milliseconds when they
have something to put in it. A block becomes final after the leader's build
time, a hop to the committee, the validators' time and a hop back (the costs
come from ``sagachain.sim.costs``, the hops from ``sagachain.sim.network``). A
final block is judged by the public ledger with the same rule checks the
auditor runs, written to the chain file in the order blocks became final, and
gossiped to every other shard. L2L requests travel one unreliable hop.

Faults a scenario may schedule: network partitions (messages between groups
wait for the heal), committee nodes crashing and restarting (a shard without
a quorum produces nothing), the colluding committees of ``sagachain.sim.byzantine``
and the lying proposers of ``sagachain.sim.liars``.

Network delays are drawn from the run's one seeded generator; nothing else is
random. The same scenario and seed therefore give the same chain file, byte
for byte.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from runtimes import compile_class
from sagachain.core.block import (
    AcquireEntry,
    Block,
    BreakawayEntry,
    DeployEntry,
    EnclaveEntry,
    MixedEntry,
    OpenEntry,
    ReleaseEntry,
    RollbackEntry,
    Vote,
)
from sagachain.core.block import block_to_wire
from sagachain.core.encoding import encode
from sagachain.core.ledger import ChainState
from sagachain.core.rules import REFUSED, Tools, judge_block
from sagachain.core.tx import Transaction, make_transaction
from sagachain.errors import InputError, RuleViolation
from sagachain.sim import byzantine
from sagachain.sim.engine import EventQueue
from sagachain.sim.liars import Liars
from sagachain.sim.members import MemberCommittees
from sagachain.sim.mail import MailDriver, mail_driver
from sagachain.sim.membership import MembershipDriver
from sagachain.sim.metrics import Metrics, TransferClock
from sagachain.sim.network import Network
from sagachain.sim.roster_actions import ACTION as ROSTER_ACTION
from sagachain.sim.scaling import Scaler
from sagachain.sim.timeseries import TimeSeries
from sagachain.sim.scenario import LIES, MEMBER_FAULTS, MEMBERS, Misbehaviour, Scenario, Scheduled
from sagachain.world.build import World
from shards.execution import kind_of
from shards.enclave_store import EnclaveStore
from shards.shard import Proposal, Rejection, Request, ShardMachine


@dataclass
class SimResult:
    world: World
    chain: ChainState
    blocks: list[Block]
    metrics: Metrics
    end_time: int
    wall_seconds: float
    series: TimeSeries
    network: Network
    mail: MailDriver | None = None  # the run's mail, when its scenario sends any (sagachain.sim.mail)


class Simulation:
    def __init__(self, world: World, tools: Tools, on_progress: Callable[[int], None] | None = None) -> None:
        self.world = world
        self.sc: Scenario = world.scenario
        self.tools = tools
        self.chain = world.chain()
        self.events = EventQueue()
        self.metrics = Metrics()
        self.blocks: list[Block] = []
        self.placement = self.sc.placement_strategy
        # SH-2: shards taking accounts and transactions now; enclave shards always do
        self.live: set[str] = set(self.sc.initially_live()) | {r.id for r in world.genesis.shards if r.enclave}
        self.retiring: set[str] = set()
        self.scaler = Scaler(self.sc.scaling_policy) if self.sc.scaling_policy else None
        self._waits_seen = 0
        self.void: dict[bytes, set[int]] = {}  # refused nonces per sender; every machine is told of each (note_refusals)
        self.refusals: dict[bytes, Rejection] = {}  # refused transactions by id, for drivers that wait on one
        self.machines = {
            r.id: ShardMachine(
                r, self.chain, store=self._replica(r.id, r.enclave), placement=self.placement, live=frozenset(self.live),
                max_txs=self.sc.timing.block_txs,
            )
            for r in world.genesis.shards
        }
        self.state_links: dict[tuple[str, str], int] = {}  # (from, to) -> last delivery time, FIFO
        self.state_arrived: set[tuple[str, int, str]] = set()  # (shard, height, replica) applied
        self.held_state: list[tuple[str, str, Block, Proposal]] = []
        self.bad: dict[str, list[Misbehaviour]] = {}
        for m in self.sc.misbehaviours:
            if m.shard not in self.machines:
                raise InputError(f"misbehaviour names unknown shard {m.shard!r}; shards: {sorted(self.machines)}")
            if m.kind in MEMBER_FAULTS and self.sc.committee_model != MEMBERS:
                raise InputError(f"misbehaviour {m.kind!r} of shard {m.shard} is one member's: it needs s.committees('members')")
            if m.kind not in LIES + MEMBER_FAULTS:
                self.bad.setdefault(m.shard, []).append(m)
        members = self.sc.committee_model == MEMBERS
        self.liars = Liars([m for m in self.sc.misbehaviours if m.kind in LIES], rotation=1 if members else 0)
        self.rounds: dict[str, int] = {}  # a shard's round at its next height: a refused proposal passes it on
        self.network = Network(self.sc.resolved_network(), random.Random(f"network/{self.sc.seed}"), shards=len(self.machines))
        self.costs = self.sc.cost_model
        self.held: list[tuple[str, str, Block]] = []  # gossip waiting for a partition to heal
        self.final_at: dict[tuple[str, int], int] = {}
        self.sizes: dict[bytes, int] = {}
        self.down: dict[str, int] = {sid: 0 for sid in self.machines}  # crashed committee members
        self.series = TimeSeries(self.sc.timing.sample)
        self.transfers = TransferClock()
        self.in_flight: set[str] = set()
        self.stopped: set[str] = set()
        self.forced: dict[str, list[Transaction]] = {}
        self.on_progress = on_progress
        self.mail = mail_driver(self)
        self.membership = MembershipDriver(self)  # roster actions and epoch keys (sagachain.sim.membership)
        self.committees = MemberCommittees(self) if members else None  # else a quorum count (tick, finalize)
        self.watch: Callable[[Block], None] | None = None  # called after each final block is judged (sagachain.sim.fuzz)

    # -- set-up --------------------------------------------------------------------

    def schedule(self) -> None:
        nonces: dict[bytes, int] = {}
        for order, decl in sorted(enumerate(self.sc.txs), key=lambda it: (it[1].at, it[0])):
            sender = self.world.account(decl.sender)
            nonces[sender] = nonces.get(sender, 0) + 1
            tx = make_transaction(
                key=self.world.account_keys[sender],
                sender=sender,
                nonce=nonces[sender],
                gas_limit=decl.gas_limit,
                gas_payer=self.world.account(decl.payer),
                accounts={alias: self.world.account(name) for alias, name in decl.accounts.items()},
                script=decl.script,
            )
            self.events.at(decl.at, lambda tx=tx: self.arrive(tx))
        for index, sid in enumerate(self.machines):
            offset = (index * 37) % self.sc.timing.block_interval
            self.events.at(self.sc.timing.block_interval + offset, lambda sid=sid: self.tick(sid))
        for item in self.sc.scheduled:
            self.events.at(item.at, lambda item=item: self.operate(item))
        self.events.at(self.sc.timing.sample, self.sample, priority=1)
        if self.mail is not None:
            self.mail.start()
        if self.committees is not None:
            self.committees.start([sid for sid in self.machines if sid not in self.bad])

    def sample(self) -> None:
        self.series.sample(self.events.now, self)
        if self.scaler is not None:
            self.scale()
        self.events.after(self.sc.timing.sample, self.sample, priority=1)

    def scale(self) -> None:
        """SH-2: feed the queue wait to the scaler and add or retire a public shard, telling every machine."""
        assert self.scaler is not None
        now = self.events.now
        waits = self.metrics.queue_waits[self._waits_seen :]
        self._waits_seen = len(self.metrics.queue_waits)
        waits += [now - q.arrived for sid in self.live_public() for q in self.machines[sid].queue]
        signal = sum(waits) / len(waits) if waits else 0.0
        pool = [sid for sid, _ in self.sc.public]
        change = self.scaler.decide(now, signal, len(self.live_public()), len(pool))
        if change > 0:
            sid = next(s for s in pool if s not in self.live)
            self.retiring.discard(sid)
            self.live.add(sid)
            self.metrics.shard_changes.append((now, "add", sid))
        elif change < 0:
            sid = max(self.live_public(), key=pool.index)
            self.live.discard(sid)
            self.retiring.add(sid)
            self.metrics.shard_changes.append((now, "remove", sid))
        if change:
            for machine in self.machines.values():
                machine.set_live(frozenset(self.live))

    def live_public(self) -> list[str]:
        return [sid for sid, _ in self.sc.public if sid in self.live]

    def _drain(self, sid: str) -> None:
        """A retiring shard hands its accounts and queue to live shards; once empty it goes dormant."""
        machine = self.machines[sid]
        for item in machine.drain(self._destination):
            self.machines[self.route(item.tx)].queue.append(item)
        if machine.holds_nothing():
            self.retiring.discard(sid)

    def _destination(self, account: bytes) -> str:
        home = self.placement.home(account, self.chain, self.live)
        if home is not None:
            return home
        live = self.live_public()
        return live[int.from_bytes(account[:8], "big") % len(live)]

    def _replica(self, sid: str, enclave: str | None) -> EnclaveStore | None:
        """Each enclave shard keeps its own replica of the enclave's off-chain state; the
        first shard's is the world's store (what the end-of-run checks read)."""
        if enclave is None:
            return None
        store = self.world.stores[enclave]
        return store if sid == self.sc.enclaves[enclave][0][0] else store.copy()

    def has_quorum(self, sid: str) -> bool:
        """SH-1: more than two thirds of the committee must be up to sign a block."""
        size = len(self.machines[sid].committee())
        return 3 * (size - self.down[sid]) > 2 * size

    # -- events --------------------------------------------------------------------

    def arrive(self, tx: Transaction) -> None:
        self.metrics.submitted += 1
        shard = self.route(tx)
        if self._misbehaving(shard, "cross_enclave"):  # a colluding committee keeps what it should refuse
            try:
                kind_of(self.chain, tx)
            except RuleViolation:
                self.forced.setdefault(shard, []).append(tx)
                return
        machine = self.machines[shard]  # refuses what it must (CMI-4, ...), voiding the nonce
        self.note_refusals(machine.submit(tx, self.events.now, self.tools))

    def route(self, tx: Transaction) -> str:
        """The shard that should run ``tx``: the home (or else the holder) of its first
        enclave account, or of its payer for an open transaction (see ``_unloaded``)."""
        accounts = [a for a in tx.account_ids() if self.chain.account_enclave(a) is not None] or [tx.gas_payer]
        account = accounts[0]
        home = self.placement.home(account, self.chain, self.live)
        if home is not None:
            return home
        transit = self.chain.transit.get(account)
        holder = transit.to_shard if transit else self.chain.owner[account]
        if holder not in self.live:
            return self._destination(account)
        if self.chain.account_enclave(account) is None:
            return self._unloaded(holder)
        return holder

    def _unloaded(self, holder: str) -> str:
        """Locality first, but not into a backlog: a public holder whose queue is more than
        twice the shortest live queue (plus a block's worth) yields to the shortest, which
        then pulls the accounts (L2L-1). This is how a newly added shard gets work (SH-2)."""
        loads = {sid: len(self.machines[sid].queue) for sid in self.live_public()}
        if holder not in loads:
            return holder
        least = min(loads, key=lambda sid: (loads[sid], sid))
        return least if loads[holder] > 2 * loads[least] + self.sc.timing.block_txs else holder

    def tick(self, sid: str) -> None:
        if sid in self.stopped:
            return
        machine = self.machines[sid]
        now = self.events.now
        if sid in self.retiring:
            self._drain(sid)
        elif sid not in self.live:  # a dormant shard of the pool (SH-2)
            if self.committees is not None and sid in self.committees:
                self.committees.on_tick(sid)  # nothing to do: its members sleep
            self.events.after(self.sc.timing.block_interval, lambda: self.tick(sid))
            return
        members = self.committees is not None and sid in self.committees
        if sid not in self.in_flight and self.has_quorum(sid):
            for owner, request in machine.requests(now):
                self.transfers.requested.setdefault((request.account, sid), now)
                delay = self.network.send(sid, owner, reliable=False)
                if delay is not None:
                    self.events.after(delay, lambda o=owner, r=request: self.deliver_request(o, r))
        if members:
            self.committees.on_tick(sid)  # type: ignore[union-attr]
        elif sid not in self.in_flight and self.has_quorum(sid):
            committee = machine.committee()
            producer = committee[(machine.height + self.rounds.get(sid, 0)) % len(committee)]
            built = machine.build(now, producer)
            self.note_refusals(built.refused)
            proposal = built.proposal
            if proposal is not None:
                if sid in self.liars:
                    proposal = replace(proposal, block=self.liars.tamper(self.chain, proposal.block, committee, producer))
                self.in_flight.add(sid)
                size = self._size(proposal.block)
                votes = self.network.send(sid, sid, size) or 0
                back = self.network.send(sid, sid) or 0
                delay = self.costs.build_ms(proposal.block, size) + votes + self.costs.validate_ms(proposal.block, size, len(committee)) + back
                self.events.after(delay, lambda: self.finalize(sid, proposal))
        self.events.after(self.sc.timing.block_interval, lambda: self.tick(sid))

    def deliver_request(self, owner: str, request: Request) -> None:
        if owner in self.stopped:
            return
        self.note_refusals(self.machines[owner].on_request(request))

    def finalize(self, sid: str, proposal: Proposal) -> None:
        """The modelled committee's verdict on a proposal: every member signs it, or (a rule
        broken, TX-6 included) none does and the next member proposes."""
        self.in_flight.discard(sid)
        machine = self.machines[sid]
        block = self._misbehave(sid, proposal.block)
        digest = block.hash
        sign = self.membership.signing_key  # a seated node that rotated its key signs with the roster's key for it
        block = Block(header=block.header, entries=block.entries, qc=tuple(Vote(signer=n, signature=sign(sid, block.height, n).sign(digest)) for n in machine.committee()))
        if sid in self.bad or not self.chain.shard_active(sid):
            self.decided(sid, proposal, block)  # colluders sign what they like: the readers judge it
            return
        if self.judge_proposal(sid, block, always=False, keep=True) is not None:
            machine.on_rejected(proposal)
            self.rounds[sid] = self.rounds.get(sid, 0) + 1  # the next member proposes
            return
        self.rounds.pop(sid, None)
        self._record(sid, proposal, block, applied=True)

    def judge_proposal(self, sid: str, block: Block, always: bool = True, keep: bool = False) -> str | None:
        """What an honest member makes of a proposal before it votes: it re-executes it on its
        enclave replica (TX-6), then judges it as every reader judges blocks; the first rule
        broken, or None. ``always=False``: re-execute only where a liar sits (``Liars``).
        ``keep``: an acceptable block stays applied (the modelled committee signs at once)."""
        found = self.liars.reexecute(self.chain, block, self.machines[sid].store, always=always)
        verdict = judge_block(self.chain, block, self.tools, proposal=True, keep=keep) if not found else None
        violations = found or (verdict.violations if verdict is not None else [])
        for v in violations:
            self.metrics.rejected_blocks[v.rule] += 1
        return f"{violations[0].rule}: {violations[0].reason}" if violations else None

    def decided(self, sid: str, proposal: Proposal, block: Block) -> None:
        """A block with its quorum certificate: judged as every reader judges a final block."""
        verdict = judge_block(self.chain, block, self.tools)
        if verdict.terminated:
            self.metrics.terminated[verdict.terminated] = f"{sid}#{block.height}"
            # MINT-4: nobody honours the enclave's blocks any more; its shards stop producing
            self.stopped.update(s for s, m in self.machines.items() if m.enclave == verdict.terminated)
        elif verdict.outcome == REFUSED:
            self.metrics.halted[sid] = f"{sid}#{block.height}: {', '.join(verdict.rules)}"
            self.stopped.add(sid)  # its later blocks would all build on the refused one
        self._record(sid, proposal, block, applied=verdict.applied)

    def _record(self, sid: str, proposal: Proposal, block: Block, applied: bool) -> None:
        machine = self.machines[sid]
        self.blocks.append(block)
        if self.watch is not None:
            self.watch(block)
        self.metrics.blocks[sid] += 1
        if not applied:
            self.metrics.ignored_blocks += 1
            machine.on_own_ignored(block)
            return
        self._honour(sid, machine, proposal, block)

    def _honour(self, sid: str, machine: ShardMachine, proposal: Proposal, block: Block) -> None:
        now = self.events.now
        self.placement.observe(block, self.chain, self.live)
        if machine.store is not None:
            machine.store.write(proposal.enclave_writes)
            machine.store.snapshots.update(proposal.snapshots)
            self._share_state(sid, block, proposal)
        kind = "enclave" if machine.enclave else "public"
        self.metrics.coinbase[kind] += block.header.coinbase
        for entry in block.entries:
            if isinstance(entry, OpenEntry | EnclaveEntry | MixedEntry):
                self.metrics.committed[entry.kind] += 1
                if isinstance(entry, OpenEntry):
                    self.metrics.gas_charged["open"] += entry.gas_used
                    self.metrics.failed_open += 0 if entry.ok else 1
                else:
                    self.metrics.gas_charged[entry.kind] += entry.gas_charged
                    self.metrics.floor_applied += entry.gas_charged == block.header.gas_floor
            elif isinstance(entry, ReleaseEntry):
                self.metrics.releases += 1
                self.transfers.released(entry.account, entry.to_shard, now)
            elif isinstance(entry, AcquireEntry):
                self.metrics.acquires += 1
                self.metrics.transfer_parts.append(self.transfers.acquired(entry.account, sid, now))
            elif isinstance(entry, RollbackEntry) and machine.store is not None:
                machine.store.restore(entry.to)
            elif isinstance(entry, BreakawayEntry):
                self.metrics.broken_away[entry.enclave] = f"{sid}#{block.height}"
                self.stopped.update(s for s, m in self.machines.items() if m.enclave == entry.enclave)
        for item in proposal.included:
            self.metrics.latencies.append(now - item.arrived)
            self.metrics.queue_waits.append(block.header.time - item.arrived)
        machine.on_final(block)
        self.gossip(sid, block)
        if self.mail is not None:
            self.mail.on_final(block)
        self.membership.on_final(sid, block)

    def deliver_final(self, target: ShardMachine, block: Block) -> None:
        """A final block reaches another shard: it learns heads and the releases addressed to it.

        A shard of the same enclave also expects that block's off-chain state
        changes; if they have not come within ``state_timeout``, its members
        notice that the producer withholds them.
        """
        for entry in block.entries:
            if isinstance(entry, ReleaseEntry) and entry.to_shard == target.id:
                self.transfers.known(entry.account, target.id, self.events.now)
        target.on_final(block)
        if target.enclave is not None and target.enclave == self.chain.shard_enclave(block.shard) and _changes_state(block):
            final_at = self.final_at.get((block.shard, block.height), self.events.now)
            self.events.after(self.sc.timing.state_timeout, lambda: self._expect_state(block, target.id, final_at))

    def _expect_state(self, block: Block, replica: str, final_at: int) -> None:
        if (block.shard, block.height, replica) not in self.state_arrived:
            self.metrics.withheld_noticed.append((block.shard, block.height, replica, self.events.now - final_at))

    def _share_state(self, sid: str, block: Block, proposal: Proposal) -> None:
        """Send a final enclave block's off-chain writes to the enclave's other shards (sealed, MEM-4),
        unless the producer withholds them."""
        if not (proposal.enclave_writes or proposal.snapshots):
            return
        self.final_at[(sid, block.height)] = self.events.now
        if self._misbehaving_now(sid, "withhold", block.height):
            self.metrics.withheld_blocks += 1
            return
        enclave = self.machines[sid].enclave
        for other in self.sc.enclaves[enclave or ""][0]:
            if other != sid:
                self._send_state(sid, other, block, proposal)

    def _send_state(self, sid: str, other: str, block: Block, proposal: Proposal) -> None:
        size = sum(len(v.encode()) for v in proposal.enclave_writes.values() if v is not None)
        delay = self.network.send(sid, other, size)
        if delay is None:
            self.held_state.append((sid, other, block, proposal))
            return
        arrive = max(self.state_links.get((sid, other), 0), self.events.now + delay)  # in order per link
        self.state_links[(sid, other)] = arrive
        self.events.at(arrive, lambda: self._apply_state(sid, other, block, proposal))

    def _apply_state(self, sid: str, other: str, block: Block, proposal: Proposal) -> None:
        store = self.machines[other].store
        assert store is not None
        store.write(proposal.enclave_writes)
        store.snapshots.update(proposal.snapshots)
        self.state_arrived.add((sid, block.height, other))

    def _size(self, block: Block) -> int:
        """Encoded size of a block, for bandwidth and cost; computed once per block."""
        if block.hash not in self.sizes:
            self.sizes[block.hash] = len(encode(block_to_wire(block)))
        return self.sizes[block.hash]

    def gossip(self, sid: str, block: Block) -> None:
        size = self._size(block)
        for other, target in self.machines.items():
            if other == sid:
                continue
            delay = self.network.gossip(sid, other, size)
            if delay is None:
                self.held.append((sid, other, block))
            else:
                self.events.after(delay, lambda t=target: self.deliver_final(t, block))

    # -- operators and adversaries -------------------------------------------------

    def operate(self, item: Scheduled) -> None:
        if item.action == "deploy":
            self._deploy(item.args)
        elif item.action == "rollback":
            self._rollback(item.args)
        elif item.action == "partition":
            self.network.partition(item.args["groups"])
        elif item.action == "heal":
            self.network.heal()
            if self.committees is not None:
                self.committees.heal()
            held, self.held = self.held, []
            for sid, other, block in held:
                delay = self.network.gossip(sid, other, self._size(block)) or 0
                self.events.after(delay, lambda t=self.machines[other], b=block: self.deliver_final(t, b))
            held_state, self.held_state = self.held_state, []
            for sid, other, block, proposal in held_state:
                self._send_state(sid, other, block, proposal)
        elif item.action in ("crash", "restart"):
            sid, nodes = item.args["shard"], int(item.args["nodes"])
            size = len(self.machines[sid].committee())
            self.down[sid] = min(size, self.down[sid] + nodes) if item.action == "crash" else max(0, self.down[sid] - nodes)
            if self.committees is not None and sid in self.committees:
                (self.committees.crash if item.action == "crash" else self.committees.restart)(sid, nodes)
        elif item.action == "split":
            if self.committees is not None and item.args["shard"] in self.committees:
                self.committees.split(item.args["shard"], item.args["groups"])
        elif item.action == ROSTER_ACTION:
            self.membership.due(item.args["action"])
        elif item.action == "breakaway":
            enclave = item.args["enclave"]
            first = self.sc.enclaves[enclave][0][0]
            self.machines[first].breakaway("scenario: enclave leaves the chain")

    def _deploy(self, args: dict[str, object]) -> None:
        deployer = self.world.account(str(args["deployer"]))
        base = next((c for c in self.chain.classes.values() if c.name == args["base"]), None)
        if base is None:
            raise InputError(f"deploy names unknown base class {args['base']!r}")
        bound = self.chain.class_enclave(base.id)
        cls = compile_class(
            name=str(args["name"]), code=str(args["code"]), base=base.id, runtime=self.world.genesis.runtimes[0].id,
            private=False, enclave=bound if self.chain.params.cls3_policy == "permissive" else None, owner=None,
        )
        draft = DeployEntry(cls=cls, deployer=deployer, signature=b"")
        entry = DeployEntry(cls=cls, deployer=deployer, signature=self.world.account_keys[deployer].sign(draft.signed_bytes()))
        shard = str(args["shard"] or self.chain.owner[deployer])
        machine = self.machines[shard]
        if self._misbehaving(shard, "strict_deploy"):
            machine.deploys.append(entry)
            return
        self.note_refusals(machine.submit_deploy(entry, self.tools))

    def _rollback(self, args: dict[str, object]) -> None:
        account = self.world.account(str(args["account"]))
        enclave = self.chain.account_enclave(account)
        if enclave is None:
            raise InputError(f"rollback of {args['account']!r}: only enclave accounts roll back (TX-7)")
        owner = self.chain.owner[account]
        store = self.machines[owner].store
        assert store is not None
        history = [ref for ref, saved in store.snapshots.items() if account in saved]
        back = int(args["back"])  # type: ignore[call-overload]
        if len(history) <= back:
            self.metrics.rejected["TX-7"] += 1
            return
        ref = history[-1 - back]
        target = self.chain.entry_at(ref)
        self.machines[owner].rollback(list(store.snapshots[ref]), ref, target.state_hash)

    def _misbehaving_now(self, sid: str, kind: str, height: int) -> bool:
        return any(m.kind == kind and m.at_height <= height < m.at_height + m.count for m in self.bad.get(sid, []))

    def _misbehaving(self, sid: str, kind: str) -> bool:
        return any(m.kind == kind for m in self.bad.get(sid, []))

    def _misbehave(self, sid: str, block: Block) -> Block:
        for m in self.bad.get(sid, []):
            if m.kind in ("withhold", "strict_deploy") or not m.at_height <= block.height < m.at_height + m.count:
                continue  # those two act elsewhere (state sharing, deploys), not on the block
            tampered: Block | None = None
            if m.kind == "overmint":
                tampered = byzantine.overmint(self.chain, block)
            elif m.kind == "leak_state" and self.machines[sid].store is not None:
                tampered = byzantine.leak_state(self.chain, block, self.machines[sid].store)  # type: ignore[arg-type]
            elif m.kind == "wrong_gas":
                tampered = byzantine.wrong_gas(self.chain, block)
            elif m.kind == "steal_account" and m.target:
                tampered = byzantine.steal_account(self.chain, block, self.world.account(m.target))
            elif m.kind == "cross_enclave" and self.forced.get(sid):
                tampered = byzantine.cross_enclave(self.chain, block, self.forced[sid].pop(0))
            if tampered is not None:
                block = tampered
            else:
                m.at_height += 1  # nothing to tamper with in this block: try the next one
        return block

    def note_refusals(self, rejections: list[Rejection]) -> None:
        """Count what a machine refused, and void each refused transaction's nonce on every
        shard (the refusing one did already), so its sender's later transactions go on anywhere."""
        for rejection in rejections:
            self.metrics.rejected[rejection.rule] += 1
            if rejection.tx is not None:
                tx = rejection.tx
                self.refusals.setdefault(tx.id, rejection)
                self.void.setdefault(tx.sender, set()).add(tx.nonce)
                for machine in self.machines.values():
                    machine.void_nonce(tx.sender, tx.nonce)

    # -- running -------------------------------------------------------------------

    def run(self) -> SimResult:
        started = time.perf_counter()
        self.schedule()
        self.events.run(self.sc.timing.duration, self.on_progress)
        self.series.sample(self.events.now, self)
        if self.liars.by_shard:
            self.metrics.lies = {"told": self.liars.lies_told, "refused": self.liars.lies_refused}
        if self.committees is not None:
            self.metrics.consensus = self.committees.report()
        return SimResult(self.world, self.chain, self.blocks, self.metrics, self.events.now, time.perf_counter() - started, self.series, self.network, self.mail)


def _changes_state(block: Block) -> bool:
    """A block whose enclave transactions or rollbacks change the enclave's off-chain state."""
    return any(isinstance(e, EnclaveEntry | MixedEntry | RollbackEntry) for e in block.entries)
