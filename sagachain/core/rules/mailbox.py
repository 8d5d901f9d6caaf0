"""Mailboxes: sealed envelopes (MBX-1), acknowledgement and retention (MBX-2),
per-mailbox order (MBX-4).

``envelope_problem`` judges one envelope's change (arrival, acknowledgement,
purge) from its value before and after; the mailbox's native methods ask it
before they write, and every validator and the auditor ask it about what a
block publishes. A purge replaces the envelope by a tombstone, so "purged
before its policy allowed" is visible after the fact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sagachain.core.block import Block, MixedEntry, OpenEntry
from sagachain.core.envelope import parse
from sagachain.core.ledger import ChainState
from sagachain.core.mailbox import (
    ENVELOPE_CLASS_ID,
    MAILBOX_CLASS_ID,
    EnvelopeRecord,
    MailboxHead,
    envelope_id,
    envelope_of,
    head_of_mailbox,
)
from sagachain.core.roster import BURN_ON_READ, PERMANENT, RETENTIONS, TTL
from sagachain.core.rules.catalog import ENTRY, Violation, rule
from sagachain.core.rules.tools import Tools


def mbx_1_sealed_problem(sealed: bytes, targets: tuple[bytes, ...]) -> str | None:
    """MBX-1: the bytes are a sealed envelope, its boxes addressed to exactly the target devices
    (a group envelope carries none: the conversation key was handed over earlier)."""
    envelope = parse(sealed)
    if envelope is None:
        return "the envelope is not a sealed envelope (boxes, group, body)"
    if envelope.group:
        return None if not envelope.boxes else "a group envelope carries no per-device boxes"
    boxed = tuple(sorted(b.device for b in envelope.boxes))
    if boxed != tuple(sorted(targets)):
        return f"the envelope is sealed to {len(boxed)} devices, the mailbox has {len(targets)} registered; seal to every registered device"
    return None


def purge_allowed(head: MailboxHead, envelope: EnvelopeRecord, acked: tuple[bytes, ...], time: int) -> str | None:
    """MBX-2: why ``envelope`` may not be purged at ``time`` with these acknowledgements; None when it may."""
    if head.retention == PERMANENT:
        return "the mailbox keeps envelopes permanently; nothing may be purged"
    if head.retention == BURN_ON_READ:
        # A target device dropped since can never acknowledge; waiting for it would keep the envelope for ever.
        missing = {t for t in envelope.targets if t not in acked and head.device(t) is not None}
        return f"burn on read: {len(missing)} registered target devices have not acknowledged" if missing else None
    if head.retention == TTL:
        due = envelope.time + head.ttl
        return None if time >= due else f"TTL: the envelope may go at time {due}, it is {time}"
    return f"unknown retention {head.retention!r}; one of {', '.join(RETENTIONS)}"


def envelope_problem(
    head: MailboxHead, before: EnvelopeRecord | None, after: EnvelopeRecord | None, *, sender: bytes, signer: bytes, time: int, seq_range: range
) -> tuple[str, str] | None:
    """(rule, reason) when an envelope may not go from ``before`` to ``after``; None when it may.

    ``sender`` is the account that sent the envelope's message, ``signer`` the
    transaction's signer (who acknowledges for a device), ``time`` the block's
    time, ``seq_range`` the sequence numbers the mailbox gave out in this change.
    """
    if after is None:
        return ("MBX-2", "an envelope is never deleted: a purge leaves a tombstone recording who acknowledged it and when")
    if before is None:
        if after.seq not in seq_range:
            return ("MBX-4", f"envelope number {after.seq} is not the mailbox's next sequence number ({seq_range.start})")
        if after.acked or after.purged or after.time != time or after.sender != sender:
            return ("MBX-4", "a new envelope has no acknowledgements, is not purged, carries the block's time and its sender")
        if after.targets != tuple(sorted(d.id for d in head.devices)):
            return ("MBX-2", "a new envelope's targets are the devices registered when it arrives")
        if after.size != len(after.sealed):
            return ("MBX-1", "the recorded size is not the envelope's size")
        problem = mbx_1_sealed_problem(after.sealed, after.targets)
        return ("MBX-1", problem) if problem else None
    if before.purged:
        return ("MBX-2", f"envelope {before.seq} was purged ({before.purged}); it does not change again")
    if (after.seq, after.sender, after.size, after.time, after.targets) != (before.seq, before.sender, before.size, before.time, before.targets):
        return ("MBX-2", "only acknowledgements and a purge change a held envelope")
    new_acks = set(after.acked) - set(before.acked)
    if set(before.acked) - set(after.acked) or len(after.acked) != len(set(after.acked)):
        return ("MBX-2", "acknowledgements are only ever added, once per device")
    for device_id in sorted(new_acks):
        device = head.device(device_id)
        if device_id not in before.targets:
            return ("MBX-2", f"device {device_id.hex()[:12]} is not a target of envelope {before.seq}")
        if device is None or device.account != signer:
            return ("MBX-2", f"the acknowledgement for device {device_id.hex()[:12]} is not signed by its account")
    if not after.purged:
        if after.sealed != before.sealed:
            return ("MBX-2", "a held envelope's ciphertext does not change")
        return None
    if after.sealed or after.purged != head.retention or after.purged_at != time:
        return ("MBX-2", "a tombstone drops the ciphertext and records the retention and time that purged it")
    refusal = purge_allowed(head, before, after.acked, time)
    return ("MBX-2", f"envelope {before.seq} purged before its policy allows: {refusal}") if refusal else None


def mailbox_change_problems(
    state: ChainState, updates: Any, *, sender_ok: Any, signer: bytes, time: int
) -> Iterator[tuple[str, str, bytes]]:
    """(rule, reason, mailbox) for a transaction's changes to mailboxes and their envelopes."""
    heads: dict[bytes, tuple[MailboxHead | None, MailboxHead | None]] = {}
    envelopes: list[tuple[bytes, bytes, Any, Any]] = []
    for update in updates:
        old = state.objects.get(update.id)
        value = update.value if update.value is not None else old
        if value is None:
            continue
        if value.class_id == MAILBOX_CLASS_ID or (old is not None and old.class_id == MAILBOX_CLASS_ID):
            heads[update.id] = (head_of_mailbox(old), head_of_mailbox(update.value))
        elif value.class_id == ENVELOPE_CLASS_ID or (old is not None and old.class_id == ENVELOPE_CLASS_ID):
            envelopes.append((value.owner, update.id, old, update.value))
    for mailbox, (before, after) in heads.items():
        if before is None or after is None:
            yield ("MBX-1", "a mailbox stays a readable mailbox", mailbox)
            continue
        if (after.recipient, after.manager, after.retention, after.ttl) != (before.recipient, before.manager, before.retention, before.ttl):
            yield ("MBX-2", "a mailbox's recipient, manager and retention are fixed", mailbox)
        if after.devices != before.devices and signer != before.manager:
            yield ("MBX-2", "only the mailbox's manager registers and drops devices", mailbox)
        if after.next_seq < before.next_seq:
            yield ("MBX-4", "the sequence number never goes back", mailbox)
    for mailbox, oid, old, new in envelopes:
        head_before, head_after = heads.get(mailbox, (None, None))
        head = head_before or head_of_mailbox(state.objects.get(mailbox))
        if head is None:
            yield ("MBX-1", "an envelope outside a readable mailbox", mailbox)
            continue
        before, after = envelope_of(old), envelope_of(new)
        if (old is not None and before is None) or (new is not None and after is None):
            yield ("MBX-1", "an envelope object that does not read as an envelope", mailbox)
            continue
        seqs = range(head.next_seq, (head_after or head).next_seq)
        record = after or before
        assert record is not None
        if oid != envelope_id(mailbox, record.seq):
            yield ("MBX-4", f"envelope {record.seq} is stored under another number's id", mailbox)
            continue
        sender = after.sender if after is not None and before is None and sender_ok(after.sender) else b""
        problem = envelope_problem(head, before, after, sender=sender, signer=signer, time=time, seq_range=seqs)
        if problem is not None:
            yield (*problem, mailbox)
    for mailbox, (before, after) in heads.items():
        if before is not None and after is not None:
            arrived = sum(1 for m, _, old, new in envelopes if m == mailbox and old is None and new is not None)
            if after.next_seq != before.next_seq + arrived:
                yield ("MBX-4", f"the mailbox counted {after.next_seq - before.next_seq} new envelopes, {arrived} arrived", mailbox)


def _check(state: ChainState, block: Block, index: int, entry: Any, rule_id: str) -> Iterator[Violation]:
    declared = {entry.tx.sender, *entry.tx.account_ids()}
    for found, reason, mailbox in mailbox_change_problems(
        state, entry.updates, sender_ok=declared.__contains__, signer=entry.tx.sender, time=block.header.time
    ):
        if found == rule_id:
            yield Violation(rule_id, f"mailbox {mailbox.hex()[:12]}: {reason}", block.shard, block.height, index, entry.tx.id)


def _touches_mailboxes(state: ChainState, entry: Any) -> bool:
    for update in entry.updates:
        value = update.value or state.objects.get(update.id)
        if value is not None and value.class_id in (MAILBOX_CLASS_ID, ENVELOPE_CLASS_ID):
            return True
    return False


@rule("MBX-1", "envelopes are sealed to exactly the mailbox's registered devices; the chain holds only ciphertext", ENTRY, (OpenEntry, MixedEntry))
def check_mbx_1_envelopes(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    if entry.updates and _touches_mailboxes(state, entry):
        yield from _check(state, block, index, entry, "MBX-1")


@rule("MBX-2", "devices acknowledge envelopes; a purge follows the mailbox's retention and leaves a tombstone", ENTRY, (OpenEntry, MixedEntry))
def check_mbx_2_retention(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    if entry.updates and _touches_mailboxes(state, entry):
        yield from _check(state, block, index, entry, "MBX-2")


@rule("MBX-4", "each mailbox numbers its envelopes in order, one number per envelope", ENTRY, (OpenEntry, MixedEntry))
def check_mbx_4_order(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    if entry.updates and _touches_mailboxes(state, entry):
        yield from _check(state, block, index, entry, "MBX-4")
