"""What a final block tells mailbox subscribers: the node's ``mail`` event topic (MBX-4).

Subscribers are notified of new envelopes in real time (MBX-4); a device
that follows its mailbox learns from an event that there is something to
fetch, then fetches and opens it itself. An event therefore carries only
what the public chain already shows of an envelope: its mailbox, sequence
number, sender account, size, how many target devices acknowledged it, and
where it became final. Never the sealed bytes, never anything opened.

Where the facts come from:

- an open entry (TX-2) logs each mailbox call: ``["envelope", mailbox, seq,
  sender, size]`` for a send, ``["acked", mailbox, seq]`` or ``["purged",
  mailbox, seq]`` for an acknowledgement or a purge
  (``runtimes.system_classes._mailbox_call``). A script may ``log`` anything,
  so a log line alone proves nothing: it counts only when the entry's own
  state updates hold that envelope, in the state the line claims;
- a mixed entry's log is a hash (TX-4), but its public updates still carry
  every envelope it wrote; as the MBX rules allow an envelope only to arrive
  (no acknowledgement, not purged), gain acknowledgements, or be purged, the
  updated record alone says which happened.

This module is pure: the node calls :func:`mail_events` from
``Subscriptions.announce`` (``node/subscriptions.py``) for every final block
it applies, after the block passed every rule.
"""

from __future__ import annotations

from typing import Any

from sagachain.core.block import Block, MixedEntry, ObjectUpdate, OpenEntry
from sagachain.core.mailbox import ENVELOPE_CLASS_ID, EnvelopeRecord, envelope_id, envelope_of

TOPIC = "mail"
ARRIVED = "arrived"
ACKED = "acked"
PURGED = "purged"
_LOGGED = {"envelope": ARRIVED, "acked": ACKED, "purged": PURGED}  # log line tag -> change


def mail_events(block: Block) -> list[dict[str, Any]]:
    """One event ``data`` per envelope change the block's successful entries made, in entry order.

    Fields: ``mailbox`` (bin32), ``seq``, ``change`` (``"arrived"``, ``"acked"``
    or ``"purged"``), ``sender`` (the account that sent the envelope), ``size``
    (bytes of the sealed envelope), ``acked`` and ``targets`` (how many devices
    acknowledged it, and must), ``shard``, ``height``, ``time`` (block time, ms)
    and ``tx`` (the transaction id).
    """
    events: list[dict[str, Any]] = []
    for entry in block.entries:
        if isinstance(entry, OpenEntry) and entry.ok:
            changes = _logged_changes(entry)
        elif isinstance(entry, MixedEntry):
            changes = _updated_changes(entry)
        else:
            continue
        for change, mailbox, record in changes:
            events.append({
                "mailbox": mailbox, "seq": record.seq, "change": change, "sender": record.sender, "size": record.size,
                "acked": len(record.acked), "targets": len(record.targets),
                "shard": block.shard, "height": block.height, "time": block.header.time, "tx": entry.tx.id,
            })
    return events


def _envelopes(updates: tuple[ObjectUpdate, ...]) -> dict[bytes, tuple[bytes, EnvelopeRecord]]:
    """Object id -> (mailbox, record) for every envelope object among ``updates``."""
    found = {}
    for update in updates:
        value = update.value
        if value is not None and value.class_id == ENVELOPE_CLASS_ID:
            record = envelope_of(value)
            if record is not None and update.id == envelope_id(value.owner, record.seq):
                found[update.id] = (value.owner, record)
    return found


def _logged_changes(entry: OpenEntry) -> list[tuple[str, bytes, EnvelopeRecord]]:
    """The open entry's mailbox log lines that its own updates confirm."""
    written = _envelopes(entry.updates)
    changes = []
    for item in entry.log:
        if not isinstance(item, list | tuple) or len(item) < 3 or not isinstance(item[0], str) or item[0] not in _LOGGED:
            continue
        mailbox, seq = item[1], item[2]
        if not isinstance(mailbox, bytes) or not isinstance(seq, int) or isinstance(seq, bool):
            continue
        held = written.get(envelope_id(mailbox, seq))
        if held is None or held[0] != mailbox:
            continue
        change, record = _LOGGED[item[0]], held[1]
        confirmed = {
            ARRIVED: list(item[3:]) == [record.sender, record.size],
            ACKED: bool(record.acked),
            PURGED: bool(record.purged),
        }[change]
        if confirmed:
            changes.append((change, mailbox, record))
    return changes


def _updated_changes(entry: MixedEntry) -> list[tuple[str, bytes, EnvelopeRecord]]:
    """A mixed entry's envelope changes, read from its public updates (its log is a hash, TX-4)."""
    return [(_state(record), mailbox, record) for _, (mailbox, record) in sorted(_envelopes(entry.updates).items())]


def _state(record: EnvelopeRecord) -> str:
    """Which change left an envelope in this state: the MBX rules allow no other."""
    if record.purged:
        return PURGED
    return ACKED if record.acked else ARRIVED
