"""``sagachain node start``: a node process under trio.

The node is a driver, like the simulator: the protocol lives in the pure
machines of ``shards`` (a ``ShardMachine`` and a ``CommitteeMachine`` per
shard whose committee this node serves), in ``shards.chainview`` (which final
blocks to judge, in what order, by the one judge every reader uses; for an
enclave member also its own re-execution, TX-6) and
``shards.enclave_replica``. This module
feeds them messages from the network and the clock, and carries out what
they ask: send messages, build a block, store a final block.

Tasks, all in one trio nursery:

- the listener, and a task per connection reading messages (``_serve``);
- a dialer per configured peer, reconnecting with backoff;
- a task per served shard, ticking its machines every ``TICK`` seconds
  while it has work (``_drive``);
- the ledger task, the only writer of the chain: it applies final blocks
  through the chain view, persists each with its consequences in one SQLite
  transaction (in a worker thread), and only then announces it (gossip,
  events, the committee's next height);
- catch-up: every ``SYNC`` seconds it asks a peer for the blocks after its
  heads, so a node that was down or missed gossip converges.

Every refusal (a bad frame, a bad block, a refused transaction) is logged
with its rule id and counted in the metrics; nothing refused is stored.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
import trio

from node.channel import Channel, accept, connect
from node.config import DATABASE_FILE, NodeConfig, Peer, load_config, load_key, load_previous_keys
from node.connections import Backoff, Link
from node.enclave_keys import EnclaveKeys
from node.messages import (
    MAX_BLOCKS_PER_REPLY,
    MAX_OBJECTS_PER_REPLY,
    Blocks,
    Consensus,
    EnclaveState,
    FinalBlock,
    ForwardTx,
    GetBlocks,
    GetEnclaveState,
    GetObject,
    GetObjects,
    GetReceipt,
    GetStatus,
    L2LRequest,
    ObjectReply,
    ObjectsReply,
    Receipt,
    Status,
)
from node.mail_events import mail_events
from node.metrics import NodeMetrics
from node.pins import PinBook
from node.storage import NodeStore
from node.wire import (
    REQUEST,
    AccountReply,
    BlockReply,
    ErrorMessage,
    Event,
    GetAccount,
    GetBlock,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Subscribe,
    SubmitTx,
    TxReceipt,
)
from sagachain.core.block import AcquireEntry, Block, ReleaseEntry
from sagachain.core.encoding import decode, encode
from sagachain.core.keys import KeyPair
from sagachain.core.ledger import ChainState
from sagachain.core.objects import StoredObject, node_id_for
from sagachain.core.roster import MEMBER
from sagachain.core.tx import Transaction
from sagachain.core.wire import WireError
from sagachain.errors import InputError, SagaError
from sagachain.core.rules import IGNORED, REFUSED
from shards import committee as cm
from shards.admission import admission_problem
from shards.chainview import ChainView, Judged
from shards.enclave_replay import EnclaveReplay
from shards.enclave_replica import EnclaveReplica, changes_state
from shards.enclave_store import EnclaveStore
from shards.lies import LIES
from shards.placement import Priority
from shards.shard import Proposal, Request, ShardMachine
from shards.tools import default_tools

log = logging.getLogger("sagachain.node")

TICK = 0.05  # seconds between ticks of a shard with work
# Consensus timeouts in ms. Channels are TCP, so a message is lost only with its connection:
# resending every 2 s (not the simulator's lossy-network 400 ms) spares re-sent proposals,
# which carry whole blocks, most of their decoding.
TIMEOUTS = cm.Timeouts(propose=300, prevote=200, precommit=200, increment=100, resend=2_000)
SYNC = 1.0  # seconds between catch-up requests
NON_MEMBER_ASKS = 10  # a node holding no epoch key asks for enclave state every this many catch-up rounds (to hear MEM-1)
REFORWARD = 3.0  # seconds a pending transaction waits before it is handed to its committee again
MAX_REFORWARD = 60.0
REQUESTS = 0.25  # seconds between L2L request rounds of a shard
DIAL_BACKOFF = (0.2, 5.0)  # first and longest wait between dials of a peer
MAX_HANDSHAKES = 64  # handshakes in progress at once
TOPICS = ("blocks", "transfers", "roster", "mail")
FORGED = frozenset({"bad signature", "the block's producer did not sign it", "qc holds a bad signature"})  # committee refusals
REFUSED_KEPT = 10_000  # refused transaction ids remembered for receipts
PIN = "pin/"  # meta key prefix: a node id (hex) -> the key pinned for it (MEM-5)
PIN_ADDRESS = "pin-address/"  # meta key prefix: a peer address -> the node id first met there
READY_FILE = "node.ready"
LOG_FILE = "node.log"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False)
class Subscriber:
    link: Link
    topics: set[str]
    seq: int = 0


@dataclass
class ServedShard:
    """A shard whose committee this node sits on: its two machines and the driver's notes."""

    machine: ShardMachine
    committee: cm.CommitteeMachine
    queued: set[bytes] = field(default_factory=set)
    need: tuple[int, int] | None = None  # (height, round) the committee asked us to build for
    mine: dict[int, Any] = field(default_factory=dict)  # height -> our shards.shard.Proposal
    asleep: bool = True
    next_requests: float = 0.0


class Node:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.config: NodeConfig = load_config(directory)
        self.key: KeyPair = load_key(directory)
        self.seeds = [k.seed for k in load_previous_keys(directory)] + [self.key.seed]
        self.node_id = node_id_for(KeyPair(self.seeds[0]).public)  # a rotated key keeps the node's id (MEM-5)
        database = directory / DATABASE_FILE
        if not database.is_file():
            raise InputError(f"{database} does not exist; create the node with `sagachain node init {directory} --genesis CHAIN`")
        self.store = NodeStore.open(database)
        self.genesis = self.store.genesis()
        self.tools = default_tools()
        self.metrics = NodeMetrics()
        self.backoff = Backoff()
        self.db_limit = trio.CapacityLimiter(1)
        self.links: dict[bytes, Link] = {}
        self.subscribers: list[Subscriber] = []
        self.pending: dict[bytes, tuple[Transaction, float, float]] = {}  # tx id -> (tx, next hand-over, wait)
        self.refused: OrderedDict[bytes, tuple[str, str]] = OrderedDict()
        self.handshakes = trio.Semaphore(MAX_HANDSHAKES)
        self.final_in, self.final_out = trio.open_memory_channel[tuple[str, Block, bytes | None]](10_000)
        self.names = {n.id: n.name for n in self.genesis.nodes}
        self.lies: set[bytes] = set()  # hashes of the tampered proposals this node made (config ``lie``, tests only)
        self._restore()
        chain = self.view.chain
        self.pins = PinBook({bytes.fromhex(k.removeprefix(PIN)): v for k, v in self.store.meta_items(PIN).items()})
        self.dialed = {k.removeprefix(PIN_ADDRESS): v for k, v in self.store.meta_items(PIN_ADDRESS).items()}  # address -> node
        self.configured = {bytes.fromhex(p.node_key) for p in self.config.peers if p.node_key}
        for key in self.configured:
            self.pins.configure(self.pins.node_of(key, chain), key)
        self.peer_ids = {self.pins.node_of(k, chain) for k in self.configured} | set(self.dialed.values())

    # -- start-up ------------------------------------------------------------------

    def _restore(self) -> None:
        """Rebuild memory from the file: the chain, the machines, the enclave replicas, the pending queue."""
        chain = ChainState(self.genesis)
        self.view = ChainView(chain, self.tools, replay=EnclaveReplay({}))
        stored = [f.block for f in self.store.blocks()]
        for block in stored:
            chain.apply_block(block)
            self.view.restored(block)
        self.replicas: dict[str, EnclaveReplica] = {}
        self.epoch_keys: dict[str, EnclaveKeys] = {}
        for enclave in self.config.enclaves:
            record = chain.enclaves.get(enclave)
            if record is None:
                raise InputError(f"{self.dir}: config names enclave {enclave!r}, which is not in the genesis {sorted(chain.enclaves)}")
            self.epoch_keys[enclave] = EnclaveKeys(enclave, self.node_id, self.seeds)
            self.epoch_keys[enclave].follow(chain)
            self.replicas[enclave] = self._load_replica(enclave, record.shards, record.state_commitment)
            self._track(enclave)
        self.machines: dict[str, ShardMachine] = {}  # every shard this node may serve, seated or not
        for sid in self._servable(chain):
            record = chain.shards[sid]
            replica = self.replicas[record.enclave].store if record.enclave else None
            machine = ShardMachine(record, chain, store=replica)
            for block in stored:
                machine.on_final(block)
            self.machines[sid] = machine
        self.served: dict[str, ServedShard] = {}  # the shards whose committee this node sits on now
        self._reseat(now_ms(), starting=True)
        for tx in self.store.pending():
            self.pending[tx.id] = (tx, 0.0, REFORWARD)

    def _servable(self, chain: ChainState) -> list[str]:
        """The public shards of the config, whose genesis committee must hold this node, and every
        shard of the config's enclaves: whether this node sits on one is the roster's to say (MEM-1)."""
        shards = []
        for sid in self.config.shards:
            record = chain.shards.get(sid)
            if record is None:
                raise InputError(f"{self.dir}: config names shard {sid!r}, which is not in the genesis {sorted(chain.shards)}")
            if record.enclave is not None:
                if record.enclave not in self.replicas:
                    raise InputError(f"{self.dir}: shard {sid} belongs to enclave {record.enclave}; add it to `enclaves` in node.toml")
                continue
            if self.node_id not in record.committee:
                raise InputError(f"{self.dir}: this node's key is not in the committee of shard {sid} (SH-1); "
                                 "remove the shard from node.toml or use the key the genesis names")
            if len(self.seeds) > 1:
                raise InputError(f"{self.dir}: this node's key was rotated, but it serves public shard {sid}, whose genesis "
                                 "committee fixes its key (SH-1); remove the shard from node.toml")
            shards.append(sid)
        for enclave in self.config.enclaves:
            shards.extend(chain.enclaves[enclave].shards)
        return shards

    def _reseat(self, now: int, starting: bool = False) -> None:
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
                self._act(sid, machine_committee.start(now))

    def _track(self, enclave: str) -> None:
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

    # -- running -------------------------------------------------------------------

    async def run(self) -> None:
        host, port = self.config.listen.rsplit(":", 1)
        listeners = await trio.open_tcp_listeners(int(port), host=host)
        bound = listeners[0].socket.getsockname()
        address = f"{bound[0]}:{bound[1]}"
        metrics = ""
        if self.config.metrics:
            mhost, mport = self.config.metrics.rsplit(":", 1)
            metrics = f"{mhost}:{self.metrics.serve(mhost, int(mport))}"
        log.info("node %s (%s) listening on %s; shards %s; enclaves %s; %d blocks on file",
                 self.config.name, self.key.public.hex()[:16], address, list(self.served), list(self.replicas),
                 sum(self.view.heads.values()))
        if self.config.lie:
            log.warning("node %s is configured to LIE (%s): a test fault; its enclave proposals are tampered", self.config.name, self.config.lie)
        ready = {"address": address, "metrics": metrics, "pid": os.getpid(), "node_key": self.key.public.hex()}
        (self.dir / READY_FILE).write_text(json.dumps(ready))
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(trio.serve_listeners, self._accept, listeners)
            for peer in self.config.peers:
                nursery.start_soon(self._dial, peer)
            nursery.start_soon(self._ledger)
            for sid in self.served:
                nursery.start_soon(self._drive, sid)
            nursery.start_soon(self._sync)
            nursery.start_soon(self._housekeeping)
            nursery.start_soon(self._signals, nursery.cancel_scope)

    async def _signals(self, scope: trio.CancelScope) -> None:
        """SIGTERM and SIGINT stop the node cleanly: every stored block is already durable."""
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("stopping on signal %d", signum)
                scope.cancel()
                return

    # -- connections -----------------------------------------------------------------

    def _authorize(self, key: bytes) -> str | None:
        return self.backoff.refused(key, trio.current_time())

    async def _accept(self, stream: trio.SocketStream) -> None:
        async with self.handshakes:
            try:
                channel = await accept(stream, self.key, self._authorize)
            except ProtocolError as exc:
                self.metrics.dropped.labels(exc.code).inc()
                log.info("dropped an incoming connection during the handshake: %s", exc)
                return
        node = self._known_node(channel.peer)
        problem = self.pins.judge(node, channel.peer, self.view.chain) if node is not None else None
        self._save_pins()
        if problem is not None:
            self.metrics.dropped.labels("pinned-key").inc()
            log.error("refused an incoming connection (MEM-5): %s", problem)
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(channel)
            return
        await self._serve(channel, outgoing=False, node_id=node)

    def _known_node(self, key: bytes) -> bytes | None:
        """The node an incoming key speaks for, if it is one this node knows of (pinned, on the
        genesis, on a roster, or a configured peer's key); None for a client."""
        chain = self.view.chain
        node = self.pins.node_of(key, chain)
        on_roster = any(e.node == node for enclave in chain.seats for e in chain.roster_entries(enclave))
        return node if node in self.pins.pins or node in chain.nodes or key in self.configured or on_roster else None

    def _judge_dialed(self, peer: Peer, key: bytes) -> str | None:
        """MEM-5 for a peer this node dialed: the key must be the one pinned for the node at that
        address (its configured key names it; without one, the first key met there does)."""
        chain = self.view.chain
        configured = bytes.fromhex(peer.node_key) if peer.node_key else key
        node = self.dialed.get(peer.address) or self.pins.node_of(configured, chain)
        problem = self.pins.judge(node, key, chain)
        if problem is None and self.dialed.get(peer.address) != node:
            self.dialed[peer.address] = node
            self.peer_ids.add(node)
            self.nursery.start_soon(self._db, self.store.set_meta, PIN_ADDRESS + peer.address, node)
        self._save_pins()
        return problem

    def _save_pins(self) -> None:
        for node, key in self.pins.changed.items():
            log.info("pinned key %s for node %s (MEM-5)", key.hex()[:16], self.names.get(node, node.hex()[:12]))
            self.nursery.start_soon(self._db, self.store.set_meta, PIN + node.hex(), key)
        self.pins.changed.clear()

    async def _dial(self, peer: Peer) -> None:
        wait = DIAL_BACKOFF[0]
        host, port = peer.address.rsplit(":", 1)
        while True:
            try:
                stream = await trio.open_tcp_stream(host, int(port))
                channel = await connect(stream, self.key, expected=lambda key: self._judge_dialed(peer, key))
                wait = DIAL_BACKOFF[0]
                await self._serve(channel, outgoing=True, node_id=self.dialed[peer.address])
            except (OSError, ProtocolError) as exc:
                log.debug("peer %s: %s", peer.address, exc)
                if isinstance(exc, ProtocolError) and exc.rule == "MEM-5":
                    log.error("refused peer %s (MEM-5): %s", peer.address, exc.message)
            await trio.sleep(wait)
            wait = min(DIAL_BACKOFF[1], wait * 2)

    async def _serve(self, channel: Channel, outgoing: bool, node_id: bytes | None) -> None:
        """Read one connection's messages until it closes or breaks the protocol; ``node_id`` is
        the node the connection's key speaks for (MEM-5), None for a client."""
        name = self.names.get(node_id, node_id.hex()[:12]) if node_id is not None else f"client {channel.peer.hex()[:12]}"
        link = Link.open(channel, name, node_id)
        if node_id is not None and (outgoing or node_id not in self.links):
            self.links[node_id] = link
            self.metrics.peers.set(len(self.links))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(link.pump)
                try:
                    async for message in channel:
                        await self._dispatch(link, message)
                except ProtocolError as exc:
                    self._breach(link, channel.peer, exc)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    pass
                link.close()
        finally:
            if self.links.get(node_id) is link:
                del self.links[node_id]
                self.metrics.peers.set(len(self.links))
            self.subscribers = [s for s in self.subscribers if s.link is not link]
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(channel)

    def _breach(self, link: Link, key: bytes, exc: ProtocolError) -> None:
        self.metrics.dropped.labels(exc.code).inc()
        rule = f" ({exc.rule})" if exc.rule else ""
        log.warning("dropping %s: %s%s", link.name, exc.message, rule)
        length = self.backoff.strike(key, trio.current_time())
        if length is not None:
            self.metrics.backoffs.inc()
            log.warning("backing off %s for %.0f s after repeated protocol violations", link.name, length)

    def _send_to(self, node_id: bytes, message: Message) -> None:
        link = self.links.get(node_id)
        if link is not None:
            link.send(message)

    def _members(self, shard: str) -> tuple[bytes, ...]:
        """Who signs ``shard``'s next block: its genesis committee, or an enclave shard's seats (MEM-1)."""
        return self.view.chain.committee_at(shard, self.view.heads[shard] + 1)[0]

    def _enclave_members(self, enclave: str) -> dict[bytes, bytes]:
        """The enclave's MEMBERs and their node keys (MEM-1): its roster, or without one its genesis committees."""
        chain = self.view.chain
        if enclave in chain.seats:
            return {e.node: e.key for e in chain.roster_entries(enclave) if e.state == MEMBER}
        return {n: chain.nodes[n].public_key for s in chain.enclaves[enclave].shards for n in chain.shards[s].committee}

    # -- dispatch ----------------------------------------------------------------------

    async def _dispatch(self, link: Link, message: Message) -> None:
        peer_only = (Consensus, ForwardTx, FinalBlock, Blocks, L2LRequest, EnclaveState, GetEnclaveState)
        if isinstance(message, peer_only) and link.node_id is None:
            raise ProtocolError(f"{message.TYPE!r} is a message between nodes; this key is not a configured peer")
        if isinstance(message, Consensus):
            self._on_consensus(link, message.body)
        elif isinstance(message, ForwardTx):
            self._take_tx(message.tx, forward=False)
        elif isinstance(message, FinalBlock):
            await self.final_in.send((link.name, message.block, link.channel.peer))
        elif isinstance(message, Blocks):
            for block in message.blocks:
                await self.final_in.send((link.name, block, link.channel.peer))
            if len(message.blocks) == MAX_BLOCKS_PER_REPLY:
                link.send(GetBlocks(shard=message.shard, from_height=message.blocks[-1].height + 1, limit=MAX_BLOCKS_PER_REPLY))
        elif isinstance(message, GetBlocks):
            limit = max(0, min(message.limit, MAX_BLOCKS_PER_REPLY))
            found = await self._db(self.store.blocks_from, message.shard, message.from_height, limit) if message.shard in self.view.heads else []
            link.send(Blocks(shard=message.shard, blocks=tuple(found)))
        elif isinstance(message, L2LRequest):
            self._on_request(message)
        elif isinstance(message, GetEnclaveState):
            self._on_state_request(link, message)
        elif isinstance(message, EnclaveState):
            self._on_state(link, message)
        elif isinstance(message, SubmitTx):
            link.send(await self._submit(message.tx))
        elif isinstance(message, GetAccount):
            link.send(self._account(message.account))
        elif isinstance(message, GetObject):
            chain = self.view.chain
            public = message.id in chain.objects
            link.send(ObjectReply(id=message.id, value=chain.objects[message.id] if public else None))
        elif isinstance(message, GetObjects):
            link.send(self._objects(message))
        elif isinstance(message, GetBlock):
            block = await self._db(self.store.block_at, message.shard, message.height)
            link.send(BlockReply(shard=message.shard, height=message.height, block=block))
        elif isinstance(message, GetReceipt):
            link.send(await self._receipt(message.tx))
        elif isinstance(message, GetStatus):
            link.send(Status(data=self.status()))
        elif isinstance(message, Subscribe):
            unknown = sorted(set(message.topics) - set(TOPICS))
            if unknown:
                link.send(ErrorMessage(code=REQUEST, reason=f"unknown topic(s) {unknown}; topics: {list(TOPICS)}", rule=None))
            else:
                self.subscribers.append(Subscriber(link, set(message.topics)))
        elif isinstance(message, Ping):
            link.send(Pong(seq=message.seq))
        elif isinstance(message, Pong | ErrorMessage):
            if isinstance(message, ErrorMessage):
                log.info("%s reports: %s (%s)", link.name, message.reason, message.code)
        else:
            raise ProtocolError(f"{message.TYPE!r} is an answer, not a request; nothing here asked for it")

    async def _db(self, func: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(func, *args, limiter=self.db_limit)

    # -- transactions -------------------------------------------------------------------

    def _route(self, tx: Transaction) -> str:
        """The shard to run ``tx``: the holder of its first enclave account, else of its gas payer."""
        chain = self.view.chain
        accounts = [a for a in tx.account_ids() if chain.account_enclave(a) is not None] or [tx.gas_payer]
        transit = chain.transit.get(accounts[0])
        return transit.to_shard if transit else chain.owner[accounts[0]]

    async def _submit(self, tx: Transaction) -> TxReceipt:
        problem = admission_problem(self.view.chain, self.tools, tx)
        if problem is None and tx.id in self.refused:
            problem = self.refused[tx.id]
        if problem is not None:
            rule, reason = problem
            self.metrics.rejected_txs.labels(rule).inc()
            log.info("refused transaction %s: %s (%s)", tx.id.hex()[:12], reason, rule)
            return TxReceipt(tx=tx.id, accepted=False, reason=reason, rule=rule)
        if tx.id not in self.pending:
            await self._db(self.store.add_pending, tx)
            self.pending[tx.id] = (tx, trio.current_time() + REFORWARD, REFORWARD)
            self.metrics.pending.set(len(self.pending))
        self._take_tx(tx, forward=True, admitted=True)
        return TxReceipt(tx=tx.id, accepted=True, reason=None, rule=None)

    def _take_tx(self, tx: Transaction, forward: bool, admitted: bool = False) -> None:
        """Queue ``tx`` on our machine if we serve its shard; hand it to the shard's committee if asked.
        ``admitted``: this very moment's admission check passed already (no second signature check)."""
        if tx.id in self.view.chain.seen_tx:
            return
        try:
            shard = self._route(tx)
        except KeyError:
            return
        served = self.served.get(shard)
        if served is not None and tx.id not in served.queued:
            if admitted or admission_problem(self.view.chain, self.tools, tx) is None:
                served.queued.add(tx.id)
                served.machine.submit(tx, now_ms())
                self._collect_refusals(served)
        if forward:
            for member in self._members(shard):
                if member != self.node_id:
                    self._send_to(member, ForwardTx(tx=tx))

    def _collect_refusals(self, served: ServedShard) -> None:
        machine = served.machine
        for rejection in machine.rejected:
            self.metrics.rejected_txs.labels(rejection.rule or "?").inc()
            if rejection.tx is not None:
                served.queued.discard(rejection.tx.id)
                self.refused[rejection.tx.id] = (rejection.rule, rejection.reason)
                while len(self.refused) > REFUSED_KEPT:
                    self.refused.popitem(last=False)
                log.info("shard %s refused transaction %s: %s (%s)", machine.id, rejection.tx.id.hex()[:12], rejection.reason, rejection.rule)
            else:
                log.info("shard %s: %s (%s)", machine.id, rejection.reason, rejection.rule)
        machine.rejected.clear()

    async def _receipt(self, tx_id: bytes) -> Receipt:
        block = await self._db(self.store.final_block_of, tx_id)
        if block is not None:
            for index, entry in enumerate(block.entries):
                if getattr(entry, "tx", None) is not None and entry.tx.id == tx_id:
                    ok = getattr(entry, "ok", True)
                    return Receipt(tx=tx_id, status="final", shard=block.shard, height=block.height, index=index, ok=ok, rule=None, reason=None)
        if tx_id in self.refused:
            rule, reason = self.refused[tx_id]
            return Receipt(tx=tx_id, status="refused", shard=None, height=0, index=0, ok=None, rule=rule, reason=reason)
        if tx_id in self.pending:
            return Receipt(tx=tx_id, status="pending", shard=None, height=0, index=0, ok=None, rule=None, reason=None)
        return Receipt(tx=tx_id, status="unknown", shard=None, height=0, index=0, ok=None, rule=None, reason=None)

    def _objects(self, message: GetObjects) -> ObjectsReply:
        chain = self.view.chain
        if chain.account_enclave(message.account) is not None:
            return ObjectsReply(account=message.account, objects={}, more=False)
        limit = max(0, min(message.limit, MAX_OBJECTS_PER_REPLY))
        ids = sorted(oid for oid in chain.objects_of.get(message.account, ()) if oid > message.after)
        return ObjectsReply(account=message.account, objects={oid: chain.objects[oid] for oid in ids[:limit]}, more=len(ids) > limit)

    def _account(self, account: bytes) -> AccountReply:
        chain = self.view.chain
        if account not in chain.accounts:
            return AccountReply(account=account, shard=None, height=0, value=None, nonce=0)
        transit = chain.transit.get(account)
        shard = transit.to_shard if transit else chain.owner[account]
        value = None if chain.account_enclave(account) is not None else chain.objects.get(account)
        return AccountReply(account=account, shard=shard, height=self.view.heads.get(shard, 0), value=value,
                            nonce=chain.nonces.get(account, 0))

    # -- L2L --------------------------------------------------------------------------------

    def _on_request(self, message: L2LRequest) -> None:
        chain = self.view.chain
        owner = chain.owner.get(message.account)
        served = self.served.get(owner) if owner is not None else None
        if served is None or message.requester not in chain.shards:
            return
        served.machine.on_request(Request(message.account, message.requester, Priority(message.arrived, message.tx_id)))
        self._collect_refusals(served)

    # -- consensus ----------------------------------------------------------------------------

    def _on_consensus(self, link: Link, body: cm.Message) -> None:
        served = self.served.get(body.shard)
        if served is None or link.node_id not in self._members(body.shard):
            return
        actions = served.committee.receive(body, now_ms())
        forged = [a.reason for a in actions if isinstance(a, cm.Refused) and a.reason in FORGED]
        self._act(body.shard, actions)
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
            if self.epoch_keys[enclave].latest() is None:
                # removed, yet seated until a block of this shard sees the removal (``committee_at``):
                # it judges the block's public part only, for it may not read the enclave's state
                return True
            return self.view.replay is not None and self.view.replay.tracks(enclave)
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

    def _act(self, sid: str, actions: list[cm.Action]) -> None:
        served = self.served[sid]
        for action in actions:
            if isinstance(action, cm.Broadcast):
                for member in self._members(sid):
                    if member != self.node_id:
                        self._send_to(member, Consensus(body=action.message))
            elif isinstance(action, cm.Send):
                self._send_to(action.to, Consensus(body=action.message))
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
        if enclave is not None and (not self.replicas[enclave].current(self.view.heads) or self.epoch_keys[enclave].latest() is None):
            return  # a stale replica would build on old state (wait for the whole state); without the key, send no delta
        proposal = machine.build(now_ms(), self.node_id)
        self._collect_refusals(served)
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
        self._act(sid, actions)

    def _tell_lie(self, sid: str, proposal: Proposal) -> Proposal:
        """Test fault (``lie`` in node.toml): propose the tampered block a byzantine member would."""
        block = Block(header=proposal.block.header, entries=proposal.block.entries, qc=())
        lie = LIES[self.config.lie](self.view.chain, block)
        if lie is None:
            return proposal
        self.lies.add(lie.hash)
        log.warning("shard %s: LYING (test fault %r): proposing a tampered block %d", sid, self.config.lie, lie.height)
        return replace(proposal, block=lie)

    # -- enclave state ---------------------------------------------------------------------------

    def _on_state_request(self, link: Link, message: GetEnclaveState) -> None:
        enclave = message.enclave
        assert link.node_id is not None
        name = self.names.get(link.node_id, link.node_id.hex()[:12])
        replica = self.replicas.get(enclave)
        if enclave not in self.view.chain.enclaves or replica is None:
            link.send(ErrorMessage(code=REQUEST, reason=f"this node is not a member of enclave {enclave!r}", rule=None))
            return
        members = self._enclave_members(enclave)
        if link.node_id not in members:
            reason = (f"node {name} is not a MEMBER of enclave {enclave}'s roster, so it may not hold the enclave's state "
                      "(MEM-1); apply and ask an admin to approve")
            log.warning("refused enclave state to %s: %s", name, reason)
            self._publish("roster", {"enclave": enclave, "node": self.view.chain.nodes[link.node_id].public_key
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
        self._publish("roster", {"enclave": enclave, "node": members[link.node_id], "change": "joined", "reason": None})

    def _on_state(self, link: Link, message: EnclaveState) -> None:
        replica = self.replicas.get(message.enclave)
        if replica is None or link.node_id not in self._enclave_members(message.enclave):
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
        self._track(message.enclave)
        log.info("joined enclave %s: state received from %s as of %s, sealed under epoch %d", message.enclave, link.name, message.heads, message.epoch)

    # -- the ledger --------------------------------------------------------------------------------

    async def _ledger(self) -> None:
        async for source, block, sender in self.final_out:
            if self.view.known(block):
                continue
            for judged in self.view.offer(block):
                if judged.outcome == REFUSED:
                    self._refused_block(source, judged)
                    if sender is not None and judged.block is block and "SH-1" in judged.verdict.rules:
                        # no honest node relays a block without its quorum: count it against the sender
                        length = self.backoff.strike(sender, trio.current_time())
                        if length is not None:
                            self.metrics.backoffs.inc()
                            log.warning("backing off %s for %.0f s after blocks without a valid quorum", source, length)
                elif judged.outcome == IGNORED:
                    log.info("ignored final block %s/%d: %s", judged.block.shard, judged.block.height, judged.verdict.ignored_because)
                else:
                    await self._commit(judged)
            for enclave in self.replicas:  # the batch is stored: re-execute exactly the current replicas
                self._track(enclave)

    def _refused_block(self, source: str, judged: Judged) -> None:
        block, verdict = judged.block, judged.verdict
        for rule in verdict.rules:
            self.metrics.rejected_blocks.labels(block.shard, rule).inc()
        log.warning("refused final block %s/%d from %s: %s [%s]", block.shard, block.height, source, verdict.summary(), ", ".join(verdict.rules))

    async def _commit(self, judged: Judged) -> None:
        """Memory first (machines, replicas), then the file, then the world hears of it."""
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
        updates = self._object_updates(block)
        await self._db(self.store.append_final, block, updates, sealed, meta)
        for tx_id in [e.tx.id for e in block.tx_entries()]:
            self.pending.pop(tx_id, None)
        self.metrics.pending.set(len(self.pending))
        self.metrics.height.labels(block.shard).set(block.height)
        self.metrics.applied.labels(block.shard).inc()
        for entry in block.tx_entries():
            self.metrics.committed.labels(entry.kind).inc()
        if block.header.producer == self.node_id:
            self.metrics.produced.labels(block.shard).inc()
        if served is not None:
            if block.height >= served.committee.height:
                served.need = None
                self._act(block.shard, served.committee.next_height(block, now_ms()))
            for peer in self.peer_ids:
                if peer not in self._members(block.shard):
                    self._send_to(peer, FinalBlock(block=block))
        self._reseat(now_ms())
        self._announce(block)

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
            elif self.node_id in self._enclave_members(enclave):
                log.warning("enclave %s: epoch %d is sealed to a key of this node it does not run with (a rotation, MEM-5): "
                            "restart it once node.key holds the new seed", enclave, keys.epoch)
            elif before in keys.keys or before == 0:
                log.warning("enclave %s: no key for epoch %d: this node is no longer a MEMBER (MEM-3)", enclave, keys.epoch)
        return opened

    def _object_updates(self, block: Block) -> dict[bytes, StoredObject | None]:
        """The stored objects of the accounts the block touched: kept for accounts our shards own."""
        chain = self.view.chain
        touched: set[bytes] = set()
        for entry in block.entries:
            if isinstance(entry, AcquireEntry | ReleaseEntry):
                touched.add(entry.account)
            elif getattr(entry, "tx", None) is not None:
                touched.update((*entry.tx.account_ids(), entry.tx.gas_payer))
        updates: dict[bytes, StoredObject | None] = {}
        for account in touched:
            owned = chain.owner.get(account) in self.served and chain.account_enclave(account) is None
            for oid, value in chain.account_objects(account).items():
                updates[oid] = value if owned else None
        return updates

    def _announce(self, block: Block) -> None:
        entries = block.tx_entries()
        self._publish("blocks", {"shard": block.shard, "height": block.height, "hash": block.hash, "time": block.header.time,
                                 "txs": [e.tx.id for e in entries], "ok": [bool(getattr(e, "ok", True)) for e in entries]})
        for entry in block.entries:
            if isinstance(entry, ReleaseEntry):
                self._publish("transfers", {"account": entry.account, "from": block.shard, "to": entry.to_shard,
                                            "shard": block.shard, "height": block.height, "stage": "release"})
            elif isinstance(entry, AcquireEntry):
                self._publish("transfers", {"account": entry.account, "from": entry.release.shard, "to": block.shard,
                                            "shard": block.shard, "height": block.height, "stage": "acquire"})
        if any("mail" in sub.topics for sub in self.subscribers):  # MBX-4: envelopes arrived, acknowledged, purged
            for data in mail_events(block):
                self._publish("mail", data)

    def _publish(self, topic: str, data: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            if topic in sub.topics:
                if not sub.link.send(Event(topic=topic, seq=sub.seq, data=data)):
                    log.info("subscriber %s cannot keep up; dropping its subscription", sub.link.name)
                    self.subscribers.remove(sub)
                    sub.link.close()
                sub.seq += 1

    # -- periodic work ----------------------------------------------------------------------------------

    async def _drive(self, sid: str) -> None:
        """Tick a seated shard's machines; ends when the roster takes the seat away."""
        served = self.served[sid]
        self._act(sid, served.committee.start(now_ms()))
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
                self._act(sid, committee.wake(now))
            self._act(sid, committee.tick(now))
            self._build(sid)
            if trio.current_time() >= served.next_requests:
                served.next_requests = trio.current_time() + REQUESTS
                for owner, request in machine.requests(now):
                    message = L2LRequest(account=request.account, requester=request.requester,
                                         arrived=request.priority.arrived, tx_id=request.priority.tx_id)
                    for member in self._members(owner):
                        if member != self.node_id:
                            self._send_to(member, message)
                    if owner in self.served:
                        self._on_request(message)
            self.metrics.queue.labels(sid).set(len(machine.queue))

    async def _sync(self) -> None:
        """Ask a peer for the blocks after our heads; enclave members without current state ask for it."""
        turn = 0
        while True:
            await trio.sleep(SYNC)
            links = [self.links[n] for n in sorted(self.links)]
            if not links:
                continue
            turn += 1
            link = links[turn % len(links)]
            for shard, height in self.view.heads.items():
                link.send(GetBlocks(shard=shard, from_height=height + 1, limit=MAX_BLOCKS_PER_REPLY))
            for enclave, replica in self.replicas.items():
                holds_key = self.epoch_keys[enclave].latest() is not None
                if not replica.current(self.view.heads) and (holds_key or turn % NON_MEMBER_ASKS == 0):
                    members = [n for n in sorted(self._enclave_members(enclave)) if n in self.links and n != self.node_id]
                    if members:
                        self.links[members[turn % len(members)]].send(GetEnclaveState(enclave=enclave))

    async def _housekeeping(self) -> None:
        """Hand pending transactions to their committee again: a forward may have been lost with
        its connection. Each waits twice as long as before (up to ``MAX_REFORWARD``), so a
        backlog under load does not turn into a storm of re-sent transactions."""
        while True:
            await trio.sleep(REFORWARD)
            now = trio.current_time()
            for tx_id, (tx, due, wait) in list(self.pending.items()):
                if tx_id in self.view.chain.seen_tx:
                    self.pending.pop(tx_id, None)
                elif now >= due:
                    wait = min(MAX_REFORWARD, wait * 2)
                    self.pending[tx_id] = (tx, now + wait, wait)
                    self._take_tx(tx, forward=True)

    # -- status ---------------------------------------------------------------------------------------------

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
        peers = []
        for peer in self.config.peers:
            node = self.dialed.get(peer.address) or (self.pins.node_of(bytes.fromhex(peer.node_key), self.view.chain) if peer.node_key else None)
            peers.append({"name": self.names.get(node, peer.address) if node else peer.address, "address": peer.address,
                          "connected": node in self.links})
        enclaves = {e: {"current": r.current(self.view.heads), "heads": dict(r.heads), "shards": list(r.shards),
                        "epoch": self.epoch_keys[e].epoch, "holds_key": self.epoch_keys[e].latest() is not None}
                    for e, r in self.replicas.items()}
        return {"name": self.config.name, "node_key": self.key.public, "shards": shards, "peers": peers,
                "enclaves": enclaves, "pending": len(self.pending), "served": list(self.served)}


def serve(directory: Path, log_level: str = "info") -> None:
    """Run the node of ``directory`` until interrupted."""
    handlers: list[logging.Handler] = [logging.StreamHandler(), logging.FileHandler(directory / LOG_FILE)]
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("sagachain.node")
    logger.handlers = handlers
    logger.setLevel(log_level.upper())
    logger.propagate = False
    node = Node(directory)
    try:
        trio.run(node.run)
    finally:
        (directory / READY_FILE).unlink(missing_ok=True)
        node.store.close()

