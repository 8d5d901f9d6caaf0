"""The node's event topics: who subscribed to what, and what each final block tells them.

A client subscribes on its connection (``Subscribe``, docs/PROTOCOL.md) and
then receives numbered ``Event`` messages. Events are a courtesy, not a
record: a subscriber whose outbox is full is dropped rather than slowing the
node, and the chain stays the only source of truth. Three parts of the node
publish (the ledger task for blocks, transfers and mail, the enclave state
sync for roster changes), so the subscriptions live apart from all of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from node.connections import Link
from node.mail_events import mail_events
from node.wire import REQUEST, ErrorMessage, Event
from sagachain.core.block import AcquireEntry, Block, ReleaseEntry

log = logging.getLogger("sagachain.node")

TOPICS = ("blocks", "transfers", "roster", "mail")


@dataclass(eq=False)
class Subscriber:
    link: Link
    topics: set[str]
    seq: int = 0


class Subscriptions:
    """The open subscriptions of this node's connections."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []

    def subscribe(self, link: Link, topics: tuple[str, ...]) -> None:
        """Subscribe ``link`` to ``topics``, or tell it which topics exist when one is unknown."""
        unknown = sorted(set(topics) - set(TOPICS))
        if unknown:
            link.send(ErrorMessage(code=REQUEST, reason=f"unknown topic(s) {unknown}; topics: {list(TOPICS)}", rule=None))
        else:
            self.subscribers.append(Subscriber(link, set(topics)))

    def drop(self, link: Link) -> None:
        """Forget the subscriptions of a connection that closed."""
        self.subscribers = [s for s in self.subscribers if s.link is not link]

    def announce(self, block: Block) -> None:
        """Tell subscribers of a final block just stored: the block, its transfers, its mail (MBX-4)."""
        entries = block.tx_entries()
        self.publish("blocks", {"shard": block.shard, "height": block.height, "hash": block.hash, "time": block.header.time,
                                "txs": [e.tx.id for e in entries], "ok": [bool(getattr(e, "ok", True)) for e in entries]})
        for entry in block.entries:
            if isinstance(entry, ReleaseEntry):
                self.publish("transfers", {"account": entry.account, "from": block.shard, "to": entry.to_shard,
                                           "shard": block.shard, "height": block.height, "stage": "release"})
            elif isinstance(entry, AcquireEntry):
                self.publish("transfers", {"account": entry.account, "from": entry.release.shard, "to": block.shard,
                                           "shard": block.shard, "height": block.height, "stage": "acquire"})
        if any("mail" in sub.topics for sub in self.subscribers):  # MBX-4: envelopes arrived, acknowledged, purged
            for data in mail_events(block):
                self.publish("mail", data)

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            if topic in sub.topics:
                if not sub.link.send(Event(topic=topic, seq=sub.seq, data=data)):
                    log.info("subscriber %s cannot keep up; dropping its subscription", sub.link.name)
                    self.subscribers.remove(sub)
                    sub.link.close()
                sub.seq += 1
