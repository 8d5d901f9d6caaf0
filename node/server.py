"""``sagachain node start``: a node process under trio.

The node is a driver, like the simulator: the protocol lives in the pure
machines of ``shards`` (a ``ShardMachine`` and a ``CommitteeMachine`` per
shard whose committee this node serves), in ``shards.chainview`` (which final
blocks to judge, in what order, by the one judge every reader uses; for an
enclave member also its own re-execution, TX-6) and
``shards.enclave_replica``. The node feeds them messages from the network
and the clock, and carries out what they ask: send messages, build a block,
store a final block.

This module loads a node's directory, wires its parts together and runs
their tasks, all in one trio nursery:

- ``node.peers``: the listener, a task per connection reading messages
  (handed to ``Node._dispatch`` here), a dialer per configured peer;
- ``node.shard_driver``: a task per served shard, ticking its machines
  every ``TICK`` seconds while it has work;
- ``node.ledger_task``: the only writer of the chain, which applies final
  blocks through the chain view, persists each with its consequences in one
  SQLite transaction (in a worker thread), and only then announces it;
- ``node.intake``: client transactions and reads, and the re-forwarding of
  pending transactions;
- ``node.enclave_sync``: an enclave member's replica and epoch keys, and the
  whole state handed between members;
- catch-up (here): every ``SYNC`` seconds it asks a peer for the blocks
  after its heads, so a node that was down or missed gossip converges.

Every refusal (a bad frame, a bad block, a refused transaction) is logged
with its rule id and counted in the metrics; nothing refused is stored.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import trio

from node.config import DATABASE_FILE, NodeConfig, load_config, load_key, load_previous_keys
from node.connections import Link
from node.enclave_sync import EnclaveSync
from node.intake import Intake
from node.ledger_task import LedgerTask
from node.messages import (
    MAX_BLOCKS_PER_REPLY,
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
    Status,
)
from node.metrics import NodeMetrics
from node.peers import Peers
from node.shard_driver import ShardDriver
from node.storage import NodeStore
from node.subscriptions import Subscriptions
from node.wire import ErrorMessage, GetAccount, GetBlock, Message, Ping, Pong, ProtocolError, Subscribe, SubmitTx
from sagachain.core.block import Block
from sagachain.core.keys import KeyPair
from sagachain.core.ledger import ChainState
from sagachain.core.objects import node_id_for
from sagachain.errors import InputError
from shards.chainview import ChainView
from shards.enclave_replay import EnclaveReplay
from shards.shard import ShardMachine
from shards.tools import default_tools

log = logging.getLogger("sagachain.node")

SYNC = 1.0  # seconds between catch-up requests
PEER_ONLY = (Consensus, ForwardTx, FinalBlock, Blocks, L2LRequest, EnclaveState, GetEnclaveState)  # messages between nodes
READY_FILE = "node.ready"
LOG_FILE = "node.log"


class Node:
    """One node directory brought to life: its config, keys and file, and the parts that run it."""

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
        self.db_limit = trio.CapacityLimiter(1)
        self.final_in, final_out = trio.open_memory_channel[tuple[str, Block, bytes | None]](10_000)
        self.names = {n.id: n.name for n in self.genesis.nodes}
        # Rebuild memory from the file: the chain, the enclave replicas, the machines, the pending queue.
        stored = [f.block for f in self.store.blocks()]
        self.view = ChainView(ChainState(self.genesis), self.tools, replay=EnclaveReplay({}))
        for block in stored:
            self.view.chain.apply_block(block)
            self.view.restored(block)
        self.subscriptions = Subscriptions()
        self.enclaves = EnclaveSync(directory=directory, config=self.config, node_id=self.node_id, seeds=self.seeds,
                                    store=self.store, view=self.view, names=self.names, subscriptions=self.subscriptions)
        self.peers = Peers(config=self.config, key=self.key, store=self.store, view=self.view, names=self.names,
                           metrics=self.metrics, db=self._db, dispatch=self._dispatch, closed=self.subscriptions.drop)
        self.shards = ShardDriver(config=self.config, key=self.key, seeds=self.seeds, node_id=self.node_id, view=self.view,
                                  machines=self._machines(stored), enclaves=self.enclaves, peers=self.peers, names=self.names,
                                  metrics=self.metrics, final_in=self.final_in)
        self.intake = Intake(node_id=self.node_id, view=self.view, tools=self.tools, store=self.store, db=self._db,
                             metrics=self.metrics, shards=self.shards, peers=self.peers)
        self.ledger = LedgerTask(node_id=self.node_id, view=self.view, store=self.store, db=self._db, metrics=self.metrics,
                                 backoff=self.peers.backoff, enclaves=self.enclaves, shards=self.shards, intake=self.intake,
                                 subscriptions=self.subscriptions, final_out=final_out)

    # -- start-up ------------------------------------------------------------------

    def _machines(self, stored: list[Block]) -> dict[str, ShardMachine]:
        """A shard machine for every shard this node may serve, seated or not, as of the stored blocks."""
        chain = self.view.chain
        machines: dict[str, ShardMachine] = {}
        for sid in self._servable(chain):
            record = chain.shards[sid]
            replica = self.enclaves.replicas[record.enclave].store if record.enclave else None
            machine = ShardMachine(record, chain, store=replica)
            for block in stored:
                machine.on_final(block)
            machines[sid] = machine
        return machines

    def _servable(self, chain: ChainState) -> list[str]:
        """The public shards of the config, whose genesis committee must hold this node, and every
        shard of the config's enclaves: whether this node sits on one is the roster's to say (MEM-1)."""
        shards = []
        for sid in self.config.shards:
            record = chain.shards.get(sid)
            if record is None:
                raise InputError(f"{self.dir}: config names shard {sid!r}, which is not in the genesis {sorted(chain.shards)}")
            if record.enclave is not None:
                if record.enclave not in self.enclaves.replicas:
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
                 self.config.name, self.key.public.hex()[:16], address, list(self.shards.served), list(self.enclaves.replicas),
                 sum(self.view.heads.values()))
        if self.config.lie:
            log.warning("node %s is configured to LIE (%s): a test fault; its enclave proposals are tampered", self.config.name, self.config.lie)
        ready = {"address": address, "metrics": metrics, "pid": os.getpid(), "node_key": self.key.public.hex()}
        (self.dir / READY_FILE).write_text(json.dumps(ready))
        async with trio.open_nursery() as nursery:
            self.peers.start(nursery, listeners)
            nursery.start_soon(self.ledger.run)
            self.shards.start(nursery)
            nursery.start_soon(self._catch_up)
            nursery.start_soon(self.intake.housekeeping)
            nursery.start_soon(self._signals, nursery.cancel_scope)

    async def _signals(self, scope: trio.CancelScope) -> None:
        """SIGTERM and SIGINT stop the node cleanly: every stored block is already durable."""
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("stopping on signal %d", signum)
                scope.cancel()
                return

    async def _db(self, func: Any, *args: Any) -> Any:
        """Run a store call in a worker thread, one at a time: SQLite is used from one thread at once."""
        return await trio.to_thread.run_sync(func, *args, limiter=self.db_limit)

    async def _catch_up(self) -> None:
        """Ask a peer for the blocks after our heads; enclave members without current state ask for it."""
        turn = 0
        while True:
            await trio.sleep(SYNC)
            links = [self.peers.links[n] for n in sorted(self.peers.links)]
            if not links:
                continue
            turn += 1
            link = links[turn % len(links)]
            for shard, height in self.view.heads.items():
                link.send(GetBlocks(shard=shard, from_height=height + 1, limit=MAX_BLOCKS_PER_REPLY))
            self.enclaves.ask_for_state(self.peers.links, turn)

    # -- dispatch ----------------------------------------------------------------------

    async def _dispatch(self, link: Link, message: Message) -> None:
        """Hand one message from a connection to the part of the node it is for."""
        if isinstance(message, PEER_ONLY) and link.node_id is None:
            raise ProtocolError(f"{message.TYPE!r} is a message between nodes; this key is not a configured peer")
        if isinstance(message, Consensus):
            self.shards.on_consensus(link, message.body)
        elif isinstance(message, ForwardTx):
            self.intake.take(message.tx, forward=False)
        elif isinstance(message, FinalBlock):
            await self.final_in.send((link.name, message.block, link.channel.peer))
        elif isinstance(message, Blocks):
            for block in message.blocks:
                await self.final_in.send((link.name, block, link.channel.peer))
            if len(message.blocks) == MAX_BLOCKS_PER_REPLY:
                link.send(GetBlocks(shard=message.shard, from_height=message.blocks[-1].height + 1, limit=MAX_BLOCKS_PER_REPLY))
        elif isinstance(message, GetBlocks):
            link.send(await self.intake.blocks(message))
        elif isinstance(message, L2LRequest):
            self.shards.on_request(message)
        elif isinstance(message, GetEnclaveState):
            self.enclaves.on_state_request(link, message)
        elif isinstance(message, EnclaveState):
            self.enclaves.on_state(link, message)
        elif isinstance(message, SubmitTx):
            link.send(await self.intake.submit(message.tx))
        elif isinstance(message, GetAccount):
            link.send(self.intake.account(message.account))
        elif isinstance(message, GetObject):
            link.send(self.intake.object(message))
        elif isinstance(message, GetObjects):
            link.send(self.intake.objects(message))
        elif isinstance(message, GetBlock):
            link.send(await self.intake.block(message))
        elif isinstance(message, GetReceipt):
            link.send(await self.intake.receipt(message.tx))
        elif isinstance(message, GetStatus):
            link.send(Status(data=self.status()))
        elif isinstance(message, Subscribe):
            self.subscriptions.subscribe(link, message.topics)
        elif isinstance(message, Ping):
            link.send(Pong(seq=message.seq))
        elif isinstance(message, Pong | ErrorMessage):
            if isinstance(message, ErrorMessage):
                log.info("%s reports: %s (%s)", link.name, message.reason, message.code)
        else:
            raise ProtocolError(f"{message.TYPE!r} is an answer, not a request; nothing here asked for it")

    # -- status ---------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        peers = []
        for peer in self.config.peers:
            node = self.peers.node_of_peer(peer)
            peers.append({"name": self.names.get(node, peer.address) if node else peer.address, "address": peer.address,
                          "connected": node in self.peers.links})
        return {"name": self.config.name, "node_key": self.key.public, "shards": self.shards.status(), "peers": peers,
                "enclaves": self.enclaves.status(), "pending": len(self.intake.pending), "served": list(self.shards.served)}


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
