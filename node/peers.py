"""The node's connections: the listener, a dialer per configured peer, a reader per channel.

Every channel, accepted or dialed, peer or client, gets a ``Link`` (an
outbox drained by its own task) and a reader that hands each message to the
node's dispatch. What a connection may say depends on who it is: a key is a
node's when it is pinned, on the genesis or a roster, or configured; anything
else is a client. Keys are pinned on first contact and a changed key is
refused unless the roster records the rotation (MEM-5); a key that keeps
breaking the protocol is put in backoff and refused at the handshake.

Nothing here knows what the messages mean: protocol errors raised by the
dispatch end the connection here, in one place, with a strike.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from node.channel import Channel, accept, connect
from node.config import NodeConfig, Peer
from node.connections import Backoff, Link
from node.metrics import NodeMetrics
from node.pins import PinBook
from node.storage import NodeStore
from node.wire import Message, ProtocolError
from sagachain.core.keys import KeyPair
from shards.chainview import ChainView

log = logging.getLogger("sagachain.node")

DIAL_BACKOFF = (0.2, 5.0)  # first and longest wait between dials of a peer
MAX_HANDSHAKES = 64  # handshakes in progress at once
PIN = "pin/"  # meta key prefix: a node id (hex) -> the key pinned for it (MEM-5)
PIN_ADDRESS = "pin-address/"  # meta key prefix: a peer address -> the node id first met there


class Peers:
    """Open links by node, the pinned keys (MEM-5), and the backoff of misbehaving keys."""

    nursery: trio.Nursery  # set by ``start``: pins are saved from tasks of their own

    def __init__(self, *, config: NodeConfig, key: KeyPair, store: NodeStore, view: ChainView, names: dict[bytes, str],
                 metrics: NodeMetrics, db: Callable[..., Awaitable[Any]],
                 dispatch: Callable[[Link, Message], Awaitable[None]], closed: Callable[[Link], None]) -> None:
        self.config, self.key, self.store, self.view, self.names = config, key, store, view, names
        self.metrics, self.db, self.dispatch, self.closed = metrics, db, dispatch, closed
        self.backoff = Backoff()
        self.handshakes = trio.Semaphore(MAX_HANDSHAKES)
        self.links: dict[bytes, Link] = {}
        chain = view.chain
        self.pins = PinBook({bytes.fromhex(k.removeprefix(PIN)): v for k, v in store.meta_items(PIN).items()})
        self.dialed = {k.removeprefix(PIN_ADDRESS): v for k, v in store.meta_items(PIN_ADDRESS).items()}  # address -> node
        self.configured = {bytes.fromhex(p.node_key) for p in config.peers if p.node_key}
        for configured in self.configured:
            self.pins.configure(self.pins.node_of(configured, chain), configured)
        self.peer_ids = {self.pins.node_of(k, chain) for k in self.configured} | set(self.dialed.values())

    def start(self, nursery: trio.Nursery, listeners: list[trio.SocketListener]) -> None:
        """Accept on ``listeners`` and dial every configured peer, in ``nursery``."""
        self.nursery = nursery
        nursery.start_soon(trio.serve_listeners, self._accept, listeners)
        for peer in self.config.peers:
            nursery.start_soon(self._dial, peer)

    def send_to(self, node_id: bytes, message: Message) -> None:
        link = self.links.get(node_id)
        if link is not None:
            link.send(message)

    def node_of_peer(self, peer: Peer) -> bytes | None:
        """The node a configured peer is known to be: first met at its address, or named by its key."""
        return self.dialed.get(peer.address) or (self.pins.node_of(bytes.fromhex(peer.node_key), self.view.chain) if peer.node_key else None)

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

    def judge_dialed(self, peer: Peer, key: bytes) -> str | None:
        """MEM-5 for a peer this node dialed: the key must be the one pinned for the node at that
        address (its configured key names it; without one, the first key met there does)."""
        chain = self.view.chain
        configured = bytes.fromhex(peer.node_key) if peer.node_key else key
        node = self.dialed.get(peer.address) or self.pins.node_of(configured, chain)
        problem = self.pins.judge(node, key, chain)
        if problem is None and self.dialed.get(peer.address) != node:
            self.dialed[peer.address] = node
            self.peer_ids.add(node)
            self.nursery.start_soon(self.db, self.store.set_meta, PIN_ADDRESS + peer.address, node)
        self._save_pins()
        return problem

    def _save_pins(self) -> None:
        for node, key in self.pins.changed.items():
            log.info("pinned key %s for node %s (MEM-5)", key.hex()[:16], self.names.get(node, node.hex()[:12]))
            self.nursery.start_soon(self.db, self.store.set_meta, PIN + node.hex(), key)
        self.pins.changed.clear()

    async def _dial(self, peer: Peer) -> None:
        wait = DIAL_BACKOFF[0]
        host, port = peer.address.rsplit(":", 1)
        while True:
            try:
                stream = await trio.open_tcp_stream(host, int(port))
                channel = await connect(stream, self.key, expected=lambda key: self.judge_dialed(peer, key))
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
                        await self.dispatch(link, message)
                except ProtocolError as exc:
                    self._breach(link, channel.peer, exc)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    pass
                link.close()
        finally:
            if self.links.get(node_id) is link:
                del self.links[node_id]
                self.metrics.peers.set(len(self.links))
            self.closed(link)
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
