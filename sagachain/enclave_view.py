"""What ``sagachain enclave`` shows: a roster as a rich table or a JSON-ready tree.

Built from a :class:`RosterView` alone, with no I/O, like ``sagachain.tx_view``,
so the command stays thin and the rendering is tested on a string buffer.
Ids appear as their first 12 hex digits in a table, with no ellipsis, so a
row's node prefix can be pasted as NODE (any prefix unique on the roster
names a node), and in full in JSON.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from sagachain.core.roster_calls import RosterView
from sagachain.tx_view import plain

PREFIX = 12  # hex digits of an id in a table


def prefix(data: bytes) -> str:
    return data.hex()[:PREFIX]


def key_fingerprint(key: bytes) -> str:
    """A node key as operators compare it: its first 8 hex digits, as node.ready and devnet.json
    spell the whole key (``node_key``), so a glance tells which key the roster holds (MEM-5);
    ``--json`` has the whole key."""
    return key.hex()[:8]


def head_line(view: RosterView) -> str:
    head = view.head
    return (
        f"kind {head.kind}, strategy {head.strategy}, policy auto_join={'yes' if head.policy.auto_join else 'no'}, "
        f"epoch {head.epoch}, version {head.version}, shards {', '.join(head.shards) or '(none)'}"
    )


def roster_table(view: RosterView, where: str, names: dict[bytes, str] | None = None) -> Table:
    """One row per entry, in node id order; ``where`` says which state it was read from.

    Acting accounts, key proofs and earlier keys are left to ``--json``: the
    table fits 80 columns without them. An invited PENDING entry is starred.
    """
    names = names or {}
    invited = any(e.invite for e in view.entries.values())
    caption = head_line(view) + ("; * invited: key material escrowed until the accept" if invited else "")
    table = Table(title=f"roster of enclave {view.enclave} ({where})", caption=caption)
    table.add_column("node", no_wrap=True)
    if names:
        table.add_column("name")
    for column in ("state", "traits", "seats", "key", "since"):
        table.add_column(column, justify="right" if column == "since" else "left", no_wrap=column in ("state", "traits", "key"))
    for entry in view.entries.values():
        cells = [prefix(entry.node)]
        if names:
            cells.append(names.get(entry.node, ""))
        state = entry.state + ("*" if entry.invite else "")
        cells += [state, ",".join(entry.traits) or "-", ",".join(entry.shards) or "-", key_fingerprint(entry.key), str(entry.since)]
        table.add_row(*cells)
    return table


def roster_json(view: RosterView, where: dict[str, Any]) -> dict[str, Any]:
    """The roster as one JSON object: head fields, every entry's wire fields, where it was read."""
    return {
        "enclave": view.enclave,
        "read": where,
        "head": plain(view.head),
        "entries": [plain(entry) for entry in view.entries.values()],
        "members": sorted(node.hex() for node in view.schedule.members),
    }
