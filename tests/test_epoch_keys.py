"""MEM-3: epoch keys, sealed to every member or through a key tree.

Members hold exactly the keys of the epochs they belong to (forward secrecy,
forward-only reading), the public check refuses malformed or replayed rekeys,
and the key tree costs O(log N) boxes per change where seal-to-all costs N.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagachain.core.encoding import decode, derive_id, encode, hash_value, is_canonical
from sagachain.core.epoch_keys import (
    KEY_TREE,
    SEAL_TO_ALL,
    STRATEGIES,
    Change,
    Keyring,
    KeySchedule,
    MemberBox,
    NodeBox,
    Rekey,
    _contexts,
)
from sagachain.core.keys import KeyPair
from sagachain.core.sealing import open_sealed
from sagachain.core.wire import from_wire
from sagachain.errors import InputError

ENCLAVE = "team"
POOL = 8


def node_id(i: int) -> bytes:
    return derive_id("epoch-keys-test-node", i)


def seed(i: int, generation: int = 0) -> bytes:
    return hash_value(["epoch-keys-test-seed", i, generation])


def public(i: int, generation: int = 0) -> bytes:
    return KeyPair(seed(i, generation)).public


def started(strategy: str, count: int, entropy_seed: int = 1) -> tuple[KeySchedule, Rekey, bytes, random.Random]:
    rng = random.Random(entropy_seed)
    schedule, rekey, key = KeySchedule.start(ENCLAVE, strategy, [(node_id(i), public(i)) for i in range(count)], rng.randbytes)
    return schedule, rekey, key, rng


def add(i: int, generation: int = 0) -> Change:
    return Change(op="add", node=node_id(i), key=public(i, generation))


def remove(i: int) -> Change:
    return Change(op="remove", node=node_id(i))


def rotate(i: int, generation: int) -> Change:
    return Change(op="rotate", node=node_id(i), key=public(i, generation))


steps = st.lists(st.tuples(st.sampled_from(["add", "remove", "rotate"]), st.integers(0, POOL - 1)), max_size=25)


@settings(max_examples=200, deadline=None)
@given(strategy=st.sampled_from(STRATEGIES), initial=st.integers(1, 4), ops=steps, entropy_seed=st.integers(0, 2**32))
def test_mem_3_members_hold_exactly_the_keys_of_their_epochs(strategy: str, initial: int, ops: list[tuple[str, int]], entropy_seed: int) -> None:
    rng = random.Random(entropy_seed)
    generation = dict.fromkeys(range(POOL), 0)
    present = set(range(initial))
    schedule, rekey, key = KeySchedule.start(ENCLAVE, strategy, [(node_id(i), public(i)) for i in range(initial)], rng.randbytes)
    rings = {i: Keyring(ENCLAVE, node_id(i), seed(i)) for i in present}
    for ring in rings.values():
        assert ring.absorb(KeySchedule(ENCLAVE, strategy), rekey) == key
    rekeys = [rekey]
    epoch_keys = {1: key}
    member_of = {i: {1} for i in present}
    for op, pick in ops:
        if op == "add":
            absent = [i for i in range(POOL) if i not in present]
            if not absent:
                continue
            i = absent[pick % len(absent)]
            change = add(i, generation[i])
        elif op == "remove":
            if len(present) == 1:
                continue
            i = sorted(present)[pick % len(present)]
            change = remove(i)
        else:
            i = sorted(present)[pick % len(present)]
            generation[i] += 1
            change = rotate(i, generation[i])
        rekey, key = schedule.commit(change, rng.randbytes)
        assert schedule.problem(rekey) is None
        if op == "add":
            present.add(i)
            rings.setdefault(i, Keyring(ENCLAVE, node_id(i), seed(i, generation[i])))
        elif op == "remove":
            present.discard(i)
        else:
            rings[i].rotate(seed(i, generation[i]))
        for j, ring in rings.items():  # removed members keep trying too
            assert ring.absorb(schedule, rekey) == (key if j in present else None)
        schedule.apply(rekey)
        rekeys.append(rekey)
        epoch_keys[schedule.epoch] = key
        for j in present:
            member_of.setdefault(j, set()).add(schedule.epoch)
    assert len(set(epoch_keys.values())) == len(epoch_keys)
    for j, ring in rings.items():
        assert ring.keys == {epoch: epoch_keys[epoch] for epoch in member_of[j]}
    replayed = KeySchedule(ENCLAVE, strategy)
    for rekey in rekeys:
        replayed.apply(rekey)
    assert replayed.epoch == schedule.epoch and list(replayed.members.items()) == list(schedule.members.items())
    assert replayed.members == {node_id(i): public(i, generation[i]) for i in present}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mem_3_a_removed_member_opens_nothing_sealed_after_its_removal(strategy: str) -> None:
    schedule, rekey, _, rng = started(strategy, 8)
    victim = Keyring(ENCLAVE, node_id(5), seed(5))
    victim.absorb(KeySchedule(ENCLAVE, strategy), rekey)
    held = [victim._leaf_secret, *victim._tree.values()]
    assert strategy == SEAL_TO_ALL or len(held) == 4  # its leaf and its three ancestors in a tree of 8
    later = []
    for change in [remove(5), add(9), rotate(2, 1), remove(0), add(10), remove(9)]:
        rekey, key = schedule.commit(change, rng.randbytes)
        assert victim.absorb(schedule, rekey) is None
        schedule.apply(rekey)
        later.append((rekey, key))
    assert list(victim.keys) == [1]
    for rekey, key in later:
        context = _contexts(rekey.enclave, rekey.epoch, rekey.strategy, rekey.change)
        for box in rekey.boxes:
            recipient = box.node if isinstance(box, MemberBox) else box.index
            assert all(open_sealed(secret, box.sealed, context(recipient)) is None for secret in held)
        assert key not in victim.keys.values()


def test_mem_3_the_key_tree_costs_log_n_boxes_and_seal_to_all_n() -> None:
    newcomer = POOL + 100
    for n in range(2, 65):
        bound = 2 * math.ceil(math.log2(n)) + 2
        tree, _, _, rng = started(KEY_TREE, n)
        for change in [add(newcomer), remove(0), remove(n // 2), remove(n - 1)]:
            rekey, _ = tree.commit(change, rng.randbytes)
            assert len(rekey.boxes) <= bound, (n, change.op)
            assert tree.problem(rekey) is None
        flat, _, _, rng = started(SEAL_TO_ALL, n)
        assert len(flat.commit(add(newcomer), rng.randbytes)[0].boxes) == n + 1
        assert len(flat.commit(remove(n // 2), rng.randbytes)[0].boxes) == n - 1
    tree_rekey, _ = tree.commit(remove(32), rng.randbytes)
    flat_rekey, _ = flat.commit(remove(32), rng.randbytes)
    assert len(flat_rekey.boxes) == 63 and len(tree_rekey.boxes) <= 14
    assert tree_rekey.sealed_bytes() * 4 < flat_rekey.sealed_bytes()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mem_3_same_entropy_gives_the_same_bytes(strategy: str) -> None:
    def run(entropy_seed: int) -> list[bytes]:
        schedule, rekey, _, rng = started(strategy, 5, entropy_seed)
        out = [encode(rekey)]
        for change in [add(6), remove(1), rotate(3, 1), remove(6)]:
            rekey, _ = schedule.commit(change, rng.randbytes)
            schedule.apply(rekey)
            out.append(encode(rekey))
        return out

    first = run(1)
    assert first == run(1)
    assert all(a != b for a, b in zip(first, run(2)))
    for data in first:
        assert is_canonical(data)
        assert encode(from_wire(Rekey, decode(data))) == data


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mem_3_the_public_check_refuses_replays_and_foreign_rekeys(strategy: str) -> None:
    schedule, first, _, rng = started(strategy, 4)
    second, _ = schedule.commit(remove(1), rng.randbytes)
    schedule.apply(second)
    assert "replays" in (schedule.problem(second) or "")
    assert "epoch 2" in (schedule.problem(second) or "")
    with pytest.raises(InputError, match=r"MEM-3.*epoch 1.*replays"):
        schedule.apply(first)
    third, _ = schedule.commit(add(7), rng.randbytes)
    assert "enclave 'elsewhere'" in (schedule.problem(replace(third, enclave="elsewhere")) or "")
    other = KEY_TREE if strategy == SEAL_TO_ALL else SEAL_TO_ALL
    assert "strategy" in (schedule.problem(replace(third, strategy=other)) or "")
    ahead = schedule.copy()
    ahead.apply(third)
    fourth, _ = ahead.commit(remove(2), rng.randbytes)
    assert "missing" in (schedule.problem(fourth) or "")
    with pytest.raises(InputError, match="unknown key distribution strategy"):
        KeySchedule(ENCLAVE, "carrier-pigeon")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mem_3_the_public_check_refuses_changes_that_do_not_fit_the_roster(strategy: str) -> None:
    schedule, _, _, rng = started(strategy, 3)
    honest, _ = schedule.commit(add(5), rng.randbytes)
    with pytest.raises(InputError, match=r"MEM-3.*already a member"):
        schedule.commit(add(1), rng.randbytes)
    assert "already a member" in (schedule.problem(replace(honest, change=add(1))) or "")
    with pytest.raises(InputError, match="not a member"):
        schedule.commit(remove(6), rng.randbytes)
    assert "not a member" in (schedule.problem(replace(honest, change=remove(6))) or "")
    with pytest.raises(InputError, match="current key"):
        schedule.commit(rotate(2, 0), rng.randbytes)
    with pytest.raises(InputError, match="already started"):
        schedule.commit(Change(op="start"), rng.randbytes)
    with pytest.raises(InputError, match="not a valid Ed25519"):
        schedule.commit(Change(op="add", node=node_id(5), key=bytes(32)), rng.randbytes)
    schedule.apply(schedule.commit(remove(1), rng.randbytes)[0])
    schedule.apply(schedule.commit(add(7), rng.randbytes)[0])
    assert list(schedule.members) == [node_id(0), node_id(7), node_id(2)]  # the newcomer takes the leftmost blank slot
    lonely, _, _, rng = started(strategy, 1)
    with pytest.raises(InputError, match="last member"):
        lonely.commit(remove(0), rng.randbytes)


def test_mem_3_seal_to_all_must_seal_to_every_member_exactly_once() -> None:
    schedule, _, _, rng = started(SEAL_TO_ALL, 4)
    rekey, _ = schedule.commit(add(6), rng.randbytes)
    dropped = rekey.boxes[0]
    assert isinstance(dropped, MemberBox)
    assert f"no box for member {dropped.node[:8].hex()}" in (schedule.problem(replace(rekey, boxes=rekey.boxes[1:])) or "")
    assert "more than one box" in (schedule.problem(replace(rekey, boxes=rekey.boxes + rekey.boxes[:1])) or "")
    stranger = MemberBox(node=node_id(7), sealed=dropped.sealed)
    assert "should get none" in (schedule.problem(replace(rekey, boxes=rekey.boxes + (stranger,))) or "")
    assert "bytes" in (schedule.problem(replace(rekey, boxes=(replace(dropped, sealed=b"x"),) + rekey.boxes[1:])) or "")


def test_mem_3_the_key_tree_must_seal_to_each_copath_resolution_and_carry_the_path() -> None:
    schedule, _, _, rng = started(KEY_TREE, 6)
    rekey, _ = schedule.commit(remove(2), rng.randbytes)
    assert schedule.problem(rekey) is None
    dropped = rekey.boxes[0]
    assert isinstance(dropped, NodeBox)
    assert f"no box for tree node {dropped.index}" in (schedule.problem(replace(rekey, boxes=rekey.boxes[1:])) or "")
    assert "path keys" in (schedule.problem(replace(rekey, path=rekey.path[:-1])) or "")
    low_order = replace(rekey.path[0], public=bytes(32))
    assert "not a usable X25519" in (schedule.problem(replace(rekey, path=(low_order,) + rekey.path[1:])) or "")
    assert "NodeBox records only" in (schedule.problem(replace(rekey, boxes=(MemberBox(node=node_id(0), sealed=dropped.sealed),))) or "")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mem_3_a_box_moved_to_another_epoch_does_not_open(strategy: str) -> None:
    schedule, start, _, rng = started(strategy, 4)
    ring = Keyring(ENCLAVE, node_id(0), seed(0))
    ring.absorb(KeySchedule(ENCLAVE, strategy), start)
    earlier, _ = schedule.commit(rotate(3, 1), rng.randbytes)
    assert ring.absorb(schedule, earlier) is not None
    schedule.apply(earlier)
    later, key = schedule.commit(rotate(3, 2), rng.randbytes)

    def recipient(box: MemberBox | NodeBox) -> bytes | int:
        return box.node if isinstance(box, MemberBox) else box.index

    old = {recipient(box): box for box in earlier.boxes}
    moved = replace(later, boxes=tuple(old.get(recipient(box), box) for box in later.boxes))  # type: ignore[arg-type]
    assert moved.boxes != later.boxes
    assert schedule.problem(moved) is None  # the addressing is right: only the associated data tells
    assert ring.absorb(schedule, moved) is None
    assert ring.absorb(schedule, later) == key


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mem_3_a_member_refuses_a_key_that_does_not_match_key_id(strategy: str) -> None:
    schedule, start, _, rng = started(strategy, 3)
    ring = Keyring(ENCLAVE, node_id(1), seed(1))
    ring.absorb(KeySchedule(ENCLAVE, strategy), start)
    rekey, _ = schedule.commit(add(4), rng.randbytes)
    with pytest.raises(InputError, match=r"MEM-3.*key_id"):
        ring.absorb(schedule, replace(rekey, key_id=bytes(32)))
    assert list(ring.keys) == [1]
