"""Sealed envelopes (MBX-1, MBX-3): what a mailbox holds, readable only by the recipient's devices.

A direct envelope carries a fresh content key sealed to each target device
(``sealing.seal``: a one-shot sender key per box, X25519 derived from the
device's Ed25519 key) and the body encrypted under that content key. Inside
the body the sender's identity key signs the payload together with the
mailbox and the devices it was meant for, so a device knows who wrote it and
a relay cannot re-address it. The chain sees the sender account, the mailbox
and ciphertext sizes; nothing else.

A group DM shares one conversation key among every participant's devices: it
travels once per participant as the payload of a direct envelope
(``group_key_payload``), and each message is then a group envelope, with no
per-device boxes, its body under the conversation key. Every message is still
written into each recipient's own mailbox (MBX-3): there is no shared log.
A device registered later is not among the targets of older envelopes and
holds no key for them: reading is forward-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagachain.core.encoding import decode, encode, hash_value
from sagachain.core.keys import KeyPair, verify
from sagachain.core.sealing import Entropy, open_sealed, seal, secret_decrypt, secret_encrypt, x25519_public, x25519_secret
from sagachain.core.wire import WireError, from_wire
from sagachain.errors import InputError


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceBox:
    device: bytes
    box: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SealedEnvelope:
    """What goes into a mailbox. ``group`` is the conversation id of a group envelope (no boxes)."""

    boxes: tuple[DeviceBox, ...]
    group: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class Opened:
    """A device's reading of an envelope: who signed it, and what it says."""

    sender_key: bytes
    payload: bytes


def _signed(mailbox: bytes, group: bytes, devices: list[bytes], payload: bytes) -> bytes:
    return hash_value(["envelope", mailbox, group, sorted(devices), payload])


def _body(sender: KeyPair, mailbox: bytes, group: bytes, devices: list[bytes], payload: bytes) -> bytes:
    return encode([sender.public, payload, sender.sign(_signed(mailbox, group, devices, payload))])


def seal_direct(*, sender: KeyPair, mailbox: bytes, devices: list[tuple[bytes, bytes]], payload: bytes, entropy: Entropy) -> bytes:
    """An envelope for ``devices`` (device id, Ed25519 key) of ``mailbox``: the encoded SealedEnvelope."""
    if not devices:
        raise InputError(f"mailbox {mailbox.hex()[:12]} has no registered device to seal to; register one first", rule="MBX-1")
    content_key = entropy(32)
    ids = [d for d, _ in devices]
    boxes = tuple(
        DeviceBox(device=device, box=seal(x25519_public(key), content_key, mailbox + device, entropy)) for device, key in sorted(devices)
    )
    body = secret_encrypt(content_key, _body(sender, mailbox, b"", ids, payload), mailbox, entropy)
    return encode(SealedEnvelope(boxes=boxes, group=b"", body=body))


def seal_group(*, sender: KeyPair, mailbox: bytes, group: bytes, group_key: bytes, payload: bytes, entropy: Entropy) -> bytes:
    """A group message for ``mailbox``, readable by whoever holds the conversation key."""
    body = secret_encrypt(group_key, _body(sender, mailbox, group, [], payload), mailbox + group, entropy)
    return encode(SealedEnvelope(boxes=(), group=group, body=body))


def group_key_payload(group: bytes, group_key: bytes, participants: list[bytes]) -> bytes:
    """The payload of the direct envelope that hands a participant the conversation key."""
    return encode({"group": group, "key": group_key, "participants": sorted(participants)})


def read_group_key(payload: bytes) -> tuple[bytes, bytes, list[bytes]] | None:
    """(group id, key, participants) when ``payload`` hands over a conversation key; None otherwise."""
    try:
        tree = decode(payload)
        if isinstance(tree, dict) and set(tree) == {"group", "key", "participants"}:
            return bytes(tree["group"]), bytes(tree["key"]), [bytes(p) for p in tree["participants"]]
    except (ValueError, TypeError):
        pass
    return None


def parse(sealed: bytes) -> SealedEnvelope | None:
    """The structure of an envelope, readable by anyone; None when the bytes are not one."""
    try:
        return from_wire(SealedEnvelope, decode(sealed), "envelope")
    except (WireError, ValueError, TypeError):
        return None


def _open_body(plain: bytes | None, mailbox: bytes, group: bytes, devices: list[bytes]) -> Opened | None:
    if plain is None:
        return None
    try:
        sender_key, payload, signature = decode(plain)
    except (ValueError, TypeError):
        return None
    if not isinstance(payload, bytes) or not verify(sender_key, _signed(mailbox, group, devices, payload), signature):
        return None
    return Opened(sender_key, payload)


def open_direct(sealed: bytes, *, mailbox: bytes, device: bytes, device_seed: bytes) -> Opened | None:
    """What ``device`` reads in a direct envelope; None when it was not a target or it does not verify."""
    envelope = parse(sealed)
    if envelope is None or envelope.group:
        return None
    box = next((b for b in envelope.boxes if b.device == device), None)
    if box is None:
        return None
    content_key = open_sealed(x25519_secret(device_seed), box.box, mailbox + device)
    if content_key is None:
        return None
    devices = [b.device for b in envelope.boxes]
    return _open_body(secret_decrypt(content_key, envelope.body, mailbox), mailbox, b"", devices)


def open_group(sealed: bytes, *, mailbox: bytes, group_keys: dict[bytes, bytes]) -> Opened | None:
    """What a holder of the conversation keys ``group_keys`` (group id -> key) reads in a group envelope."""
    envelope = parse(sealed)
    if envelope is None or not envelope.group or envelope.group not in group_keys:
        return None
    plain = secret_decrypt(group_keys[envelope.group], envelope.body, mailbox + envelope.group)
    return _open_body(plain, mailbox, envelope.group, [])
