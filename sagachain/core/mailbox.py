"""Mailboxes and the registry as public objects (MBX-1..MBX-4, REG-1).

A mailbox is a public account of class ``ClassMailbox`` holding sealed
envelopes for one recipient: an identity, or an enclave (CMI-4: the only way
enclaves exchange data). Its head names the recipient, the account that
manages it, the retention policy, the devices that must acknowledge, and the
next sequence number. Each envelope is one object under
``envelope_id(mailbox, seq)``; when the policy allows, it is purged: replaced
by a tombstone that keeps who sent it, who acknowledged it and when, and drops
the ciphertext. The tombstone is what makes a purge a recorded state change
the auditor can judge (MBX-2).

The registry is one public account of class ``ClassRegistry``: identity ->
its enclaves and mailbox, enclave -> its kind, roster and mailbox (REG-1).
Shards and nodes are not copied into it; they are read where they are
authoritative, the genesis and the roster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagachain.core.encoding import derive_id
from sagachain.core.objects import StoredObject, class_id_for
from sagachain.core.wire import WireError, from_wire, to_wire

MAILBOX_CLASS_NAME = "ClassMailbox"
ENVELOPE_CLASS_NAME = "Envelope"
REGISTRY_CLASS_NAME = "ClassRegistry"
IDENTITY_RECORD_CLASS_NAME = "IdentityRecord"
ENCLAVE_ENTRY_CLASS_NAME = "RegistryEnclave"
MAILBOX_CLASS_ID = class_id_for(MAILBOX_CLASS_NAME)
ENVELOPE_CLASS_ID = class_id_for(ENVELOPE_CLASS_NAME)
REGISTRY_CLASS_ID = class_id_for(REGISTRY_CLASS_NAME)
IDENTITY_RECORD_CLASS_ID = class_id_for(IDENTITY_RECORD_CLASS_NAME)
ENCLAVE_ENTRY_CLASS_ID = class_id_for(ENCLAVE_ENTRY_CLASS_NAME)

REGISTRY_ID = derive_id("registry")


def mailbox_id(recipient: bytes | str) -> bytes:
    """The mailbox of an identity (its account id) or an enclave (its id)."""
    return derive_id("mailbox", recipient)


def envelope_id(mailbox: bytes, seq: int) -> bytes:
    return derive_id("envelope", mailbox, seq)


def identity_record_id(account: bytes) -> bytes:
    return derive_id("registry-identity", account)


def enclave_record_id(enclave: str) -> bytes:
    return derive_id("registry-enclave", enclave)


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """A recipient's device: what envelopes are sealed to (``key``, Ed25519) and the
    account whose transactions acknowledge for it."""

    id: bytes
    key: bytes
    account: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxHead:
    """A mailbox account's own fields. ``ttl`` is in milliseconds of block time (TTL retention)."""

    recipient: bytes
    manager: bytes  # the account that registers and drops devices
    retention: str
    ttl: int
    next_seq: int
    devices: tuple[Device, ...]

    def device(self, device_id: bytes) -> Device | None:
        return next((d for d in self.devices if d.id == device_id), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeRecord:
    """One envelope in a mailbox (MBX-1, MBX-4). ``sealed`` is the encoded sealed envelope;
    empty once purged, when ``purged`` says why (MBX-2)."""

    seq: int
    sender: bytes
    sealed: bytes
    size: int  # bytes of the sealed envelope, kept after a purge so traffic can be accounted
    time: int  # block time it arrived
    targets: tuple[bytes, ...]  # the devices that must acknowledge: those registered when it arrived
    acked: tuple[bytes, ...]
    purged: str = ""  # "" while held; otherwise the retention that purged it
    purged_at: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityRecord:
    """REG-1: an identity's enclaves (``personal``, ``dm``, ``shared``) and its mailbox."""

    account: bytes
    personal: str
    dm: str
    shared: tuple[str, ...]
    mailbox: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryEnclave:
    """REG-1: an enclave's kind (a hint), its roster account and its mailbox, and who registered it."""

    enclave: str
    kind: str
    roster: bytes
    mailbox: bytes
    registrant: bytes


def to_object(class_id: bytes, owner: bytes, record: Any, balance: int | None = None) -> StoredObject:
    fields = to_wire(record)
    if balance is not None:
        fields["balance"] = balance
    return StoredObject(class_id=class_id, owner=owner, fields=fields)


def read(cls: type, class_id: bytes, obj: StoredObject | None) -> Any:
    """The record ``obj`` holds, or None when it is absent, of another class, or unreadable."""
    if obj is None or obj.class_id != class_id:
        return None
    try:
        return from_wire(cls, {k: v for k, v in obj.fields.items() if k != "balance"}, cls.__name__)
    except (WireError, TypeError, ValueError):
        return None


def head_of_mailbox(obj: StoredObject | None) -> MailboxHead | None:
    return read(MailboxHead, MAILBOX_CLASS_ID, obj)


def envelope_of(obj: StoredObject | None) -> EnvelopeRecord | None:
    return read(EnvelopeRecord, ENVELOPE_CLASS_ID, obj)
