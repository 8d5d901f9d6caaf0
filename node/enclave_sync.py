"""An enclave member's private half: its replica of the enclave's state and its epoch keys.

A node in an enclave keeps the off-chain state of the enclave's shards (an
``EnclaveReplica``) so that it can build enclave blocks and re-execute the
ones it judges (TX-6). That state never travels with a block: a member that
is behind, new, or back from a crash asks another member for the whole
state, sealed under the newest epoch key, and only the roster's MEMBERs get
it (MEM-1, MEM-4). The same keys seal the copy on disk. Epoch keys follow
the roster (MEM-3): a node removed from it holds no key for the next epoch,
stops re-executing, and its copy goes stale.

Everything here is about one question, whether this node holds the current
state and may use it, so the shard driver and the ledger task ask it rather
than reading replicas and keys themselves.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from node.config import NodeConfig
from node.connections import Link
from node.enclave_keys import EnclaveKeys
from node.messages import EnclaveState, GetEnclaveState
from node.storage import NodeStore
from node.subscriptions import Subscriptions
from node.wire import REQUEST, ErrorMessage, ProtocolError
from sagachain.core.encoding import decode, encode
from sagachain.core.roster import MEMBER
from sagachain.errors import InputError, SagaError
from shards.chainview import ChainView, Judged
from shards.enclave_replica import EnclaveReplica
from shards.enclave_store import EnclaveStore

log = logging.getLogger("sagachain.node")

NON_MEMBER_ASKS = 10  # a node holding no epoch key asks for enclave state every this many catch-up rounds (to hear MEM-1)


class EnclaveSync:
    """The replicas and epoch keys of the enclaves named in the node's config."""

    def __init__(self, *, directory: Path, config: NodeConfig, node_id: bytes, seeds: list[bytes], store: NodeStore,
                 view: ChainView, names: dict[bytes, str], subscriptions: Subscriptions) -> None:
        self.dir, self.node_id, self.store, self.view, self.names = directory, node_id, store, view, names
        self.subscriptions = subscriptions
        self.replicas: dict[str, EnclaveReplica] = {}
        self.epoch_keys: dict[str, EnclaveKeys] = {}
        chain = view.chain
        for enclave in config.enclaves:
            record = chain.enclaves.get(enclave)
            if record is None:
                raise InputError(f"{directory}: config names enclave {enclave!r}, which is not in the genesis {sorted(chain.enclaves)}")
            self.epoch_keys[enclave] = EnclaveKeys(enclave, node_id, seeds)
            self.epoch_keys[enclave].follow(chain)
            self.replicas[enclave] = self._load_replica(enclave, record.shards, record.state_commitment)
            self.track(enclave)

    def _load_replica(self, enclave: str, shards: tuple[str, ...], commitment: bytes) -> EnclaveReplica:
        """The state from the file, sealed under the epoch key it names; else the genesis bundle,
        sealed under epoch 1's key, for a founding member. A node holding neither asks a member."""
        replica = EnclaveReplica(enclave, shards)
        keys = self.epoch_keys[enclave].keys
        sealed = self.store.enclave_state(enclave)
        heads_raw = self.store.meta(f"enclave-heads/{enclave}")
        epoch_raw = self.store.meta(f"enclave-epoch/{enclave}")
        bundle = self.dir / f"enclave-{enclave}.genesis"
        if sealed is not None and heads_raw is not None and epoch_raw is not None and decode(epoch_raw) in keys:
            replica.install(EnclaveStore.unseal(keys[decode(epoch_raw)], sealed.sealed), decode(heads_raw))
        elif 1 in keys and bundle.is_file():
            state = EnclaveStore.unseal(keys[1], bundle.read_bytes())
            if state.commitment() != commitment:
                raise InputError(f"{bundle} does not match the genesis commitment of enclave {enclave}; it belongs to another chain")
            replica.install(state, {})
        return replica

    def track(self, enclave: str) -> None:
        """Re-execute the enclave's blocks (TX-6) exactly while this node's replica is current and
        it holds the newest epoch key: a removed node stops following the state (MEM-1), its copy
        goes stale, and a member refuses it a new one."""
        replay = self.view.replay
        assert replay is not None
        replica = self.replicas[enclave]
        if replica.current(self.view.heads) and self.epoch_keys[enclave].latest() is not None:
            replay.track(replica.store)
        else:
            replay.untrack(enclave)

    def track_all(self) -> None:
        """After a batch of final blocks is stored: re-execute exactly the current replicas."""
        for enclave in self.replicas:
            self.track(enclave)

    def can_build(self, enclave: str) -> bool:
        """Whether this node may propose an enclave block: a stale replica would build on old
        state (it waits for the whole state), and without the newest key it sends no delta."""
        return self.replicas[enclave].current(self.view.heads) and self.epoch_keys[enclave].latest() is not None

    def can_judge(self, enclave: str) -> bool:
        """Whether this node can judge a state-changing block of ``enclave`` now (TX-6)."""
        if self.epoch_keys[enclave].latest() is None:
            # removed, yet seated until a block of this shard sees the removal (``committee_at``):
            # it judges the block's public part only, for it may not read the enclave's state
            return True
        return self.view.replay is not None and self.view.replay.tracks(enclave)

    def members(self, enclave: str) -> dict[bytes, bytes]:
        """The enclave's MEMBERs and their node keys (MEM-1): its roster, or without one its genesis committees."""
        chain = self.view.chain
        if enclave in chain.seats:
            return {e.node: e.key for e in chain.roster_entries(enclave) if e.state == MEMBER}
        return {n: chain.nodes[n].public_key for s in chain.enclaves[enclave].shards for n in chain.shards[s].committee}

    # -- a final block -----------------------------------------------------------------------------

    def on_final(self, judged: Judged) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """Apply a final block to the replicas and follow the roster's epochs; return what the
        block's SQLite transaction must store with it: each changed state sealed under the
        newest epoch key (MEM-4), and the heads and epoch that state is as of."""
        block = judged.block
        sealed: dict[str, bytes] = {}
        meta: dict[str, bytes] = {}
        for enclave, replica in self.replicas.items():
            changed = block.shard in replica.shards and replica.on_final(block, replayed=judged.reexecuted)
            if block.shard in replica.shards:
                for v in judged.replayed:  # final although this member's own execution differs (TX-6)
                    log.error("enclave %s: final block %s/%d differs from this member's re-execution, which it keeps: %s: %s",
                              enclave, block.shard, block.height, v.rule, v.reason)
            opened = self._follow_epochs(enclave)
            latest = self.epoch_keys[enclave].latest()
            if replica.has_state and latest is not None and (changed or opened):
                sealed[enclave] = replica.store.seal(latest[1], os.urandom(24))  # at rest under the newest key (MEM-4)
                meta[f"enclave-heads/{enclave}"] = encode(dict(replica.heads))
                meta[f"enclave-epoch/{enclave}"] = encode(latest[0])
        return sealed, meta

    def _follow_epochs(self, enclave: str) -> list[int]:
        """Take up the epochs the roster started; log what this node gained or lost (MEM-3)."""
        keys = self.epoch_keys[enclave]
        before = keys.epoch
        opened = keys.follow(self.view.chain)
        for epoch, reason in sorted(keys.refused.items()):
            if before < epoch <= keys.epoch:
                log.error("enclave %s epoch %d: the key material does not open consistently for this node (MEM-3): %s", enclave, epoch, reason)
        if keys.epoch > before:
            if keys.latest() is not None:
                log.info("enclave %s: holds the key of epoch %d", enclave, keys.epoch)
            elif self.node_id in self.members(enclave):
                log.warning("enclave %s: epoch %d is sealed to a key of this node it does not run with (a rotation, MEM-5): "
                            "restart it once node.key holds the new seed", enclave, keys.epoch)
            elif before in keys.keys or before == 0:
                log.warning("enclave %s: no key for epoch %d: this node is no longer a MEMBER (MEM-3)", enclave, keys.epoch)
        return opened

    # -- the whole state between members --------------------------------------------------------

    def ask_for_state(self, links: dict[bytes, Link], turn: int) -> None:
        """Catch-up round ``turn``: ask a member for each enclave whose replica is not current.
        A node without the newest key asks only now and then, to hear that it is no MEMBER."""
        for enclave, replica in self.replicas.items():
            holds_key = self.epoch_keys[enclave].latest() is not None
            if not replica.current(self.view.heads) and (holds_key or turn % NON_MEMBER_ASKS == 0):
                members = [n for n in sorted(self.members(enclave)) if n in links and n != self.node_id]
                if members:
                    links[members[turn % len(members)]].send(GetEnclaveState(enclave=enclave))

    def on_state_request(self, link: Link, message: GetEnclaveState) -> None:
        """Send the whole state, sealed under the newest epoch key, to a MEMBER only (MEM-1, MEM-4)."""
        enclave = message.enclave
        assert link.node_id is not None
        name = self.names.get(link.node_id, link.node_id.hex()[:12])
        replica = self.replicas.get(enclave)
        if enclave not in self.view.chain.enclaves or replica is None:
            link.send(ErrorMessage(code=REQUEST, reason=f"this node is not a member of enclave {enclave!r}", rule=None))
            return
        members = self.members(enclave)
        if link.node_id not in members:
            reason = (f"node {name} is not a MEMBER of enclave {enclave}'s roster, so it may not hold the enclave's state "
                      "(MEM-1); apply and ask an admin to approve")
            log.warning("refused enclave state to %s: %s", name, reason)
            self.subscriptions.publish("roster", {"enclave": enclave, "node": self.view.chain.nodes[link.node_id].public_key
                                                  if link.node_id in self.view.chain.nodes else b"", "change": "refused", "reason": reason})
            link.send(ErrorMessage(code=REQUEST, reason=reason, rule="MEM-1"))
            return
        latest = self.epoch_keys[enclave].latest()
        if not replica.current(self.view.heads) or latest is None:
            link.send(ErrorMessage(code=REQUEST, reason=f"the state of {enclave} here is not current; ask another member", rule=None))
            return
        epoch, key = latest
        sealed = replica.store.seal(key, os.urandom(24))
        link.send(EnclaveState(enclave=enclave, heads=dict(replica.heads), epoch=epoch, sealed=sealed))
        log.info("sent the state of enclave %s to member %s", enclave, name)
        self.subscriptions.publish("roster", {"enclave": enclave, "node": members[link.node_id], "change": "joined", "reason": None})

    def on_state(self, link: Link, message: EnclaveState) -> None:
        """Install a member's state when this replica is behind and the state is not older than our chain."""
        replica = self.replicas.get(message.enclave)
        if replica is None or link.node_id not in self.members(message.enclave):
            return
        if replica.current(self.view.heads):
            return
        if any(message.heads.get(s, 0) < self.view.heads.get(s, 0) for s in replica.shards):
            return  # older than our chain: the deltas in between are gone; ask again later
        key = self.epoch_keys[message.enclave].keys.get(message.epoch)
        if key is None:
            return  # sealed under an epoch this node's chain has not reached: ask again later
        try:
            state = EnclaveStore.unseal(key, message.sealed)
        except SagaError as exc:
            raise ProtocolError(f"enclave state from {link.name}: {exc}", rule="MEM-4") from None
        replica.install(state, message.heads)
        self.track(message.enclave)
        log.info("joined enclave %s: state received from %s as of %s, sealed under epoch %d", message.enclave, link.name, message.heads, message.epoch)

    def status(self) -> dict[str, Any]:
        return {e: {"current": r.current(self.view.heads), "heads": dict(r.heads), "shards": list(r.shards),
                    "epoch": self.epoch_keys[e].epoch, "holds_key": self.epoch_keys[e].latest() is not None}
                for e, r in self.replicas.items()}
