"""Pinned peer keys (MEM-5): trust a node's key on first contact, then only a rotation the roster records.

A node is known by its *node id* (the id of its first key, the one the
genesis or its roster entry names); its key may change when its operator
rotates it (``sagachain enclave rotate-key``), and the roster then records
the old key in the entry's ``previous_keys``. A connection proves only a
key, so the node resolves which node that key belongs to and holds it to
the pin:

- a key never seen for a node is pinned for it (first contact);
- the pinned key is accepted;
- another key is accepted, and becomes the pin, only when some enclave's
  roster names it as that node's key and lists the pinned key among the
  node's previous keys; anything else, including a node's *old* key after a
  rotation, is refused with MEM-5.

The book is pure: the node reads the pins from its database at start and
writes each change back (``changed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sagachain.core.ledger import ChainState
from sagachain.core.objects import node_id_for
from sagachain.core.roster import RosterEntry

RULE = "MEM-5"


@dataclass
class PinBook:
    pins: dict[bytes, bytes] = field(default_factory=dict)  # node id -> pinned key
    changed: dict[bytes, bytes] = field(default_factory=dict)  # pins made or moved since the node last saved

    def node_of(self, key: bytes, chain: ChainState) -> bytes:
        """The node a key speaks for: the node it is pinned for, else the node whose roster entry
        or genesis record holds it, else the node the key itself names (a fresh node's id)."""
        for node, pinned in self.pins.items():
            if pinned == key:
                return node
        for entry in _entries(chain):
            if entry.key == key or key in entry.previous_keys:
                return entry.node
        for node, record in chain.nodes.items():
            if record.public_key == key:
                return node
        return node_id_for(key)

    def judge(self, node: bytes, key: bytes, chain: ChainState) -> str | None:
        """Why ``key`` may not speak for ``node`` now (None: it may; a first contact pins it)."""
        retired = [e for e in _entries(chain) if e.node == node and e.key != key and key in e.previous_keys]
        if retired:
            return (f"node {node.hex()[:12]} presented key {key.hex()[:16]}, which its roster entry "
                    "records as rotated away; refusing the connection (MEM-5): an old key may be a stolen one")
        pinned = self.pins.get(node)
        if pinned is None or pinned == key:
            if pinned is None:
                self._pin(node, key)
            return None
        for entry in _entries(chain):
            if entry.node == node and entry.key == key and pinned in entry.previous_keys:
                self._pin(node, key)
                return None
        return (f"node {node.hex()[:12]} presented key {key.hex()[:16]}, but {pinned.hex()[:16]} is pinned for it and no "
                "roster records a rotation from the pinned key to this one; refusing the connection (MEM-5). If the "
                "operator rotated the key, wait until the rotation is final, or remove the pin deliberately")

    def configure(self, node: bytes, key: bytes) -> None:
        """A key the operator wrote into the config is the node's pin until the roster moves it."""
        if node not in self.pins:
            self._pin(node, key)

    def _pin(self, node: bytes, key: bytes) -> None:
        self.pins[node] = key
        self.changed[node] = key


def _entries(chain: ChainState) -> list[RosterEntry]:
    return [entry for enclave in sorted(chain.seats) for entry in chain.roster_entries(enclave)]
