"""The node's connections: one outbox per channel, and backoff for peers that send garbage.

Every open channel (dialed or accepted, peer or client) gets an outbox that
one task drains, so a slow or dead connection never stalls the node's other
work: whoever wants to send puts the message in the outbox and moves on; a
full outbox drops the message, which the protocol tolerates (consensus
resends, catch-up fetches missed blocks, a subscriber too slow to keep up is
disconnected).

Backoff is per node key: a key whose connections keep breaking the protocol
is refused at the handshake for a while, doubling each time. Garbage before
a handshake completes cannot be tied to a key, so such a connection is only
dropped (and counted); the number of handshakes in progress is bounded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import trio

from node.channel import Channel
from node.wire import Message, ProtocolError

log = logging.getLogger("sagachain.node")

OUTBOX = 4096  # messages queued per connection before new ones are dropped
STRIKES = 3  # protocol breaches within ``STRIKE_WINDOW`` that put a key in backoff
STRIKE_WINDOW = 60.0  # seconds
FIRST_BACKOFF = 5.0  # seconds; doubles on each new backoff of the same key
MAX_BACKOFF = 300.0


@dataclass(eq=False)
class Link:
    """An open channel and its outbox; ``node_id`` is set when the other end is a known node."""

    channel: Channel
    name: str
    node_id: bytes | None
    send_channel: trio.MemorySendChannel[Message]
    receive_channel: trio.MemoryReceiveChannel[Message]
    dropped: int = 0

    @classmethod
    def open(cls, channel: Channel, name: str, node_id: bytes | None) -> Link:
        send, receive = trio.open_memory_channel[Message](OUTBOX)
        return cls(channel, name, node_id, send, receive)

    def send(self, message: Message) -> bool:
        """Queue ``message``; False when it was dropped (outbox full or link closed)."""
        try:
            self.send_channel.send_nowait(message)
            return True
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.dropped += 1
            return False

    async def pump(self) -> None:
        """Send queued messages until the link closes."""
        async with self.receive_channel:
            async for message in self.receive_channel:
                try:
                    await self.channel.send(message)
                except (ProtocolError, trio.ClosedResourceError, trio.BrokenResourceError) as exc:
                    log.debug("link %s: send failed (%s); closing", self.name, exc)
                    return

    def close(self) -> None:
        self.send_channel.close()


@dataclass
class Backoff:
    """Strikes and backoff deadlines per node key; times are trio clock seconds."""

    strikes: dict[bytes, list[float]] = field(default_factory=dict)
    until: dict[bytes, float] = field(default_factory=dict)
    length: dict[bytes, float] = field(default_factory=dict)

    def strike(self, key: bytes, now: float) -> float | None:
        """Count a breach by ``key``; the backoff length started when it was one too many."""
        recent = [t for t in self.strikes.get(key, []) if now - t < STRIKE_WINDOW] + [now]
        self.strikes[key] = recent
        if len(recent) < STRIKES:
            return None
        self.strikes[key] = []
        length = min(MAX_BACKOFF, self.length.get(key, FIRST_BACKOFF / 2) * 2)
        self.length[key] = length
        self.until[key] = now + length
        return length

    def refused(self, key: bytes, now: float) -> str | None:
        until = self.until.get(key)
        if until is None or now >= until:
            return None
        return f"backed off for {until - now:.0f} more seconds after repeated protocol violations; fix the sender"
