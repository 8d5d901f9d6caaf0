"""The membership driver: roster changes as real transactions, epoch keys as real keyrings.

A scenario declares roster actions (``s.roster``, ``s.churn``;
``sagachain.sim.roster_actions``). The driver plays a careful admin: per
enclave it runs one action at a time, and sends an action's next transaction
only once the previous one is final (or failed). Every transaction is an
ordinary signed ``Transaction`` whose script calls a native method of the
enclave's roster account (``core.roster_calls.roster_script``), signed and paid by
``<enclave>.operator``, the account that acts for every node of the enclave in
the simulator; the owner node is the admin (``by``). So MEM-2 and MEM-3 judge
each change exactly as they judge a node's: the removal of the owner fails.

Key material (MEM-3) is built the way a node builds it: ``commit`` on the
roster's key schedule as the finalized chain holds it, with entropy from a
generator seeded by the run's seed, so runs stay byte-for-byte reproducible.
Every member keeps a real :class:`Keyring`. When a block carrying an epoch
record is final, every keyring absorbs the rekey, removed nodes' included:
"holds the key" is what the keyrings opened, and a removed node opening
anything would be counted (``leaked``).

Time: the committer seals before it submits (``CostModel.seal_us`` per box,
``derive_us`` per key-tree path key). A member holds the key when the final
block has reached it (one gossip delay from the roster's shard to the
enclave's first shard, drawn per member from the run's network model, from a
generator of its own so that it never moves the chain's own delays;
partitions are not applied to it) and it has opened its key: one box, and in
the key tree one path step per refreshed ancestor above it.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sagachain.core.block import Block, MixedEntry, OpenEntry, entry_to_wire
from sagachain.core.encoding import encode
from sagachain.core.epoch_keys import KEY_TREE, Change, Keyring, KeySchedule, Rekey
from sagachain.core.keys import KeyPair
from sagachain.core.objects import node_id_for
from sagachain.core.roster import (
    ADMIN,
    MEMBER,
    OWNER,
    RosterEntry,
    entry_id,
    entry_of,
    epoch_id,
    epoch_of,
    head_of,
    read_rekey,
    roster_id,
)
from sagachain.core.roster_calls import ROSTER_ALIAS, Value, gas_limit, key_proof, roster_change, roster_script, takes_rekey
from sagachain.core.system import ROSTER_METHODS
from sagachain.core.tx import Transaction, make_transaction
from sagachain.sim.membership_report import EpochChange, MembershipLog, Refusal
from sagachain.sim.network import Network
from sagachain.sim.roster_actions import (
    BLOCK,
    GRANT_ADMIN,
    INVITE,
    NEW_NODE_OPS,
    REMOVE,
    REVOKE_ADMIN,
    ROTATE,
    RosterAction,
    declared,
)
from sagachain.world.declarations import member_names

if TYPE_CHECKING:
    from sagachain.sim.runner import Simulation

_RULE = re.compile(r"^([A-Z]+-\d+):")


@dataclass
class _Run:
    """One action under way: the roster methods still to call, and what the epoch needs."""

    action: RosterAction
    requested: int
    name: str
    node: bytes
    methods: list[str]
    key: KeyPair | None = None  # the node's new key (join, invite, rotate)
    rekey: bytes = b""  # the key material, built once (an invite's is escrowed until the accept)
    built: int = 0
    tx: Transaction | None = None
    submitted: int = 0


class MembershipDriver:
    """Owned by a ``Simulation``: ``due`` when an action comes due, ``on_final`` for every
    honoured block, ``signing_key`` for the key a committee member signs a block with."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.world = sim.world
        self.log: MembershipLog = sim.metrics.membership
        seed = sim.sc.seed
        self.entropy = random.Random(f"membership/{seed}/entropy").randbytes
        self.delivery = Network(sim.sc.resolved_network(), random.Random(f"membership/{seed}/delivery"), shards=len(sim.machines))
        self.chain_id = self.world.genesis.chain_id
        self.queues: dict[str, deque[tuple[RosterAction, int]]] = {}
        self.running: dict[str, _Run] = {}
        self.nonces: dict[bytes, int] = {}
        self.names: dict[str, bytes] = {n.name: n.id for n in self.world.genesis.nodes}
        self.node_names: dict[bytes, str] = {n.id: n.name for n in self.world.genesis.nodes}
        self.key_pairs: dict[bytes, KeyPair] = {}  # public key -> key pair, for every node key ever used
        self.rotated = False  # whether any node key was rotated: signing then follows the roster
        self.rotations: dict[bytes, int] = {}  # rotations per node, numbering its keys
        self.keyrings: dict[str, dict[bytes, Keyring]] = {}
        self.schedules: dict[str, KeySchedule] = {}  # the schedule as of the last epoch the keyrings absorbed
        self.members_at: dict[str, dict[int, frozenset[bytes]]] = {}  # who was a member in each epoch
        self.removed: dict[str, set[bytes]] = {}
        for enclave in self.world.operators:
            if declared(sim.sc, enclave):
                self._found(enclave)

    # -- set-up ----------------------------------------------------------------------

    def _found(self, enclave: str) -> None:
        """Keyrings for the founding MEMBERs, which open epoch 1 from the genesis."""
        for name in member_names(self.sim.sc, enclave):
            node = node_id_for(KeyPair.derive(self.chain_id, "node", name).public)
            self.names[name], self.node_names[node] = node, name
        for key in self.world.node_keys.values():
            if isinstance(key, KeyPair):
                self.key_pairs[key.public] = key
        chain = self.sim.chain
        record = epoch_of(chain.objects.get(epoch_id(enclave, 1)))
        rekey = read_rekey(record.rekey) if record is not None else None
        assert rekey is not None, "a real-crypto genesis publishes epoch 1 of every enclave"
        empty = KeySchedule(enclave, rekey.strategy)
        rings = {}
        for node, public in chain.schedules[enclave].members.items():
            ring = Keyring(enclave, node, self.key_pairs[public].seed)
            ring.absorb(empty, rekey)
            rings[node] = ring
        self.keyrings[enclave] = rings
        self.schedules[enclave] = chain.schedules[enclave].copy()
        self.members_at[enclave] = {1: frozenset(rings)}
        self.removed[enclave] = set()

    def signing_key(self, shard: str, height: int, node: bytes) -> KeyPair:
        """The key ``node`` signs ``shard``'s block at ``height`` with: the one the roster held for it
        as that block's parent saw it (a seated node may have rotated its key, MEM-5)."""
        key = self.world.node_keys[node]
        if not self.rotated:
            return key  # type: ignore[return-value]
        public = self.sim.chain.committee_at(shard, height)[1].get(node)
        return self.key_pairs.get(public, key) if public is not None else key  # type: ignore[return-value,arg-type]

    # -- actions ---------------------------------------------------------------------

    def due(self, action: RosterAction) -> None:
        self.log.actions += 1
        self.log.pending += 1
        self.queues.setdefault(action.enclave, deque()).append((action, self.sim.events.now))
        self._next(action.enclave)

    def _next(self, enclave: str) -> None:
        queue = self.queues.get(enclave)
        while queue and enclave not in self.running:
            action, requested = queue.popleft()
            run = self._start(action, requested)
            if run is None:
                self.log.pending -= 1
                continue
            self.running[enclave] = run
            self._send(run)

    def _start(self, action: RosterAction, requested: int) -> _Run | None:
        chain = self.sim.chain
        enclave = action.enclave
        entries = {e.node: e for e in chain.roster_entries(enclave)}
        if action.op in NEW_NODE_OPS:
            assert action.node is not None
            key = KeyPair.derive(self.chain_id, "node", action.node)
            node = node_id_for(key.public)
            self.names[action.node], self.node_names[node] = node, action.node
            self.key_pairs[key.public] = key
            self.world.node_keys[node] = key
            head = head_of(chain.objects.get(roster_id(enclave)))
            auto = head is not None and head.policy.auto_join
            methods = ["invite", "accept"] if action.op == INVITE else ["join"] if auto else ["apply", "approve"]
            return _Run(action, requested, action.node, node, methods, key=key)
        if action.node is None:
            node_or_none = self._pick(action.op, entries)
            if node_or_none is None:
                self._skip(action, "no current member fits (owner excluded, and the last seat of a shard is kept)")
                return None
            node = node_or_none
        elif action.node in self.names:
            node = self.names[action.node]
        else:
            self._skip(action, f"node {action.node} never joined")
            return None
        name = self.node_names.get(node, node.hex()[:12])
        if action.op == ROTATE:
            self.rotations[node] = self.rotations.get(node, 0) + 1
            key = KeyPair.derive(self.chain_id, "node", name, "rotation", self.rotations[node])
            self.key_pairs[key.public] = key
            return _Run(action, requested, name, node, ["rotate"], key=key)
        method = {REMOVE: "remove", BLOCK: "block", GRANT_ADMIN: "grant", REVOKE_ADMIN: "revoke"}[action.op]
        return _Run(action, requested, name, node, [method])

    def _pick(self, op: str, entries: dict[bytes, RosterEntry]) -> bytes | None:
        """A random current MEMBER that is not the owner, drawn from the scenario's generator. A
        removal or block spares the last seated MEMBER of a shard, so no committee is left empty."""
        members = [e for node, e in sorted(entries.items()) if e.state == MEMBER and not e.has(OWNER)]
        if op in (REMOVE, BLOCK):
            seated: dict[str, int] = {}
            for e in entries.values():
                if e.state == MEMBER:
                    for shard in e.shards:
                        seated[shard] = seated.get(shard, 0) + 1
            members = [e for e in members if all(seated[s] > 1 for s in e.shards)]
        elif op == GRANT_ADMIN:
            members = [e for e in members if not e.has(ADMIN)]
        elif op == REVOKE_ADMIN:
            members = [e for e in members if e.has(ADMIN)]
        return self.sim.sc.rng.choice(members).node if members else None

    def _skip(self, action: RosterAction, reason: str) -> None:
        self.log.skipped.append({"enclave": action.enclave, "action": action.op, "node": action.node, "reason": reason, "t_ms": self.sim.events.now})

    # -- transactions ----------------------------------------------------------------

    def _send(self, run: _Run) -> None:
        """Build the next roster transaction of ``run`` and submit it once its key material is sealed."""
        chain = self.sim.chain
        enclave = run.action.enclave
        operator = self.world.operators[enclave]
        method = run.methods[0]
        owner = next((e.node for e in chain.roster_entries(enclave) if e.has(OWNER)), b"")
        build_us = 0.0
        if takes_rekey(method):
            change = self._change(run, method)
            if change is not None:
                rekey, _ = chain.schedules[enclave].commit(change, self.entropy)
                run.rekey = encode(rekey)
                run.built = self.sim.events.now
                build_us = self._seal_us(rekey)
            else:
                run.rekey = b""  # blocking a node that is not a MEMBER starts no epoch
        proof = b""
        if run.key is not None:
            node = run.node if method == "rotate" else node_id_for(run.key.public)
            proof = key_proof(enclave, node, run.key, operator)
        values: dict[str, Value] = {
            "by": owner,
            "node": run.node,
            "key": run.key.public if run.key else b"",
            "proof": proof,
            "account": operator,
            "shards": list(run.action.seats),
            "rekey": run.rekey,
            "trait": ADMIN,
        }
        script = roster_script(method, {name: values[name] for name in ROSTER_METHODS[method]})
        tx = make_transaction(
            key=self.world.account_keys[operator],
            sender=operator,
            nonce=self._nonce(operator),
            gas_limit=gas_limit(script, run.rekey),
            gas_payer=operator,
            accounts={ROSTER_ALIAS: roster_id(enclave)},
            script=script,
        )
        run.tx = tx
        self.sim.events.after(math.ceil(build_us / 1000), lambda: self._submit(run, tx))

    def _change(self, run: _Run, method: str) -> Change | None:
        entry = entry_of(self.sim.chain.objects.get(entry_id(run.action.enclave, run.node)))
        return roster_change(method, run.node, entry, run.key.public if run.key else b"")

    def _seal_us(self, rekey: Rekey) -> float:
        costs = self.sim.costs
        return len(rekey.boxes) * costs.seal_us + len(rekey.path) * costs.derive_us

    def _nonce(self, operator: bytes) -> int:
        """One past the operator's last nonce, on chain, queued or sent, skipping refused ones (TX-1)."""
        queued = (q.tx.nonce for m in self.sim.machines.values() for q in m.queue if q.tx.sender == operator)
        nonce = max(self.nonces.get(operator, 0), self.sim.chain.nonces.get(operator, 0), *queued) + 1  # others may sign as it too
        while nonce in self.sim.void.get(operator, ()):
            nonce += 1
        self.nonces[operator] = nonce
        return nonce

    def _submit(self, run: _Run, tx: Transaction) -> None:
        run.submitted = self.sim.events.now
        self.sim.arrive(tx)
        self._watch(run, tx)

    def _watch(self, run: _Run, tx: Transaction) -> None:
        """A transaction refused before execution never reaches a block: notice its void nonce."""
        if self.running.get(run.action.enclave) is not run or run.tx is not tx:
            return
        if tx.nonce in self.sim.void.get(tx.sender, ()):
            refusal = self.sim.refusals.get(tx.id)
            self._refused(run, refusal.rule if refusal else "", refusal.reason if refusal else "refused")
            return
        self.sim.events.after(self.sim.sc.timing.block_interval, lambda: self._watch(run, tx))

    def _refused(self, run: _Run, rule: str, error: str) -> None:
        enclave = run.action.enclave
        self.log.refused.append(Refusal(enclave, run.action.op, run.methods[0], run.name, rule, error, self.sim.events.now))
        self._done(enclave)

    def _done(self, enclave: str) -> None:
        del self.running[enclave]
        self.log.pending -= 1
        self._next(enclave)

    # -- final blocks ------------------------------------------------------------------

    def on_final(self, sid: str, block: Block) -> None:
        """Absorb every epoch the block starts, then move the actions whose transaction it carries."""
        if not self.keyrings:
            return
        size = self.sim._size(block)
        for entry in block.entries:
            if not isinstance(entry, OpenEntry | MixedEntry):
                continue
            for update in entry.updates:
                record = epoch_of(update.value)
                enclave = self.sim.chain.roster_enclaves.get(update.value.owner) if update.value is not None else None
                if record is not None and enclave in self.keyrings and update.id == epoch_id(enclave, record.epoch):
                    self._absorb(enclave, record.rekey, entry, sid, size)
            for run in list(self.running.values()):
                if run.tx is not None and entry.tx.id == run.tx.id:
                    self._step_final(run, entry)

    def _step_final(self, run: _Run, entry: OpenEntry | MixedEntry) -> None:
        if not entry.ok:
            error = entry.error or "failed"
            match = _RULE.match(error)
            self._refused(run, match.group(1) if match else "", error)
            return
        run.methods.pop(0)
        run.tx = None
        if run.methods:
            self._send(run)
        else:
            self._done(run.action.enclave)

    def _absorb(self, enclave: str, data: bytes, entry: OpenEntry | MixedEntry, sid: str, size: int) -> None:
        """Every keyring absorbs the rekey that starts the next epoch; count who holds the key, and when."""
        before = self.schedules[enclave]
        rekey = read_rekey(data)
        if rekey is None or before.problem(rekey) is not None:
            return  # the rules refused it too (MEM-3): no epoch started
        after = before.copy()
        after.apply(rekey)
        rings = self.keyrings[enclave]
        change = rekey.change
        public = self.key_pairs.get(change.key)
        if change.op == "add" and change.node not in rings and public is not None:
            rings[change.node] = Keyring(enclave, change.node, public.seed)
        elif change.op == "rotate" and change.node in rings and public is not None:
            rings[change.node].rotate(public.seed)
            self.rotated = True
        if change.op == "remove":
            self.removed[enclave].add(change.node)
        elif change.op == "add":
            self.removed[enclave].discard(change.node)
        now = self.sim.events.now
        first = self.sim.sc.enclaves[enclave][0][0]
        costs = self.sim.costs
        slots = after.slots() if rekey.strategy == KEY_TREE else {}
        path = [p.index for p in rekey.path]
        latest = now
        missing = leaked = 0
        for node, ring in rings.items():
            key = ring.absorb(before, rekey)
            if node not in after.members:
                leaked += key is not None
                continue
            if key is None:
                missing += 1
                continue
            steps = sum(1 for x in path if _covers(x, slots[node])) if slots else 0
            work = math.ceil((costs.open_us + steps * costs.derive_us) / 1000)
            latest = max(latest, now + (self.delivery.gossip(sid, first, size) or 0) + work)
        missing += sum(1 for node in after.members if node not in rings)
        self.schedules[enclave] = after
        self.members_at[enclave][after.epoch] = frozenset(after.members)
        run = self.running.get(enclave)
        ours = run is not None and run.tx is not None and run.tx.id == entry.tx.id
        self.log.changes.append(EpochChange(
            enclave=enclave,
            strategy=rekey.strategy,
            action=run.action.op if ours and run else "",
            method=(run.methods[0] if ours and run else ""),
            change=change.op,
            node=self.node_names.get(change.node, change.node.hex()[:12]),
            epoch=after.epoch,
            members=len(after.members),
            boxes=len(rekey.boxes),
            sealed_bytes=rekey.sealed_bytes(),
            rekey_bytes=len(data),
            entry_bytes=len(encode(entry_to_wire(entry))),
            requested_ms=run.requested if ours and run else now,
            built_ms=run.built if ours and run else now,
            submitted_ms=run.submitted if ours and run else now,
            final_ms=now,
            all_hold_ms=latest if missing == 0 else None,
            missing=missing,
            leaked=leaked,
        ))



def _covers(x: int, slot: int) -> bool:
    """Tree node ``x`` (array layout, RFC 9420 appendix C) is an ancestor of leaf ``slot``."""
    level = (~x & (x + 1)).bit_length() - 1
    span = (1 << level) - 1
    return (x - span) // 2 <= slot <= (x + span) // 2
