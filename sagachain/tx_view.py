"""What a node answers, shown to a person (rich tables) or to a program (JSON-ready trees).

``sagachain tx`` and ``sagachain node status ADDRESS`` print node replies.
Both forms are built here from the reply values alone, with no I/O, so the
commands stay thin and the rendering is testable on a string buffer.

JSON carries every byte string as lowercase hex (JSON has no bytes), an
object reference as ``{"ref": hex}``, and each record as the map of its wire
fields (docs/FORMAT.md), so a JSON line reads like the MessagePack it came from.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from rich.table import Table

from node.messages import ObjectReply, Receipt, Status
from node.wire import AccountReply, BlockReply, Event, Message, TxReceipt
from sagachain.core import block as blocks
from sagachain.core.encoding import ObjRef
from sagachain.core.objects import StoredObject
from sagachain.core.wire import to_wire

SHORT = 16  # hex digits shown of an id in a table; JSON always has the whole id
STATUS_ORDER = ("node", "name", "node_key", "address", "shards", "pending", "enclaves", "peers")


def plain(value: Any) -> Any:
    """``value`` as a JSON-ready tree: bytes as hex, records as maps, tuples as lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, ObjRef):
        return {"ref": value.id.hex()}
    if isinstance(value, blocks.Block):
        return block_json(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(to_wire(value))
    if isinstance(value, dict):
        return {(k.hex() if isinstance(k, bytes) else str(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def message_json(msg: Message) -> dict[str, Any]:
    """A reply as JSON: its wire ``type`` and fields."""
    return {"type": msg.TYPE, **plain(msg.fields_to_wire())}


def block_json(block: blocks.Block) -> dict[str, Any]:
    """A block as the chain file stores it, plus its hash (derived, so not among the wire fields)."""
    wire = plain({"header": to_wire(block.header), "entries": [to_wire(blocks.entry_to_wire(e)) for e in block.entries], "qc": to_wire(list(block.qc))})
    wire["hash"] = block.hash.hex()
    return wire


def short(data: Any) -> str:
    """An id cut to ``SHORT`` hex digits; anything else (an event field of an odd shape) as text."""
    if not isinstance(data, bytes):
        return "-" if data is None else str(data)
    text = data.hex()
    return text if len(text) <= SHORT else text[:SHORT] + "…"


def _pairs(title: str) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    return table


def _text(value: Any, nested: bool = False) -> str:
    """One table cell: ids in full hex (a table is often copied from), containers as compact
    JSON-like text; nested ones in braces and brackets, so their commas stay readable."""
    tree = plain(value)
    if isinstance(tree, dict):
        text = ", ".join(f"{k}: {_text(v, True)}" for k, v in tree.items())
        return f"{{{text}}}" if nested else text or "(empty)"
    if isinstance(tree, list):
        text = ", ".join(_text(v, True) for v in tree)
        return f"[{text}]" if nested else text or "(none)"
    return "-" if tree is None else str(tree)


def tx_receipt_table(receipt: TxReceipt) -> Table:
    table = _pairs("submitted")
    table.add_row("transaction", receipt.tx.hex())
    table.add_row("accepted", "yes: queued" if receipt.accepted else "[red]no[/red]")
    if not receipt.accepted:
        table.add_row("rule", receipt.rule or "-")
        table.add_row("reason", receipt.reason or "-")
    return table


def receipt_table(receipt: Receipt) -> Table:
    table = _pairs(f"transaction {short(receipt.tx)}")
    table.add_row("transaction", receipt.tx.hex())
    table.add_row("status", receipt.status)
    if receipt.status == "final":
        table.add_row("block", f"{receipt.shard} / {receipt.height}, entry {receipt.index}")
        table.add_row("script", "succeeded" if receipt.ok else "[red]failed[/red]")
    if receipt.rule or receipt.reason:
        table.add_row("rule", receipt.rule or "-")
        table.add_row("reason", receipt.reason or "-")
    return table


def _object_rows(table: Table, value: StoredObject | None) -> None:
    if value is None:
        table.add_row("value", "(unknown here, or off chain: enclave state never leaves its enclave)")
        return
    table.add_row("class", value.class_id.hex())
    table.add_row("owner", value.owner.hex())
    for name, field_value in sorted(value.fields.items()):
        table.add_row(f"  {name}", _text(field_value))


def account_table(reply: AccountReply) -> Table:
    table = _pairs(f"account {short(reply.account)}")
    table.add_row("account", reply.account.hex())
    table.add_row("owning shard", reply.shard or "(unknown)")
    table.add_row("as of height", str(reply.height))
    table.add_row("last nonce", str(reply.nonce))
    _object_rows(table, reply.value)
    return table


def object_table(reply: ObjectReply) -> Table:
    table = _pairs(f"object {short(reply.id)}")
    table.add_row("object", reply.id.hex())
    _object_rows(table, reply.value)
    return table


def entry_summary(entry: blocks.Entry) -> tuple[str, str, str]:
    """(kind, what it is about, outcome) of one block entry, for one table row."""
    if isinstance(entry, blocks.OpenEntry):
        return entry.kind, f"tx {short(entry.tx.id)}", ("ok" if entry.ok else f"failed: {entry.error}") + f", gas {entry.gas_used}"
    if isinstance(entry, blocks.EnclaveEntry | blocks.MixedEntry):
        return entry.kind, f"tx {short(entry.tx.id)}", f"gas charged {entry.gas_charged}"
    if isinstance(entry, blocks.ReleaseEntry):
        return entry.kind, f"account {short(entry.account)}", f"to {entry.to_shard}"
    if isinstance(entry, blocks.AcquireEntry):
        return entry.kind, f"account {short(entry.account)}", f"from {entry.release.shard}/{entry.release.height}"
    if isinstance(entry, blocks.DeployEntry):
        return entry.kind, f"class {entry.cls.name}", f"by {short(entry.deployer)}"
    if isinstance(entry, blocks.RollbackEntry):
        return entry.kind, f"{len(entry.accounts)} accounts", f"to {entry.to.shard}/{entry.to.height}"
    return entry.kind, getattr(entry, "enclave", ""), getattr(entry, "reason", "")


def block_tables(reply: BlockReply) -> list[Table]:
    """The header, then one row per entry; a missing block is one line saying so."""
    if reply.block is None:
        table = _pairs(f"block {reply.shard} / {reply.height}")
        table.add_row("block", "(this node does not have it)")
        return [table]
    block = reply.block
    header = block.header
    table = _pairs(f"block {header.shard} / {header.height}")
    table.add_row("hash", block.hash.hex())
    table.add_row("parent", header.parent.hex())
    table.add_row("time", str(header.time))
    table.add_row("producer", header.producer.hex())
    table.add_row("committee", header.committee.hex())
    table.add_row("gas floor", str(header.gas_floor))
    table.add_row("coinbase / fees / tax", f"{header.coinbase} / {header.fees} / {header.tax}")
    kinds = Counter(e.kind for e in block.entries)
    table.add_row("entries", f"{len(block.entries)}" + (f" ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})" if kinds else ""))
    table.add_row("qc", f"{len(block.qc)} votes")
    entries = Table(title="entries")
    for column in ("#", "kind", "about", "outcome"):
        entries.add_column(column)
    for index, entry in enumerate(block.entries):
        entries.add_row(str(index), *entry_summary(entry))
    return [table, entries] if block.entries else [table]


def status_table(status: Status, address: str) -> Table:
    """A node's status map as rows: nested maps (a shard's height and queue) fold into one row each."""
    table = _pairs(f"node at {address}")
    # Canonical MessagePack sorts map keys by their bytes, not for reading: put the usual keys first.
    order = {key: i for i, key in enumerate(STATUS_ORDER)}
    for key in sorted(status.data, key=lambda k: (order.get(k, len(order)), str(k))):
        value = status.data[key]
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            for name in sorted(value):
                table.add_row(f"{key} {name}", _text(dict(sorted(value[name].items()))))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for index, item in enumerate(value):  # a peer per row, named when it has a name
                label = item.get("name", index)
                table.add_row(f"{key} {label}", _text({k: v for k, v in sorted(item.items()) if k != "name"}))
        else:
            table.add_row(str(key), _text(value))
    return table


def event_row(event: Event) -> tuple[str, str, str]:
    """One event as (seq, topic, summary); the topic's known shapes read as a sentence."""
    data = event.data if isinstance(event.data, dict) else {}
    if event.topic == "blocks" and "shard" in data:
        txs = data.get("txs") or []
        ok = data.get("ok") or []
        failed = sum(1 for flag in ok if not flag)
        text = f"{data['shard']} / {data.get('height')}  {len(txs)} txs" + (f" ({failed} failed)" if failed else "") + f"  hash {short(data.get('hash'))}"
    elif event.topic == "transfers" and "account" in data:
        text = f"{data.get('stage')} {short(data.get('account'))}  {data.get('from')} -> {data.get('to')}  at {data.get('shard')} / {data.get('height')}"
    elif event.topic == "roster" and "enclave" in data:
        text = f"{data.get('enclave')}: node {short(data.get('node'))} {data.get('change')}" + (f" ({data['reason']})" if data.get("reason") else "")
    else:
        text = _text(event.data)
    return str(event.seq), event.topic, text
