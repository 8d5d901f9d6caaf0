"""Mail for a node's users: what ``sagachain mailbox`` and ``sagachain registry`` do, apart from printing.

A mailbox (MBX-1) is a public account; its envelopes are public objects it
owns, each holding ciphertext sealed to the devices the mailbox listed when it
arrived. So a device reads its mail the way anyone reads public state (the
node's GetObjects request), and only its own key turns an envelope into text.
The node never sees a key or a plaintext: sealing and opening happen here,
in the user's process, with ``sagachain.core.envelope``, and the scripts and
gas limits come from ``sagachain.core.mail_calls``: the same code the
simulator's mail driver (``sagachain.sim.mail``) uses, below both drivers:

- a DM is sealed to the recipient's devices as the recipient's mailbox lists
  them on the answering node, and sent in a transaction the sender signs
  (``mailbox.send``); ``--mirror`` writes a second envelope, sealed to the
  sender's own devices, into the sender's mailbox (MBX-3: there is no shared
  conversation log);
- a device acknowledges in a transaction its own account signs
  (``mailbox.ack``; the MBX-2 check wants the device's account as signer),
  paid by the mailbox's manager unless told otherwise: device accounts hold
  no coin of their own. Under burn-on-read the native method purges the
  envelope in the acknowledgement of its last target device, so there is no
  separate purge transaction to send;
- reading is forward-only: a device lists only envelopes it is a target of,
  that is, those that arrived after it was registered.

The pure parts (choosing the key, sealing, reading envelopes,
shaping registry records) take values; the ``async`` ones ask a
:class:`node.client.Client`. Nothing here prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.client import Client
from node.mail_events import mail_events
from sagachain.core.block import OpenEntry
from sagachain.core.envelope import open_direct, parse, seal_direct
from sagachain.core.keys import KeyPair
from sagachain.core.mailbox import (
    ENCLAVE_ENTRY_CLASS_ID,
    IDENTITY_RECORD_CLASS_ID,
    REGISTRY_ID,
    Device,
    EnvelopeRecord,
    IdentityRecord,
    MailboxHead,
    RegistryEnclave,
    enclave_record_id,
    envelope_id,
    envelope_of,
    head_of_mailbox,
    identity_record_id,
    mailbox_id,
    read,
)
from sagachain.core.objects import StoredObject
from sagachain.core.roster import RosterEntry, RosterHead, entry_of, head_of
from sagachain.core.tx import Transaction, make_transaction
from sagachain.errors import InputError
from sagachain.tx_build import Devnet, _read_seed, hex_id

MAX_TEXT = 65_536  # bytes of one DM: its sealed copies travel as script literals (up to 4 bytes a byte) in one frame
DEVICE_SUFFIX = ".dev"  # devnet device accounts are IDENTITY.devN (sagachain.world.declarations.Declarations.identity)


# -- who acts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """An account and the Ed25519 key that signs for it; ``name`` is how to show it."""

    account: bytes
    key: KeyPair
    name: str


def actor_from(devnet: Devnet | None, as_name: str | None, key_file: Path | None, account: str | None) -> Actor:
    """The account a command acts as: ``--devnet DIR --as NAME``, or ``--key-file PATH --account ID``."""
    if (as_name is None) == (key_file is None):
        raise InputError("give exactly one of --as NAME (with --devnet DIR) or --key-file PATH (with --account ID): the key that signs")
    if as_name is not None:
        if devnet is None:
            raise InputError(f"--as {as_name}: names need --devnet DIR (or give --key-file PATH and --account ID)")
        chosen = devnet.account(as_name, "--as")
        if account is not None and devnet.resolve(account, "--account") != chosen.id:
            raise InputError(f"--account {account} is not the account of --as {as_name}; give one of them")
        if chosen.enclave is not None:
            raise InputError(f"--as {as_name} is an account of enclave {chosen.enclave}; mailboxes are used by public accounts (MBX-1)", rule="MBX-1")
        return Actor(chosen.id, KeyPair(chosen.seed), as_name)
    if account is None:
        raise InputError(f"--key-file {key_file}: give --account ID too, the account (hex) this key signs for")
    account_id = devnet.resolve(account, "--account") if devnet is not None else hex_id(account, "--account")
    return Actor(account_id, KeyPair(_read_seed(None, key_file)), name_of(devnet, account_id))


def name_of(devnet: Devnet | None, account: bytes) -> str:
    """A devnet account's name, else the first hex digits of its id."""
    if devnet is not None:
        for name, known in devnet.accounts.items():
            if known.id == account:
                return name
    return account.hex()[:16]


def owner_of_device(name: str) -> str | None:
    """``id1`` for a devnet device named ``id1.dev0``: whose mailbox a device reads by default."""
    owner, sep, number = name.rpartition(DEVICE_SUFFIX)
    return owner if sep and owner and number.isdigit() else None


# -- mailboxes ------------------------------------------------------------------------


async def find_mailbox(client: Client, account: bytes, what: str) -> tuple[bytes, MailboxHead]:
    """The mailbox ``account`` names: the account itself when it is a mailbox, else the mailbox of
    the identity (or enclave) it is. Refused, naming ``what``, when there is none."""
    head = head_of_mailbox((await client.account(account)).value)
    if head is not None:
        return account, head
    mailbox = mailbox_id(account)
    head = head_of_mailbox((await client.account(mailbox)).value)
    if head is None:
        raise InputError(
            f"{what}: account {account.hex()} is no mailbox and has none (no account {mailbox.hex()[:16]}... of class "
            "ClassMailbox on the node); give an identity that has a mailbox, or the mailbox's id",
            rule="MBX-1",
        )
    return mailbox, head


def envelopes_of(mailbox: bytes, objects: dict[bytes, StoredObject]) -> dict[int, EnvelopeRecord]:
    """Sequence number -> envelope, of the objects a mailbox owns (held ones and tombstones)."""
    found = {}
    for oid, obj in objects.items():
        record = envelope_of(obj)
        if record is not None and oid == envelope_id(mailbox, record.seq):
            found[record.seq] = record
    return found


async def read_envelopes(client: Client, mailbox: bytes) -> tuple[MailboxHead, dict[int, EnvelopeRecord]]:
    """A mailbox's head and envelopes, as the node holds them now (one GetObjects walk)."""
    objects = await client.objects(mailbox)
    head = head_of_mailbox(objects.get(mailbox))
    if head is None:
        raise InputError(f"account {mailbox.hex()} holds no readable mailbox head on the node", rule="MBX-1")
    return head, envelopes_of(mailbox, objects)


def device_of(head: MailboxHead, mailbox: bytes, actor: Actor) -> Device:
    """The registered device whose key ``actor`` holds; refused when there is none (MBX-2)."""
    device = next((d for d in head.devices if d.key == actor.key.public), None)
    if device is None:
        raise InputError(
            f"--as {actor.name}: its key {actor.key.public.hex()[:16]}... is not a registered device of mailbox {mailbox.hex()[:16]}... "
            f"({len(head.devices)} devices registered); its manager registers devices (add_device), and a device reads "
            "only what arrives after that (forward-only)",
            rule="MBX-2",
        )
    return device


# -- sending --------------------------------------------------------------------------


def payload_of(text: str) -> bytes:
    """A DM's payload: the text in UTF-8, as the simulator's mail sends it."""
    payload = text.encode()
    if not payload:
        raise InputError('--text is empty; give the message to send, e.g. --text "see you at 6"')
    if len(payload) > MAX_TEXT:
        raise InputError(f"--text is {len(payload)} bytes; a DM holds at most {MAX_TEXT} (its sealed copies must fit one transaction)")
    return payload


def seal_dm(sender: Actor, mailbox: bytes, head: MailboxHead, payload: bytes) -> bytes:
    """``payload`` sealed to the devices ``head`` lists, signed by the sender's key (MBX-1)."""
    return seal_direct(sender=sender.key, mailbox=mailbox, devices=[(d.id, d.key) for d in head.devices], payload=payload, entropy=os.urandom)


def ack_problem(mailbox: bytes, head: MailboxHead, envelopes: dict[int, EnvelopeRecord], device: Device, seqs: list[int]) -> None:
    """Refuse, before anything is signed, acknowledgements the mailbox's method would refuse (MBX-2, MBX-4)."""
    if not seqs:
        raise InputError("give at least one SEQ, the number of an envelope to acknowledge (as `sagachain mailbox sync` lists them)")
    for seq in seqs:
        if seqs.count(seq) > 1:
            raise InputError(f"SEQ {seq} is given twice; a device acknowledges an envelope once", rule="MBX-2")
        record = envelopes.get(seq)
        if record is None:
            raise InputError(f"SEQ {seq}: mailbox {mailbox.hex()[:16]}... has no envelope number {seq} (it has given out 1..{head.next_seq - 1})", rule="MBX-4")
        if record.purged:
            raise InputError(f"SEQ {seq}: envelope {seq} was already purged ({record.purged}); there is nothing left to acknowledge", rule="MBX-2")
        if device.id not in record.targets:
            raise InputError(f"SEQ {seq}: this device is not a target of envelope {seq}: it arrived before the device was registered (forward-only)", rule="MBX-2")
        if device.id in record.acked:
            raise InputError(f"SEQ {seq}: this device already acknowledged envelope {seq}", rule="MBX-2")


def sign(actor: Actor, devnet: Devnet | None, chain_nonce: int, nonce: int | None, *, payer: bytes, accounts: dict[str, bytes], script: str, gas_limit: int) -> Transaction:
    """The signed transaction; without ``nonce``, one past the larger of the node's last final nonce
    for the actor and the devnet's record (``nonces.json``, as ``sagachain tx send`` keeps it)."""
    if nonce is None:
        nonce = max(chain_nonce, devnet.last_nonce(actor.account) if devnet is not None else 0) + 1
    return make_transaction(key=actor.key, sender=actor.account, nonce=nonce, gas_limit=gas_limit, gas_payer=payer, accounts=accounts, script=script)


async def envelope_changes(client: Client, tx_id: bytes, shard: str, height: int) -> tuple[list[dict[str, Any]], str | None]:
    """What transaction ``tx_id`` did in the final block ``shard``/``height``: its ``mail`` events
    (node/mail_events.py), read from the block itself, and the error its script failed with, if it did."""
    reply = await client.block(shard, height)
    if reply.block is None:
        return [], None
    entry = next((e for e in reply.block.tx_entries() if e.tx.id == tx_id), None)
    error = entry.error if isinstance(entry, OpenEntry) and not entry.ok else None
    return [event for event in mail_events(reply.block) if event["tx"] == tx_id], error


# -- reading --------------------------------------------------------------------------


@dataclass(frozen=True)
class Letter:
    """One envelope as a device reads it. ``text`` is None when it did not open; ``note`` says why."""

    seq: int
    time: int  # block time it arrived, ms
    sender: bytes  # the account that sent it
    signer: bytes | None  # the Ed25519 key that signed its body, once opened
    size: int
    targets: int
    acked: tuple[bytes, ...]
    purged: str
    text: str | None
    note: str


def unread(envelopes: dict[int, EnvelopeRecord], device: Device) -> int:
    """The first sequence number this device has not acknowledged among those it is a target of
    and still held: where ``sync`` starts by default. One past the last envelope when there is none."""
    waiting = [seq for seq, r in envelopes.items() if device.id in r.targets and device.id not in r.acked and not r.purged]
    return min(waiting) if waiting else max(envelopes, default=0) + 1


def read_mail(mailbox: bytes, envelopes: dict[int, EnvelopeRecord], device: Device, seed: bytes, since: int, unacked_only: bool) -> list[Letter]:
    """The envelopes from ``since`` on that ``device`` is a target of, opened with its ``seed``, in order.

    Forward-only: an envelope that arrived before the device was registered does not
    name it as a target and holds no box for it, so it is not listed at all. With
    ``unacked_only`` only the held envelopes it has not acknowledged are listed.
    """
    letters = []
    for seq in sorted(s for s in envelopes if s >= since):
        record = envelopes[seq]
        if device.id not in record.targets:
            continue
        if unacked_only and (record.purged or device.id in record.acked):
            continue
        text, signer, note = None, None, ""
        if record.purged:
            note = f"purged ({record.purged})"
        else:
            opened = open_direct(record.sealed, mailbox=mailbox, device=device.id, device_seed=seed)
            if opened is not None:
                text, signer = opened.payload.decode(errors="replace"), opened.sender_key
            else:
                envelope = parse(record.sealed)
                note = "a group envelope: this device holds no key for its conversation" if envelope is not None and envelope.group else "does not open with this device's key"
        letters.append(Letter(seq, record.time, record.sender, signer, record.size, len(record.targets), record.acked, record.purged, text, note))
    return letters


def signer_known(devnet: Devnet | None, letter: Letter) -> bool | None:
    """Whether the key that signed ``letter`` is its sender account's key, as far as the devnet
    record tells (the node does not serve account keys); None when it cannot tell."""
    if devnet is None or letter.signer is None:
        return None
    for known in devnet.accounts.values():
        if known.id == letter.sender:
            return KeyPair(known.seed).public == letter.signer
    return None


# -- the registry (REG-1) -------------------------------------------------------------


def identity_view(account: bytes, record: IdentityRecord | None, mailbox: bytes, head: MailboxHead | None,
                  envelopes: dict[int, EnvelopeRecord], kinds: dict[str, str]) -> dict[str, Any]:
    """An identity as the registry and its mailbox show it: its enclaves (with their registered
    kind, a hint only) and its mailbox (retention, devices, envelopes held and purged)."""
    enclaves = []
    if record is not None:
        for role, enclave in (("personal", record.personal), ("dm", record.dm), *(("shared", e) for e in record.shared)):
            if enclave:
                enclaves.append({"role": role, "enclave": enclave, "kind": kinds.get(enclave)})
    view: dict[str, Any] = {"identity": account, "registered": record is not None, "enclaves": enclaves, "mailbox": None}
    if head is not None:
        view["mailbox"] = {
            "id": mailbox, "retention": head.retention, "ttl_ms": head.ttl, "manager": head.manager, "next_seq": head.next_seq,
            "devices": [{"id": d.id, "key": d.key, "account": d.account} for d in head.devices],
            "held": sum(1 for r in envelopes.values() if not r.purged), "purged": sum(1 for r in envelopes.values() if r.purged),
        }
    return view


def enclave_view(record: RegistryEnclave, roster: RosterHead | None, entries: list[RosterEntry]) -> dict[str, Any]:
    """An enclave as the registry and its roster show it: kind (a hint, REG-1), roster and mailbox
    accounts, shards, and each node on the roster with its state, traits and seats (MEM-1)."""
    return {
        "enclave": record.enclave, "kind": record.kind, "roster": record.roster, "mailbox": record.mailbox, "registrant": record.registrant,
        "shards": list(roster.shards) if roster is not None else [], "epoch": roster.epoch if roster is not None else None,
        "auto_join": roster.policy.auto_join if roster is not None else None,
        "nodes": [{"node": e.node, "key": e.key, "account": e.account, "state": e.state, "traits": list(e.traits), "seats": list(e.shards)}
                  for e in sorted(entries, key=lambda e: e.node)],
    }


def registry_records(objects: dict[bytes, StoredObject]) -> tuple[dict[bytes, IdentityRecord], dict[str, RegistryEnclave]]:
    """The registry account's objects as (identity account -> record, enclave id -> record)."""
    identities, enclaves = {}, {}
    for oid, obj in objects.items():
        identity = read(IdentityRecord, IDENTITY_RECORD_CLASS_ID, obj)
        if identity is not None and oid == identity_record_id(identity.account):
            identities[identity.account] = identity
        enclave = read(RegistryEnclave, ENCLAVE_ENTRY_CLASS_ID, obj)
        if enclave is not None and oid == enclave_record_id(enclave.enclave):
            enclaves[enclave.enclave] = enclave
    return identities, enclaves


async def lookup(client: Client, devnet: Devnet | None, key: str) -> dict[str, Any]:
    """Walk the registry from ``key``: a devnet account name or a 64-hex account id (an identity),
    else an enclave id. The answer is ``{"identity": ...}`` or ``{"enclave": ...}`` (REG-1)."""
    identities, enclaves = registry_records(await client.objects(REGISTRY_ID))
    kinds = {e: r.kind for e, r in enclaves.items()}
    account: bytes | None = None
    if devnet is not None and key in devnet.accounts:
        account = devnet.accounts[key].id
    elif len(key) == 64:
        account = hex_id(key, "KEY")
    if account is not None:
        mailbox = mailbox_id(account)
        objects = await client.objects(mailbox)
        head = head_of_mailbox(objects.get(mailbox))
        if account not in identities and head is None:
            raise InputError(f"KEY {key}: account {account.hex()} has no identity record in the registry and no mailbox; "
                             f"registered identities: {_listing(devnet, identities)}", rule="REG-1")
        return {"identity": identity_view(account, identities.get(account), mailbox, head, envelopes_of(mailbox, objects), kinds)}
    record = enclaves.get(key)
    if record is None:
        raise InputError(f"KEY {key!r} is neither an account (a devnet name or 64 hex digits) nor an enclave the registry knows; "
                         f"registered enclaves: {', '.join(sorted(enclaves)) or 'none'}", rule="REG-1")
    roster_objects = await client.objects(record.roster)
    roster = head_of(roster_objects.get(record.roster))
    entries = [e for e in (entry_of(obj) for obj in roster_objects.values()) if e is not None]
    return {"enclave": enclave_view(record, roster, entries)}


def _listing(devnet: Devnet | None, identities: dict[bytes, IdentityRecord]) -> str:
    names = sorted(name_of(devnet, account) for account in identities)
    return ", ".join(names) if names else "none"
