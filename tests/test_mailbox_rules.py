"""Mailboxes on chain (MBX-1, MBX-2, MBX-4) and the registry (REG-1): envelopes sealed to
the registered devices, acknowledged by them, purged as the retention policy allows, and
a purge the policy does not allow named by the auditor's rule."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from sagachain.core.block import ObjectUpdate, OpenEntry
from sagachain.core.envelope import open_direct, seal_direct
from sagachain.core.mailbox import (
    ENVELOPE_CLASS_ID,
    IdentityRecord,
    envelope_id,
    envelope_of,
    head_of_mailbox,
    identity_record_id,
    mailbox_id,
    read,
    to_object,
)
from sagachain.core.mailbox import IDENTITY_RECORD_CLASS_ID, REGISTRY_ID
from sagachain.core.roster import BURN_ON_READ, PERMANENT, TTL
from sagachain.core.system import call_script
from sagachain.sim.scenario import Scenario
from sagachain.world.build import build_world
from txbench import ok, refused, Bench, draft, entry_violations

TTL_MS = 5_000


def _bench(retention: str) -> Bench:
    s = Scenario(11, name="mailboxes")
    s.public_shards(1, nodes=4)
    s.identity("alice", devices=2, balance=100_000_000)
    s.identity("bob", devices=2, balance=100_000_000, retention=retention, ttl_ms=TTL_MS)
    s.account("carol")  # a device bob registers later
    return Bench.of(build_world(s))


def _id(b: Bench, name: str) -> bytes:
    return b.world.account(name)


def _box(b: Bench) -> bytes:
    return mailbox_id(_id(b, "bob"))


def _head(b: Bench):  # type: ignore[no-untyped-def]
    return head_of_mailbox(b.chain.objects[_box(b)])


def _envelope(b: Bench, seq: int):  # type: ignore[no-untyped-def]
    return envelope_of(b.chain.objects.get(envelope_id(_box(b), seq)))


def _sealed_for_bob(b: Bench, text: bytes, devices: list[tuple[bytes, bytes]] | None = None) -> bytes:
    head = _head(b)
    devices = devices if devices is not None else [(d.id, d.key) for d in head.devices]
    return seal_direct(sender=b.world.account_keys[_id(b, "alice")], mailbox=_box(b), devices=devices, payload=text, entropy=random.Random(5).randbytes)


def _call(b: Bench, sender: str, method: str, args: list, payer: str = "bob") -> tuple[OpenEntry, list[str]]:  # type: ignore[type-arg]
    return b.send(_id(b, sender), {"box": _box(b)}, call_script("box", method, args), _id(b, payer))


def test_a_dm_is_delivered_acknowledged_by_every_device_and_burned() -> None:
    b = _bench(BURN_ON_READ)
    entry = ok(_call(b, "alice", "send", [_sealed_for_bob(b, b"hello bob")], payer="alice"))
    assert ["envelope", _box(b), 1, _id(b, "alice"), len(_envelope(b, 1).sealed)] in [list(x) for x in entry.log]
    env = _envelope(b, 1)
    assert env.seq == 1 and env.sender == _id(b, "alice") and env.targets == tuple(sorted(_id(b, f"bob.dev{i}") for i in range(2)))
    for i in range(2):
        device = _id(b, f"bob.dev{i}")
        opened = open_direct(env.sealed, mailbox=_box(b), device=device, device_seed=b.world.account_keys[device].seed)
        assert opened is not None and opened.payload == b"hello bob" and opened.sender_key == b.world.account_keys[_id(b, "alice")].public
    assert open_direct(env.sealed, mailbox=_box(b), device=_id(b, "alice.dev0"), device_seed=b.world.account_keys[_id(b, "alice.dev0")].seed) is None
    ok(_call(b, "bob.dev0", "ack", [1, _id(b, "bob.dev0")]))
    assert _envelope(b, 1).acked == (_id(b, "bob.dev0"),) and not _envelope(b, 1).purged
    ok(_call(b, "bob.dev1", "ack", [1, _id(b, "bob.dev1")]))
    tomb = _envelope(b, 1)
    assert tomb.purged == BURN_ON_READ and tomb.sealed == b"" and tomb.size > 0 and len(tomb.acked) == 2


def test_only_a_target_device_acknowledges_and_only_once() -> None:
    b = _bench(BURN_ON_READ)
    ok(_call(b, "alice", "send", [_sealed_for_bob(b, b"x")], payer="alice"))
    refused(_call(b, "alice", "ack", [1, _id(b, "bob.dev0")]), "MBX-2", "not signed by its account")
    refused(_call(b, "alice.dev0", "ack", [1, _id(b, "alice.dev0")]), "MBX-2", "not a target")
    ok(_call(b, "bob.dev0", "ack", [1, _id(b, "bob.dev0")]))
    refused(_call(b, "bob.dev0", "ack", [1, _id(b, "bob.dev0")]), "MBX-2", "already acknowledged")


def test_an_envelope_must_be_sealed_to_every_registered_device() -> None:
    b = _bench(BURN_ON_READ)
    head = _head(b)
    partial = _sealed_for_bob(b, b"x", [(head.devices[0].id, head.devices[0].key)])
    refused(_call(b, "alice", "send", [partial], payer="alice"), "MBX-1", "sealed to 1 devices")
    refused(_call(b, "alice", "send", [b"not an envelope"], payer="alice"), "MBX-1", "not a sealed envelope")


def test_sequence_numbers_count_up_per_mailbox() -> None:
    b = _bench(PERMANENT)
    for expected in (1, 2, 3):
        entry = ok(_call(b, "alice", "send", [_sealed_for_bob(b, b"m%d" % expected)], payer="alice"))
        assert _envelope(b, expected).seq == expected and _head(b).next_seq == expected + 1
        assert entry.ok


@pytest.mark.parametrize("retention", [TTL, PERMANENT, BURN_ON_READ])
def test_a_purge_waits_for_what_the_policy_requires(retention: str) -> None:
    b = _bench(retention)
    ok(_call(b, "alice", "send", [_sealed_for_bob(b, b"x")], payer="alice"))
    refusal = {TTL: "may go at time", PERMANENT: "permanently", BURN_ON_READ: "have not acknowledged"}[retention]
    refused(_call(b, "alice", "purge", [1], payer="alice"), "MBX-2", refusal)
    if retention == TTL:
        b.time += TTL_MS
        ok(_call(b, "alice", "purge", [1], payer="alice"))
        assert _envelope(b, 1).purged == TTL and _envelope(b, 1).sealed == b""


def test_the_auditor_names_a_purge_before_the_policy_allows() -> None:
    b = _bench(BURN_ON_READ)
    ok(_call(b, "alice", "send", [_sealed_for_bob(b, b"x")], payer="alice"))
    ok(_call(b, "bob.dev0", "ack", [1, _id(b, "bob.dev0")]))
    # A committee publishes a tombstone although bob.dev1 never acknowledged.
    entry, _ = _call(b, "bob.dev0", "purge", [1])
    held = _envelope(b, 1)
    early = replace(held, sealed=b"", purged=BURN_ON_READ, purged_at=b.time)
    forged = replace(entry, ok=True, error=None, updates=(ObjectUpdate(id=envelope_id(_box(b), 1), value=to_object(ENVELOPE_CLASS_ID, _box(b), early)),))
    found = entry_violations(b.chain, draft(b.chain, b.chain.owner[_box(b)], forged, b.time), "MBX-2")
    assert found and "purged before its policy allows" in found[0].reason and "1 registered target devices" in found[0].reason
    deleted = replace(forged, updates=(ObjectUpdate(id=envelope_id(_box(b), 1), value=None),))
    found = entry_violations(b.chain, draft(b.chain, b.chain.owner[_box(b)], deleted, b.time), "MBX-2")
    assert found and "tombstone" in found[0].reason


def test_a_device_registered_later_reads_forward_only() -> None:
    b = _bench(PERMANENT)
    ok(_call(b, "alice", "send", [_sealed_for_bob(b, b"before")], payer="alice"))
    carol = _id(b, "carol")
    carol_key = b.world.account_keys[carol]
    refused(_call(b, "alice", "add_device", [carol, carol_key.public, carol]), "MBX-2", "manager")
    ok(_call(b, "bob", "add_device", [carol, carol_key.public, carol]))
    ok(_call(b, "alice", "send", [_sealed_for_bob(b, b"after")], payer="alice"))
    old, new = _envelope(b, 1), _envelope(b, 2)
    assert carol not in old.targets and carol in new.targets
    assert open_direct(old.sealed, mailbox=_box(b), device=carol, device_seed=carol_key.seed) is None
    assert open_direct(new.sealed, mailbox=_box(b), device=carol, device_seed=carol_key.seed).payload == b"after"  # type: ignore[union-attr]


def test_an_identity_registers_its_own_record_in_the_registry() -> None:
    b = _bench(PERMANENT)
    alice = _id(b, "alice")
    script = call_script("registry", "register_identity", ["", "", ["acme"], mailbox_id(alice)])
    entry, broken = b.send(alice, {"registry": REGISTRY_ID}, script, alice)
    assert entry.ok and broken == []
    record = read(IdentityRecord, IDENTITY_RECORD_CLASS_ID, b.chain.objects[identity_record_id(alice)])
    assert record.account == alice and record.shared == ("acme",) and record.mailbox == mailbox_id(alice)


def test_a_dropped_device_does_not_keep_a_burn_on_read_envelope_for_ever() -> None:
    b = _bench(BURN_ON_READ)
    ok(_call(b, "alice", "send", [_sealed_for_bob(b, b"x")], payer="alice"))
    ok(_call(b, "bob.dev0", "ack", [1, _id(b, "bob.dev0")]))
    ok(_call(b, "bob", "remove_device", [_id(b, "bob.dev1")]))
    ok(_call(b, "alice", "purge", [1], payer="alice"))
    assert _envelope(b, 1).purged == BURN_ON_READ
