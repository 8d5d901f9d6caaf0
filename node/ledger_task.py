"""The ledger task: the only writer of the node's chain.

Final blocks arrive on one channel, from the node's own committees (a
decided block), from gossip and from catch-up. One task takes them in
order, so the chain, the machines and the file change in one place only.
Which blocks to judge and in what order, and the verdict, are the chain
view's (the judge every reader uses, docs/RULES.md "One judgment"); this
task carries the verdict out:

- *refused*: nothing is applied; it is logged with its rule ids and
  counted, and a block whose quorum falls short (SH-1) counts against the
  peer that relayed it;
- *ignored*: logged;
- *applied*: memory first (replicas, machines), then the block and all its
  consequences in one SQLite transaction, in a worker thread, and only then
  does the world hear of it (the committee's next height, gossip to peers,
  subscribers' events).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from node.connections import Backoff
from node.enclave_sync import EnclaveSync
from node.intake import Intake
from node.metrics import NodeMetrics
from node.shard_driver import ShardDriver
from node.storage import NodeStore
from node.subscriptions import Subscriptions
from sagachain.core.block import AcquireEntry, Block, ReleaseEntry
from sagachain.core.objects import StoredObject
from sagachain.core.rules import IGNORED, REFUSED
from shards.chainview import ChainView, Judged

log = logging.getLogger("sagachain.node")


class LedgerTask:
    """Judges the final blocks offered to the node and stores the ones applied."""

    def __init__(self, *, node_id: bytes, view: ChainView, store: NodeStore, db: Callable[..., Awaitable[Any]],
                 metrics: NodeMetrics, backoff: Backoff, enclaves: EnclaveSync, shards: ShardDriver, intake: Intake,
                 subscriptions: Subscriptions, final_out: trio.MemoryReceiveChannel[tuple[str, Block, bytes | None]]) -> None:
        self.node_id, self.view, self.store, self.db, self.metrics, self.backoff = node_id, view, store, db, metrics, backoff
        self.enclaves, self.shards, self.intake, self.subscriptions = enclaves, shards, intake, subscriptions
        self.final_out = final_out

    async def run(self) -> None:
        """Take ``(source, block, sender key or None)`` off the channel until the node stops."""
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
            self.enclaves.track_all()  # the batch is stored: re-execute exactly the current replicas

    def _refused_block(self, source: str, judged: Judged) -> None:
        block, verdict = judged.block, judged.verdict
        for rule in verdict.rules:
            self.metrics.rejected_blocks.labels(block.shard, rule).inc()
        log.warning("refused final block %s/%d from %s: %s [%s]", block.shard, block.height, source, verdict.summary(), ", ".join(verdict.rules))

    async def _commit(self, judged: Judged) -> None:
        """Memory first (machines, replicas), then the file, then the world hears of it."""
        block = judged.block
        sealed, meta = self.enclaves.on_final(judged)
        self.shards.on_final(block)
        updates = self._object_updates(block)
        await self.db(self.store.append_final, block, updates, sealed, meta)
        self.intake.settled(block)
        self.metrics.height.labels(block.shard).set(block.height)
        self.metrics.applied.labels(block.shard).inc()
        for entry in block.tx_entries():
            self.metrics.committed.labels(entry.kind).inc()
        if block.header.producer == self.node_id:
            self.metrics.produced.labels(block.shard).inc()
        self.shards.after_stored(block)
        self.subscriptions.announce(block)

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
            owned = chain.owner.get(account) in self.shards.served and chain.account_enclave(account) is None
            for oid, value in chain.account_objects(account).items():
                updates[oid] = value if owned else None
        return updates
