"""What clients bring to the node: transactions to admit, and the reads they make.

A transaction is admitted here (the same admission check every driver
uses), written to the pending table before it is acknowledged, so a crash
loses no accepted transaction, then queued on our machine if we serve its
shard and forwarded to the shard's committee. A forward may be lost with its
connection, so pending transactions are handed over again, each waiting
twice as long as before, until a final block holds them.

The reads (accounts, objects, blocks, receipts) answer from the chain view
and the store; an enclave account's objects are never read out (MEM-4).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from node.messages import (
    MAX_BLOCKS_PER_REPLY,
    MAX_OBJECTS_PER_REPLY,
    Blocks,
    ForwardTx,
    GetBlocks,
    GetObject,
    GetObjects,
    ObjectReply,
    ObjectsReply,
    Receipt,
)
from node.metrics import NodeMetrics
from node.peers import Peers
from node.shard_driver import ShardDriver
from node.storage import NodeStore
from node.wire import AccountReply, BlockReply, GetBlock, TxReceipt
from sagachain.core.block import Block
from sagachain.core.rules.tools import Tools
from sagachain.core.tx import Transaction
from shards.admission import admission_problem
from shards.chainview import ChainView

log = logging.getLogger("sagachain.node")

REFORWARD = 3.0  # seconds a pending transaction waits before it is handed to its committee again
MAX_REFORWARD = 60.0


class Intake:
    """The pending transactions accepted here, and the answers to clients' reads."""

    def __init__(self, *, node_id: bytes, view: ChainView, tools: Tools, store: NodeStore, db: Callable[..., Awaitable[Any]],
                 metrics: NodeMetrics, shards: ShardDriver, peers: Peers) -> None:
        self.node_id, self.view, self.tools, self.store, self.db = node_id, view, tools, store, db
        self.metrics, self.shards, self.peers = metrics, shards, peers
        self.pending: dict[bytes, tuple[Transaction, float, float]] = {}  # tx id -> (tx, next hand-over, wait)
        for tx in store.pending():
            self.pending[tx.id] = (tx, 0.0, REFORWARD)

    # -- transactions ------------------------------------------------------------------------------

    async def submit(self, tx: Transaction) -> TxReceipt:
        """A client's transaction: refused with its rule id, or stored as pending before it is accepted."""
        problem = admission_problem(self.view.chain, self.tools, tx)
        if problem is None and tx.id in self.shards.refused:
            problem = self.shards.refused[tx.id]
        if problem is not None:
            rule, reason = problem
            self.metrics.rejected_txs.labels(rule).inc()
            log.info("refused transaction %s: %s (%s)", tx.id.hex()[:12], reason, rule)
            return TxReceipt(tx=tx.id, accepted=False, reason=reason, rule=rule)
        if tx.id not in self.pending:
            await self.db(self.store.add_pending, tx)
            self.pending[tx.id] = (tx, trio.current_time() + REFORWARD, REFORWARD)
            self.metrics.pending.set(len(self.pending))
        self.take(tx, forward=True, admitted=True)
        return TxReceipt(tx=tx.id, accepted=True, reason=None, rule=None)

    def _route(self, tx: Transaction) -> str:
        """The shard to run ``tx``: the holder of its first enclave account, else of its gas payer."""
        chain = self.view.chain
        accounts = [a for a in tx.account_ids() if chain.account_enclave(a) is not None] or [tx.gas_payer]
        transit = chain.transit.get(accounts[0])
        return transit.to_shard if transit else chain.owner[accounts[0]]

    def take(self, tx: Transaction, forward: bool, admitted: bool = False) -> None:
        """Queue ``tx`` on our machine if we serve its shard; hand it to the shard's committee if asked.
        ``admitted``: this very moment's admission check passed already (no second signature check)."""
        if tx.id in self.view.chain.seen_tx:
            return
        try:
            shard = self._route(tx)
        except KeyError:
            return
        served = self.shards.served.get(shard)
        if served is not None and tx.id not in served.queued:
            if admitted or admission_problem(self.view.chain, self.tools, tx) is None:
                self.shards.submit(served, tx)
        if forward:
            for member in self.shards.members(shard):
                if member != self.node_id:
                    self.peers.send_to(member, ForwardTx(tx=tx))

    def settled(self, block: Block) -> None:
        """A final block was stored: its transactions are pending no more."""
        for tx_id in [e.tx.id for e in block.tx_entries()]:
            self.pending.pop(tx_id, None)
        self.metrics.pending.set(len(self.pending))

    async def housekeeping(self) -> None:
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
                    self.take(tx, forward=True)

    # -- reads -------------------------------------------------------------------------------------

    async def receipt(self, tx_id: bytes) -> Receipt:
        block = await self.db(self.store.final_block_of, tx_id)
        if block is not None:
            for index, entry in enumerate(block.entries):
                if getattr(entry, "tx", None) is not None and entry.tx.id == tx_id:
                    ok = getattr(entry, "ok", True)
                    return Receipt(tx=tx_id, status="final", shard=block.shard, height=block.height, index=index, ok=ok, rule=None, reason=None)
        if tx_id in self.shards.refused:
            rule, reason = self.shards.refused[tx_id]
            return Receipt(tx=tx_id, status="refused", shard=None, height=0, index=0, ok=None, rule=rule, reason=reason)
        if tx_id in self.pending:
            return Receipt(tx=tx_id, status="pending", shard=None, height=0, index=0, ok=None, rule=None, reason=None)
        return Receipt(tx=tx_id, status="unknown", shard=None, height=0, index=0, ok=None, rule=None, reason=None)

    def account(self, account: bytes) -> AccountReply:
        chain = self.view.chain
        if account not in chain.accounts:
            return AccountReply(account=account, shard=None, height=0, value=None, nonce=0)
        transit = chain.transit.get(account)
        shard = transit.to_shard if transit else chain.owner[account]
        value = None if chain.account_enclave(account) is not None else chain.objects.get(account)
        return AccountReply(account=account, shard=shard, height=self.view.heads.get(shard, 0), value=value,
                            nonce=chain.nonces.get(account, 0))

    def object(self, message: GetObject) -> ObjectReply:
        chain = self.view.chain
        public = message.id in chain.objects
        return ObjectReply(id=message.id, value=chain.objects[message.id] if public else None)

    def objects(self, message: GetObjects) -> ObjectsReply:
        chain = self.view.chain
        if chain.account_enclave(message.account) is not None:
            return ObjectsReply(account=message.account, objects={}, more=False)
        limit = max(0, min(message.limit, MAX_OBJECTS_PER_REPLY))
        ids = sorted(oid for oid in chain.objects_of.get(message.account, ()) if oid > message.after)
        return ObjectsReply(account=message.account, objects={oid: chain.objects[oid] for oid in ids[:limit]}, more=len(ids) > limit)

    async def block(self, message: GetBlock) -> BlockReply:
        block = await self.db(self.store.block_at, message.shard, message.height)
        return BlockReply(shard=message.shard, height=message.height, block=block)

    async def blocks(self, message: GetBlocks) -> Blocks:
        """A peer's catch-up request (or a client's): the final blocks of a shard from a height on."""
        limit = max(0, min(message.limit, MAX_BLOCKS_PER_REPLY))
        found = await self.db(self.store.blocks_from, message.shard, message.from_height, limit) if message.shard in self.view.heads else []
        return Blocks(shard=message.shard, blocks=tuple(found))
