"""A node's own view of membership: the epoch keys it derives (MEM-3) and the keys it pins (MEM-5).

Both are judged against a real chain whose roster changes through ordinary
transactions (``test_membership.Roster``), so what the node concludes is what
the chain recorded.
"""

from __future__ import annotations

from node.enclave_keys import EnclaveKeys
from node.pins import PinBook
from sagachain.core.keys import KeyPair
from sagachain.core.objects import node_id_for
from sagachain.core.roster import key_proof_message
from test_membership import Roster, _new_node
from txbench import ok


def _founder(r: Roster) -> tuple[bytes, KeyPair]:
    node = r.owner
    key = next(k for k in r.world.node_keys.values() if isinstance(k, KeyPair) and node_id_for(k.public) == node)
    return node, key


def _rotate(r: Roster, node: bytes, fresh: KeyPair) -> None:
    proof = fresh.sign(key_proof_message("acme", node, fresh.public, r.operator))
    ok(r.roster("rotate", [node, fresh.public, proof, r.rekey("rotate", node, fresh.public)]))


def test_a_node_holds_the_epochs_from_its_join_to_its_removal() -> None:
    r = Roster.make()
    founder, founder_key = _founder(r)
    joiner = _new_node("joiner")
    joiner_id = node_id_for(joiner.public)
    founder_keys = EnclaveKeys("acme", founder, [founder_key.seed])
    joiner_keys = EnclaveKeys("acme", joiner_id, [joiner.seed])
    assert founder_keys.follow(r.chain) == [1] and joiner_keys.follow(r.chain) == []

    ok(r.roster("apply", [joiner.public, r.proof(joiner, r.operator), []]))
    ok(r.roster("approve", [r.owner, joiner_id, r.rekey("add", joiner_id, joiner.public)]))
    assert joiner_keys.follow(r.chain) == [2] and founder_keys.follow(r.chain) == [2]
    assert joiner_keys.latest() == founder_keys.latest()

    ok(r.roster("remove", [r.owner, joiner_id, r.rekey("remove", joiner_id)]))
    assert joiner_keys.follow(r.chain) == [] and joiner_keys.latest() is None and joiner_keys.epoch == 3
    assert founder_keys.follow(r.chain) == [3]
    assert sorted(joiner_keys.keys) == [2]  # nothing before its join, nothing after its removal


def test_a_rotated_node_opens_old_epochs_with_its_old_seed_and_new_ones_with_the_new() -> None:
    r = Roster.make(strategy="key-tree")
    node, old = _founder(r)
    fresh = _new_node("fresh-key")
    _rotate(r, node, fresh)
    keys = EnclaveKeys("acme", node, [old.seed, fresh.seed])
    assert keys.follow(r.chain) == [1, 2]
    without_new_seed = EnclaveKeys("acme", node, [old.seed])
    assert without_new_seed.follow(r.chain) == [1]  # the rotation's box is for the new key only


def test_pins_accept_the_first_key_and_a_rotation_the_roster_records_only() -> None:
    r = Roster.make()
    node, old = _founder(r)
    book = PinBook()
    assert book.node_of(old.public, r.chain) == node
    assert book.judge(node, old.public, r.chain) is None and book.pins[node] == old.public  # first contact
    impostor = _new_node("impostor")
    problem = book.judge(node, impostor.public, r.chain)
    assert problem is not None and "MEM-5" in problem and book.pins[node] == old.public

    fresh = _new_node("rotated")
    _rotate(r, node, fresh)
    assert book.node_of(fresh.public, r.chain) == node
    assert book.judge(node, fresh.public, r.chain) is None and book.pins[node] == fresh.public
    stale = book.judge(node, old.public, r.chain)
    assert stale is not None and "rotated away" in stale  # the old key may be a stolen one
    assert book.changed == {node: fresh.public}
