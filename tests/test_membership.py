"""The roster on chain (MEM-1..MEM-3): every transition through the roster's native methods,
the same table judging what a block publishes, and committees that follow the roster.

Transactions run through ``shards.execution.execute`` on the roster's shard and are judged
by the registered rule checks, as a validator and the auditor do.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from sagachain.core.block import Block, BlockHeader, ObjectUpdate, OpenEntry, Vote, body_hash
from sagachain.core.encoding import encode
from sagachain.core.epoch_keys import Change, Keyring, KeySchedule
from sagachain.core.keys import KeyPair
from sagachain.core.objects import node_id_for
from sagachain.core.roster import (
    ADMIN,
    BLOCKED,
    MEMBER,
    OWNER,
    PENDING,
    EpochRecord,
    entry_id,
    entry_of,
    epoch_id,
    epoch_of,
    epoch_to_object,
    head_of,
    head_to_object,
    key_proof_message,
    read_rekey,
    roster_id,
)
from sagachain.core.rules.membership import check_mem_1_signers
from sagachain.core.system import call_script
from sagachain.core.tx import make_transaction
from sagachain.sim.scenario import Scenario
from sagachain.world.build import build_world
from txbench import ok, refused, TOOLS, Bench, draft, entry_violations
from shards.execution import execute



def _scenario(strategy: str = "seal-to-all", auto_join: bool = False) -> Scenario:
    s = Scenario(7, name="membership")
    s.public_shards(1, nodes=4)
    s.enclave("acme", shards=1, nodes=4, key_strategy=strategy, auto_join=auto_join)
    s.account("payer", balance=10_000_000)
    s.account("stranger", balance=1_000)
    return s


class Roster(Bench):
    """A chain with enclave acme and a way to send roster transactions to it."""

    entropy: random.Random

    @classmethod
    def make(cls, strategy: str = "seal-to-all", auto_join: bool = False) -> Roster:
        world = build_world(_scenario(strategy, auto_join))
        roster = cls(world, world.chain())
        roster.entropy = random.Random(3)
        return roster

    @property
    def operator(self) -> bytes:
        return self.world.operators["acme"]

    @property
    def owner(self) -> bytes:
        return next(e.node for e in self.chain.roster_entries("acme") if e.has(OWNER))

    def entry(self, node: bytes):  # type: ignore[no-untyped-def]
        return entry_of(self.chain.objects.get(entry_id("acme", node)))

    def head(self):  # type: ignore[no-untyped-def]
        return head_of(self.chain.objects[roster_id("acme")])

    def rekey(self, op: str, node: bytes, key: bytes = b"") -> bytes:
        rekey, _ = self.chain.schedules["acme"].commit(Change(op=op, node=node, key=key), self.entropy.randbytes)
        return encode(rekey)

    def proof(self, key: KeyPair, account: bytes) -> bytes:
        return key.sign(key_proof_message("acme", node_id_for(key.public), key.public, account))

    def roster(self, method: str, args: list, sender: bytes | None = None) -> tuple[OpenEntry, list[str]]:  # type: ignore[type-arg]
        return self.send(sender or self.operator, {"roster": roster_id("acme")}, call_script("roster", method, args), self.world.account("payer"))


def _new_node(name: str) -> KeyPair:
    return KeyPair.derive("membership-test", name)


# -- the genesis roster ---------------------------------------------------------------


def test_genesis_roster_seats_the_committee_with_one_owner_at_epoch_1() -> None:
    r = Roster.make()
    entries = r.chain.roster_entries("acme")
    committee = r.chain.shards["acme/0"].committee
    assert [e.node for e in entries] == sorted(committee) and all(e.state == MEMBER and e.shards == ("acme/0",) for e in entries)
    assert [e for e in entries if e.has(OWNER)][0].has(ADMIN)
    assert r.head().epoch == 1 and r.chain.schedules["acme"].epoch == 1
    assert r.chain.committee_at("acme/0", 1)[0] == committee
    rekey = read_rekey(epoch_of(r.chain.objects[epoch_id("acme", 1)]).rekey)
    for node in committee:
        ring = Keyring("acme", node, r.world.node_keys[node].seed)
        assert ring.absorb(KeySchedule("acme", "seal-to-all"), rekey) == r.world.epoch_keys["acme"][1]


# -- joining and leaving ---------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["seal-to-all", "key-tree"])
def test_apply_then_approve_adds_a_member_and_starts_an_epoch(strategy: str) -> None:
    r = Roster.make(strategy)
    newcomer = _new_node("n1")
    node = node_id_for(newcomer.public)
    ok(r.roster("apply", [newcomer.public, r.proof(newcomer, r.operator), ["acme/0"]]))
    assert r.entry(node).state == PENDING and r.head().epoch == 1
    entry = ok(r.roster("approve", [r.owner, node, r.rekey("add", node, newcomer.public)]))
    assert r.entry(node).state == MEMBER and r.head().epoch == 2 and r.chain.schedules["acme"].epoch == 2
    assert ["roster", "acme", "approve", node, 2] in [list(x) for x in entry.log]
    # the newcomer sits on the committee from the next block of acme/0 whose parent saw the change
    assert node not in r.chain.committee_at("acme/0", 1)[0]
    r.chain.basis["acme/0"] = {r.chain.owner[roster_id("acme")]: r.chain.heads[r.chain.owner[roster_id("acme")]]}
    assert node in r.chain.committee_at("acme/0", 1)[0]


def test_a_stranger_cannot_approve_and_a_non_admin_member_cannot_either() -> None:
    r = Roster.make()
    newcomer = _new_node("n1")
    node = node_id_for(newcomer.public)
    ok(r.roster("apply", [newcomer.public, r.proof(newcomer, r.operator), ["acme/0"]]))
    stranger = r.world.account("stranger")
    refused(r.roster("approve", [r.owner, node, r.rekey("add", node, newcomer.public)], sender=stranger), "MEM-2", "acting admin's account")
    plain = next(e.node for e in r.chain.roster_entries("acme") if not e.has(ADMIN))
    refused(r.roster("approve", [plain, node, r.rekey("add", node, newcomer.public)]), "MEM-2", "needs an admin")


def test_an_application_needs_a_proof_by_the_node_key() -> None:
    r = Roster.make()
    newcomer, impostor = _new_node("n1"), _new_node("n2")
    refused(r.roster("apply", [newcomer.public, r.proof(impostor, r.operator), ["acme/0"]]), "MEM-2", "key proof")
    refused(r.roster("apply", [newcomer.public, r.proof(newcomer, r.operator), ["P0"]]), "MEM-2", "not shards of enclave acme")


def test_invite_escrows_key_material_and_the_invitee_accepts_or_declines() -> None:
    r = Roster.make()
    a, b = _new_node("a"), _new_node("b")
    na, nb = node_id_for(a.public), node_id_for(b.public)
    ok(r.roster("invite", [r.owner, a.public, r.proof(a, r.operator), r.operator, [], r.rekey("add", na, a.public)]))
    assert r.entry(na).state == PENDING and r.entry(na).invite and r.head().epoch == 1
    ok(r.roster("accept", [na]))
    assert r.entry(na).state == MEMBER and not r.entry(na).invite and r.head().epoch == 2
    ok(r.roster("invite", [r.owner, b.public, r.proof(b, r.operator), r.operator, [], r.rekey("add", nb, b.public)]))
    ok(r.roster("decline", [nb]))
    assert r.entry(nb) is None and r.head().epoch == 2


def test_an_invite_prepared_for_an_older_epoch_cannot_be_accepted() -> None:
    r = Roster.make()
    a, c = _new_node("a"), _new_node("c")
    na, nc = node_id_for(a.public), node_id_for(c.public)
    ok(r.roster("invite", [r.owner, a.public, r.proof(a, r.operator), r.operator, [], r.rekey("add", na, a.public)]))
    ok(r.roster("apply", [c.public, r.proof(c, r.operator), []]))
    ok(r.roster("approve", [r.owner, nc, r.rekey("add", nc, c.public)]))  # epoch 2: the escrow was for epoch 2 too
    refused(r.roster("accept", [na]), "MEM-3", "epoch")
    assert r.entry(na).state == PENDING


def test_auto_join_only_under_its_policy() -> None:
    closed, opened = Roster.make(), Roster.make(auto_join=True)
    for r, works in ((closed, False), (opened, True)):
        n = _new_node("j")
        node = node_id_for(n.public)
        result = r.roster("join", [n.public, r.proof(n, r.operator), [], r.rekey("add", node, n.public)])
        if works:
            ok(result)
            assert r.entry(node).state == MEMBER
        else:
            refused(result, "MEM-2", "auto-join")


def test_remove_and_block_start_epochs_and_the_owner_stays() -> None:
    r = Roster.make("key-tree")
    members = [e.node for e in r.chain.roster_entries("acme") if not e.has(OWNER)]
    ok(r.roster("remove", [r.owner, members[0], r.rekey("remove", members[0])]))
    assert r.entry(members[0]) is None and r.head().epoch == 2
    ok(r.roster("block", [r.owner, members[1], r.rekey("remove", members[1])]))
    assert r.entry(members[1]).state == BLOCKED and r.head().epoch == 3
    refused(r.roster("remove", [r.owner, r.owner, r.rekey("remove", r.owner)]), "MEM-2", "owner")
    ok(r.roster("unblock", [r.owner, members[1]]))
    assert r.entry(members[1]) is None and r.head().epoch == 3


def test_an_admin_cannot_remove_block_or_demote_the_owner() -> None:
    r = Roster.make()
    admin = next(e.node for e in r.chain.roster_entries("acme") if not e.has(OWNER))
    ok(r.roster("grant", [r.owner, admin, ADMIN]))
    assert r.entry(admin).has(ADMIN)
    refused(r.roster("remove", [admin, r.owner, r.rekey("remove", r.owner)]), "MEM-2", "owner")
    refused(r.roster("block", [admin, r.owner, r.rekey("remove", r.owner)]), "MEM-2", "owner")
    refused(r.roster("revoke", [admin, r.owner, ADMIN]), "MEM-2", "cannot be demoted")
    refused(r.roster("grant", [admin, admin, OWNER]), "MEM-2", "owner trait")


def test_rotation_records_the_previous_key_and_starts_an_epoch() -> None:
    r = Roster.make()
    node = r.owner
    old = r.entry(node).key
    fresh = _new_node("rotated")
    proof = fresh.sign(key_proof_message("acme", node, fresh.public, r.operator))
    ok(r.roster("rotate", [node, fresh.public, proof, r.rekey("rotate", node, fresh.public)]))
    entry = r.entry(node)
    assert entry.key == fresh.public and entry.previous_keys == (old,) and r.head().epoch == 2


def test_one_roster_change_per_transaction() -> None:
    r = Roster.make()
    a, b = _new_node("a"), _new_node("b")
    script = call_script("roster", "apply", [a.public, r.proof(a, r.operator), []]) + call_script("roster", "apply", [b.public, r.proof(b, r.operator), []])
    tx = make_transaction(
        key=r.world.account_keys[r.operator], sender=r.operator, nonce=1, gas_limit=5_000_000,
        gas_payer=r.world.account("payer"), accounts={"roster": roster_id("acme")}, script=script,
    )
    outcome = execute(r.chain, r.chain.owner[roster_id("acme")], tx, time=1)
    assert not outcome.entry.ok and "one roster change per transaction" in (outcome.entry.error or "")


def test_key_material_for_the_wrong_change_is_refused() -> None:
    r = Roster.make()
    n, other = _new_node("n"), _new_node("other")
    node = node_id_for(n.public)
    ok(r.roster("apply", [n.public, r.proof(n, r.operator), []]))
    refused(r.roster("approve", [r.owner, node, r.rekey("add", node_id_for(other.public), other.public)]), "MEM-3", "is for add of")
    refused(r.roster("approve", [r.owner, node, b""]), "MEM-3", "key material")


# -- what the auditor reads back -----------------------------------------------------


def test_mem_2_names_an_admin_removing_the_owner_in_a_published_block() -> None:
    r = Roster.make()
    admin = next(e.node for e in r.chain.roster_entries("acme") if not e.has(OWNER))
    ok(r.roster("grant", [r.owner, admin, ADMIN]))
    # What the runtime refuses, a dishonest committee publishes anyway: the owner's entry deleted.
    tx = make_transaction(
        key=r.world.account_keys[r.operator], sender=r.operator, nonce=99, gas_limit=5_000_000, gas_payer=r.world.account("payer"),
        accounts={"roster": roster_id("acme")}, script=call_script("roster", "remove", [admin, r.owner, r.rekey("remove", r.owner)]),
    )
    head = r.head()
    forged_head = replace(head, epoch=head.epoch + 1, version=head.version + 1, actor=admin)
    updates = (
        ObjectUpdate(id=roster_id("acme"), value=head_to_object("acme", forged_head)),
        ObjectUpdate(id=entry_id("acme", r.owner), value=None),
        ObjectUpdate(id=epoch_id("acme", head.epoch + 1), value=epoch_to_object("acme", EpochRecord(epoch=head.epoch + 1, rekey=r.rekey("remove", r.owner)))),
    )
    updates = tuple(sorted(updates, key=lambda u: u.id))
    entry = OpenEntry(tx=tx, ok=True, error=None, gas_used=1000, fee=1000, tax=100, updates=updates, log=())
    block = draft(r.chain, r.chain.owner[roster_id("acme")], entry, r.time)
    found = entry_violations(r.chain, block, "MEM-2")
    assert found and "owner" in found[0].reason


def test_mem_1_names_an_enclave_block_signed_by_a_node_that_is_not_a_member() -> None:
    r = Roster.make()
    outsider = _new_node("outsider")
    committee = r.chain.shards["acme/0"].committee
    header = BlockHeader(
        chain=r.chain.genesis_hash, shard="acme/0", height=1, parent=r.chain.genesis_hash, time=1, producer=committee[0],
        committee=b"", body=body_hash([]), gas_floor=0, gas_basis=(), coinbase=0, fees=0, tax=0,
    )
    qc = (Vote(signer=committee[0], signature=b""), Vote(signer=node_id_for(outsider.public), signature=b""))
    found = list(check_mem_1_signers(r.chain, Block(header=header, entries=(), qc=qc), TOOLS))
    assert len(found) == 1 and found[0].rule == "MEM-1" and "has no roster entry" in found[0].reason


def test_a_call_the_rules_would_read_as_another_operation_is_refused() -> None:
    """The runtime judges a roster call as the auditor reads the change it publishes: a blocked
    node cannot 'leave' to clear its block (that is an unblock, an admin's), and unblocking a
    MEMBER would be a removal (MEM-2)."""
    r = Roster.make()
    n = _new_node("blocked")
    node = node_id_for(n.public)
    ok(r.roster("apply", [n.public, r.proof(n, r.operator), []]))
    ok(r.roster("block", [r.owner, node, b""]))
    refused(r.roster("remove", [node, node, b""]), "MEM-2", "call unblock")
    member = _new_node("member")
    member_id = node_id_for(member.public)
    ok(r.roster("apply", [member.public, r.proof(member, r.operator), []]))
    ok(r.roster("approve", [r.owner, member_id, r.rekey("add", member_id, member.public)]))
    refused(r.roster("unblock", [r.owner, member_id]), "MEM-2", "call remove")
    assert r.entry(node).state == "BLOCKED" and r.entry(member_id).state == "MEMBER"
