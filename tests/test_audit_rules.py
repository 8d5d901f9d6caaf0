"""For every rule public data can check: a chain that breaks it, and the auditor naming it.

Two sources of broken chains: the simulator's colluding committees (the
misbehaviour a scenario can ask for, ``Scenario.misbehave``), and tampering
with an honest chain's blocks or genesis, re-signed and re-linked so that only
the intended rule breaks (``tests/chainkit.py``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from chainkit import CANARY, Run, audit, chain_bytes, first, relink, rules_broken, sign, simulate, small, with_entries
from sagachain.core.block import (
    AcquireEntry,
    Block,
    BreakawayEntry,
    EnclaveEntry,
    EntryRef,
    MixedEntry,
    ObjectUpdate,
    OpenEntry,
    ReleaseEntry,
    RollbackEntry,
    Vote,
)
from sagachain.core.encoding import hash_value
from sagachain.core.genesis import Genesis, PublicObject
from sagachain.core.objects import ACCOUNT_CLASS_ID, StoredObject, code_hash
from sagachain.sim.scenario import Scenario

OVERMINT_NOTE = "an over-minting enclave block terminates the enclave"


@pytest.fixture(scope="module")
def honest() -> Run:
    return simulate(small)


def _names(run: Run) -> dict[str, bytes]:
    return run.world.account_ids


def _audit_blocks(tmp_path: Path, run: Run, blocks: list[Block], genesis: Genesis | None = None) -> set[str]:
    genesis = genesis or run.genesis
    return rules_broken(audit(tmp_path, genesis, relink(run.world, genesis, blocks)))


def _replace_block(run: Run, index: int, block: Block) -> list[Block]:
    blocks = run.blocks
    blocks[index] = block
    return blocks


def _edit_entry(run: Run, shard_prefix: str, entry_type: type, edit) -> list[Block]:  # type: ignore[no-untyped-def]
    """Apply ``edit`` to the first entry of ``entry_type`` in a block of the shard."""
    index = first(run.blocks, shard_prefix, entry_type)
    block = run.blocks[index]
    entries = list(block.entries)
    at = next(i for i, e in enumerate(entries) if isinstance(e, entry_type))
    result = edit(entries[at])
    if isinstance(result, list):
        entries[at : at + 1] = result
    else:
        entries[at] = result
    return _replace_block(run, index, with_entries(block, entries))


def _genesis(run: Run, **changes: object) -> Genesis:
    return replace(run.genesis, **changes)


# -- the honest chain -------------------------------------------------------------------


def test_honest_chain_is_well_formed_and_replays(honest: Run, tmp_path: Path) -> None:
    report = audit(tmp_path, honest.genesis, honest.blocks, honest.initial)
    assert report.ok, [f"{v.rule} {v.where()} {v.reason}" for v in report.violations[:5]]
    assert not report.ignored
    checked = {row.id for row in report.rules if row.blocks or row.txs}
    assert {"TX-1", "TX-2", "TX-3", "TX-4", "TX-5", "SH-1", "GAS-3", "MINT-3", "MINT-5", "L2L-1", "L2L-3", "TX-6"} <= checked


# -- misbehaving committees (Scenario.misbehave) -------------------------------------


def _misbehaving(kind: str, shard: str, tmp_path: Path, **kw: object) -> tuple[set[str], object]:
    def build(s: Scenario) -> None:
        small(s, beta=kind == "cross_enclave")
        if kind == "cross_enclave":
            s.transaction(1_000, "alice", "v.record(1)\nw.record(2)", {"v": "vault", "w": "beta_box"})
        if kind == "strict_deploy":
            s.deploy(1_200, "Leaky", "class Leaky(Treasury):\n    def peek(self):\n        return self.total\n", base="Treasury", deployer="alice", shard="P0")
        s.misbehave(shard, kind, **kw)  # type: ignore[arg-type]

    run = simulate(build)
    report = audit(tmp_path, run.genesis, run.blocks)
    return rules_broken(report), report


def test_overmint_is_mint_3_and_terminates_the_enclave(tmp_path: Path) -> None:
    broken, report = _misbehaving("overmint", "acme/0", tmp_path)
    assert "MINT-3" in broken
    assert report.ignored, OVERMINT_NOTE  # type: ignore[attr-defined]
    assert "terminated" in report.enclave_status["acme"]  # type: ignore[attr-defined]


def test_leaked_enclave_state_is_tx_3(tmp_path: Path) -> None:
    broken, _ = _misbehaving("leak_state", "acme/0", tmp_path)
    assert "TX-3" in broken


def test_wrong_enclave_gas_is_gas_3(tmp_path: Path) -> None:
    broken, _ = _misbehaving("wrong_gas", "acme/0", tmp_path)
    assert "GAS-3" in broken


def test_public_shard_taking_an_enclave_account_is_l2l_2(tmp_path: Path) -> None:
    broken, _ = _misbehaving("steal_account", "P0", tmp_path, target="vault")
    assert "L2L-2" in broken


def test_cross_enclave_transaction_is_cmi_4(tmp_path: Path) -> None:
    broken, _ = _misbehaving("cross_enclave", "acme/0", tmp_path)
    assert "CMI-4" in broken


def test_open_class_with_private_base_under_strict_is_cls_3(tmp_path: Path) -> None:
    broken, _ = _misbehaving("strict_deploy", "P0", tmp_path)
    assert "CLS-3" in broken


# -- tampered blocks ------------------------------------------------------------------


def test_broken_parent_link_is_tx_5(honest: Run, tmp_path: Path) -> None:
    blocks = relink(honest.world, honest.genesis, honest.blocks)
    blocks[5] = sign(honest.world, Block(header=replace(blocks[5].header, parent=b"\1" * 32), entries=blocks[5].entries, qc=()))
    assert "TX-5" in rules_broken(audit(tmp_path, honest.genesis, blocks))


def test_skipped_height_is_tx_5(honest: Run, tmp_path: Path) -> None:
    blocks = honest.blocks
    blocks[3] = Block(header=replace(blocks[3].header, height=blocks[3].height + 7), entries=blocks[3].entries, qc=())
    assert "TX-5" in _audit_blocks(tmp_path, honest, blocks)


def test_missing_quorum_is_sh_1(honest: Run, tmp_path: Path) -> None:
    blocks = relink(honest.world, honest.genesis, honest.blocks)
    blocks[-1] = Block(header=blocks[-1].header, entries=blocks[-1].entries, qc=blocks[-1].qc[:2])
    assert "SH-1" in rules_broken(audit(tmp_path, honest.genesis, blocks))


def test_forged_vote_is_sh_1(honest: Run, tmp_path: Path) -> None:
    blocks = relink(honest.world, honest.genesis, honest.blocks)
    qc = list(blocks[-1].qc)
    qc[0] = Vote(signer=qc[0].signer, signature=bytes(64))
    qc[1] = Vote(signer=qc[1].signer, signature=bytes(64))
    blocks[-1] = Block(header=blocks[-1].header, entries=blocks[-1].entries, qc=tuple(qc))
    assert "SH-1" in rules_broken(audit(tmp_path, honest.genesis, blocks))


def test_bad_transaction_signature_is_tx_1(honest: Run, tmp_path: Path) -> None:
    blocks = _edit_entry(honest, "P", OpenEntry, lambda e: replace(e, tx=replace(e.tx, signature=bytes(64))))
    assert "TX-1" in _audit_blocks(tmp_path, honest, blocks)


def test_replayed_transaction_is_tx_1(honest: Run, tmp_path: Path) -> None:
    index = first(honest.blocks, "P", OpenEntry)
    entry = next(e for e in honest.blocks[index].entries if isinstance(e, OpenEntry))
    blocks = honest.blocks
    blocks[-1] = with_entries(blocks[-1], [entry, *blocks[-1].entries])
    assert "TX-1" in _audit_blocks(tmp_path, honest, blocks)


def test_open_updates_that_differ_from_execution_are_tx_2(honest: Run, tmp_path: Path) -> None:
    def edit(e: OpenEntry) -> OpenEntry:
        first_update = e.updates[0]
        value = first_update.value
        assert value is not None
        changed = value.with_fields(note="not what the script wrote")
        return replace(e, updates=(ObjectUpdate(id=first_update.id, value=changed), *e.updates[1:]))

    assert "TX-2" in _audit_blocks(tmp_path, honest, _edit_entry(honest, "P", OpenEntry, edit))


def test_wrong_open_gas_is_gas_2(honest: Run, tmp_path: Path) -> None:
    blocks = _edit_entry(honest, "P", OpenEntry, lambda e: replace(e, gas_used=e.gas_used + 1, fee=e.fee + 1))
    assert "GAS-2" in _audit_blocks(tmp_path, honest, blocks)


def test_fee_not_paid_by_its_payer_is_gas_1(honest: Run, tmp_path: Path) -> None:
    blocks = _edit_entry(honest, "acme", EnclaveEntry, lambda e: replace(e, fee=0, tax=0))
    assert "GAS-1" in _audit_blocks(tmp_path, honest, blocks)


def test_wrong_tax_is_gas_4(honest: Run, tmp_path: Path) -> None:
    blocks = _edit_entry(honest, "P", OpenEntry, lambda e: replace(e, tax=e.tax + 3))
    assert "GAS-4" in _audit_blocks(tmp_path, honest, blocks)


def test_minted_balance_in_an_open_entry_is_mint_5(honest: Run, tmp_path: Path) -> None:
    def edit(e: OpenEntry) -> OpenEntry:
        u = e.updates[0]
        assert u.value is not None
        richer = u.value.with_fields(balance=u.value.fields["balance"] + 1_000)
        return replace(e, updates=(ObjectUpdate(id=u.id, value=richer), *e.updates[1:]))

    assert "MINT-5" in _audit_blocks(tmp_path, honest, _edit_entry(honest, "P", OpenEntry, edit))


def test_mixed_entry_creating_coin_is_mint_2(honest: Run, tmp_path: Path) -> None:
    def edit(e: MixedEntry) -> MixedEntry:
        u = next(u for u in e.updates if u.value is not None and "balance" in u.value.fields)
        assert u.value is not None
        richer = u.value.with_fields(balance=u.value.fields["balance"] + 50)
        return replace(e, updates=tuple(ObjectUpdate(id=x.id, value=richer) if x.id == u.id else x for x in e.updates))

    assert "MINT-2" in _audit_blocks(tmp_path, honest, _edit_entry(honest, "acme", MixedEntry, edit))


def test_enclave_entry_on_a_public_shard_is_cmi_2(honest: Run, tmp_path: Path) -> None:
    index = first(honest.blocks, "acme", EnclaveEntry)
    entry = next(e for e in honest.blocks[index].entries if isinstance(e, EnclaveEntry))
    blocks = honest.blocks
    public = max(i for i, b in enumerate(blocks) if b.shard == "P0")
    blocks[public] = with_entries(blocks[public], [*blocks[public].entries, entry])
    assert {"CMI-2"} & _audit_blocks(tmp_path, honest, blocks)


def test_mixed_entry_on_a_public_shard_is_tx_4(honest: Run, tmp_path: Path) -> None:
    index = first(honest.blocks, "acme", MixedEntry)
    entry = next(e for e in honest.blocks[index].entries if isinstance(e, MixedEntry))
    blocks = honest.blocks  # the copy is also a replay (TX-1); the enclave's block stays as it was
    public = max(i for i, b in enumerate(blocks) if b.shard == "P1")
    blocks[public] = with_entries(blocks[public], [*blocks[public].entries, entry])
    assert {"TX-4", "CMI-2"} & _audit_blocks(tmp_path, honest, blocks)


def test_transaction_on_a_shard_that_does_not_own_its_accounts_is_cmi_1(honest: Run, tmp_path: Path) -> None:
    index = first(honest.blocks, "P", OpenEntry)
    entry = next(e for e in honest.blocks[index].entries if isinstance(e, OpenEntry))
    blocks = honest.blocks
    blocks[index] = with_entries(blocks[index], [e for e in blocks[index].entries if e is not entry])
    other = "P1" if blocks[index].shard == "P0" else "P0"
    at = next(i for i, b in enumerate(blocks) if b.shard == other and i > index)
    blocks[at] = with_entries(blocks[at], [entry, *blocks[at].entries])
    assert "CMI-1" in _audit_blocks(tmp_path, honest, blocks)


def test_update_of_an_undeclared_account_is_obj_2(honest: Run, tmp_path: Path) -> None:
    def edit(e: OpenEntry) -> OpenEntry:
        declared = {*e.tx.account_ids(), e.tx.gas_payer}
        stranger = next(i for n, i in sorted(_names(honest).items()) if n in ("alice", "bob", "carol", "dave") and i not in declared)
        obj = StoredObject(class_id=ACCOUNT_CLASS_ID, owner=stranger, fields={"note": 1})
        return replace(e, updates=(*e.updates, ObjectUpdate(id=hash_value(["stray"]), value=obj)))

    assert "OBJ-2" in _audit_blocks(tmp_path, honest, _edit_entry(honest, "P", OpenEntry, edit))


def test_acquire_without_release_is_l2l_1(honest: Run, tmp_path: Path) -> None:
    def edit(e: AcquireEntry) -> AcquireEntry:
        return replace(e, release=EntryRef(shard=e.release.shard, height=e.release.height, index=e.release.index + 40))

    assert {"L2L-1", "L2L-3"} & _audit_blocks(tmp_path, honest, _edit_entry(honest, "P", AcquireEntry, edit))


def test_second_acquire_of_one_release_is_l2l_3(honest: Run, tmp_path: Path) -> None:
    index = first(honest.blocks, "P", AcquireEntry)
    block = honest.blocks[index]
    acquire = next(e for e in block.entries if isinstance(e, AcquireEntry))
    blocks = honest.blocks
    later = next(i for i, b in enumerate(blocks) if b.shard != block.shard and b.shard.startswith("P") and i > index)
    blocks[later] = with_entries(blocks[later], [acquire, *blocks[later].entries])
    assert "L2L-3" in _audit_blocks(tmp_path, honest, blocks)


def test_release_by_a_non_owner_is_l2l_3(honest: Run, tmp_path: Path) -> None:
    index = first(honest.blocks, "P", ReleaseEntry)
    release = next(e for e in honest.blocks[index].entries if isinstance(e, ReleaseEntry))
    blocks = honest.blocks
    other = "P1" if blocks[index].shard == "P0" else "P0"
    at = next(i for i, b in enumerate(blocks) if b.shard == other and i > index)
    blocks[at] = with_entries(blocks[at], [*blocks[at].entries, replace(release, to_shard=blocks[index].shard)])
    assert "L2L-3" in _audit_blocks(tmp_path, honest, blocks)


def test_release_to_a_terminated_enclave_is_l2l_4(tmp_path: Path) -> None:
    def build(s: Scenario) -> None:
        small(s)
        s.misbehave("acme/0", "overmint", at_height=1)

    run = simulate(build)
    ended = next(i for i, b in enumerate(run.blocks) if b.shard == "acme/0")
    later = next(i for i, b in enumerate(run.blocks) if b.shard.startswith("P") and i > ended)
    shard = run.blocks[later].shard
    account = next(a for a, s in run.result.chain.owner.items() if s == shard and run.result.chain.account_enclave(a) is None)
    blocks = run.blocks
    hash_ = run.result.chain.public_state_hash(account)
    blocks[later] = with_entries(blocks[later], [*blocks[later].entries, ReleaseEntry(account=account, to_shard="acme/1", state_hash=hash_, nonce=0)])
    assert "L2L-4" in _audit_blocks(tmp_path, run, blocks)


def test_breakaway_declared_by_another_shard_is_life_1(honest: Run, tmp_path: Path) -> None:
    blocks = honest.blocks
    at = next(i for i, b in enumerate(blocks) if b.shard.startswith("P"))
    blocks[at] = with_entries(blocks[at], [*blocks[at].entries, BreakawayEntry(enclave="acme", reason="forged")])
    assert "LIFE-1" in _audit_blocks(tmp_path, honest, blocks)


def test_rollback_to_an_unknown_state_is_tx_7(honest: Run, tmp_path: Path) -> None:
    index = max(i for i, b in enumerate(honest.blocks) if b.shard == "acme/0")
    vault = _names(honest)["vault"]
    forged = RollbackEntry(accounts=(vault,), to=EntryRef(shard="acme/0", height=1, index=77), state_hash=b"\2" * 32)
    blocks = honest.blocks
    blocks[index] = with_entries(blocks[index], [*blocks[index].entries, forged])
    assert "TX-7" in _audit_blocks(tmp_path, honest, blocks)


def test_tampered_enclave_state_hash_is_tx_6_with_the_enclave_state(honest: Run, tmp_path: Path) -> None:
    blocks = relink(honest.world, honest.genesis, _edit_entry(honest, "acme", EnclaveEntry, lambda e: replace(e, state_hash=b"\3" * 32)))
    assert "TX-6" not in rules_broken(audit(tmp_path, honest.genesis, blocks))
    assert "TX-6" in rules_broken(audit(tmp_path, honest.genesis, blocks, honest.initial))


def test_enclave_plaintext_never_reaches_the_chain(honest: Run, tmp_path: Path) -> None:
    data = chain_bytes(tmp_path, honest.genesis, honest.blocks)
    assert CANARY.encode() not in data
    assert b"self.total" not in data  # private code stays off chain (CLS-1)


# -- tampered genesis -------------------------------------------------------------------


def test_enclave_account_holding_coin_is_mint_1(honest: Run, tmp_path: Path) -> None:
    vault = _names(honest)["vault"]
    obj = StoredObject(class_id=ACCOUNT_CLASS_ID, owner=vault, fields={"balance": 10})
    genesis = _genesis(honest, objects=(*honest.genesis.objects, PublicObject(id=vault, value=obj)))
    assert "MINT-1" in _audit_blocks(tmp_path, honest, honest.blocks, genesis)


def test_account_of_a_non_account_class_is_obj_3(honest: Run, tmp_path: Path) -> None:
    accounts = list(honest.genesis.accounts)
    accounts[0] = replace(accounts[0], class_id=hash_value(["no such class"]))
    assert "OBJ-3" in _audit_blocks(tmp_path, honest, honest.blocks, _genesis(honest, accounts=tuple(accounts)))


def test_node_id_not_derived_from_its_key_is_obj_4(honest: Run, tmp_path: Path) -> None:
    nodes = list(honest.genesis.nodes)
    nodes[0] = replace(nodes[0], public_key=b"\5" * 32)
    assert "OBJ-4" in _audit_blocks(tmp_path, honest, honest.blocks, _genesis(honest, nodes=tuple(nodes)))


def test_open_class_code_not_matching_its_hash_is_cls_1(honest: Run, tmp_path: Path) -> None:
    classes = list(honest.genesis.classes)
    at = next(i for i, c in enumerate(classes) if c.name == "Wallet")
    classes[at] = replace(classes[at], code_hash=code_hash("something else"))
    assert "CLS-1" in _audit_blocks(tmp_path, honest, honest.blocks, _genesis(honest, classes=tuple(classes)))


def test_private_code_published_is_cls_1(honest: Run, tmp_path: Path) -> None:
    classes = list(honest.genesis.classes)
    at = next(i for i, c in enumerate(classes) if c.name == "Treasury")
    classes[at] = replace(classes[at], code="class Treasury(EnclaveAccount_acme):\n    pass\n")
    assert "CLS-1" in _audit_blocks(tmp_path, honest, honest.blocks, _genesis(honest, classes=tuple(classes)))


def test_class_in_an_unregistered_runtime_is_rt_1(honest: Run, tmp_path: Path) -> None:
    classes = list(honest.genesis.classes)
    at = next(i for i, c in enumerate(classes) if c.name == "Wallet")
    classes[at] = replace(classes[at], runtime=hash_value(["no runtime"]))
    assert "RT-1" in _audit_blocks(tmp_path, honest, honest.blocks, _genesis(honest, classes=tuple(classes)))


def test_public_node_declaring_a_private_runtime_is_rt_2(honest: Run, tmp_path: Path) -> None:
    acme_rt = next(r.id for r in honest.genesis.runtimes if r.enclave == "acme")
    public_member = next(s.committee[0] for s in honest.genesis.shards if s.enclave is None)
    nodes = tuple(replace(n, runtimes=(*n.runtimes, acme_rt)) if n.id == public_member else n for n in honest.genesis.nodes)
    enclave_members = {m for s in honest.genesis.shards if s.enclave for m in s.committee}
    if public_member in enclave_members:
        pytest.skip("the node serves the enclave too")
    assert "RT-2" in _audit_blocks(tmp_path, honest, honest.blocks, _genesis(honest, nodes=nodes))


def test_enclave_node_without_the_private_runtime_is_rt_3(honest: Run, tmp_path: Path) -> None:
    member = next(s.committee[0] for s in honest.genesis.shards if s.enclave == "acme")
    nodes = tuple(replace(n, runtimes=n.runtimes[:1]) if n.id == member else n for n in honest.genesis.nodes)
    assert "RT-3" in _audit_blocks(tmp_path, honest, honest.blocks, _genesis(honest, nodes=nodes))


def test_enclave_shard_its_enclave_does_not_list_is_sh_3(honest: Run, tmp_path: Path) -> None:
    enclaves = tuple(replace(e, shards=e.shards[:1]) for e in honest.genesis.enclaves)
    assert "SH-3" in _audit_blocks(tmp_path, honest, honest.blocks, _genesis(honest, enclaves=enclaves))


def test_missing_foundation_is_gas_4(honest: Run, tmp_path: Path) -> None:
    genesis = _genesis(honest, params=replace(honest.genesis.params, foundation=b"\7" * 32))
    assert "GAS-4" in _audit_blocks(tmp_path, honest, honest.blocks, genesis)



# -- ended enclaves: termination (MINT-4) and breakaway (LIFE-1) ---------------------------


def _ended_before_acquire(run: Run, ending: list[object], coinbase: int = 0) -> list[Block]:
    """The honest chain cut just after an account released by the enclave is acquired elsewhere,
    with one more block of the releasing enclave shard (carrying ``ending`` and ``coinbase``)
    put between the release and the acquire."""
    blocks = run.blocks
    for r, block in enumerate(blocks):
        if not block.shard.startswith("acme"):
            continue
        for entry in block.entries:
            if isinstance(entry, ReleaseEntry) and entry.to_shard.startswith("P"):
                ref = (block.shard, block.height)
                a = next(i for i, b in enumerate(blocks) if any(isinstance(e, AcquireEntry) and (e.release.shard, e.release.height) == ref for e in b.entries))
                last = max(i for i in range(a) if blocks[i].shard == block.shard)
                header = replace(blocks[last].header, height=blocks[last].height + 1, coinbase=coinbase, fees=0, tax=0)
                ender = Block(header=header, entries=tuple(ending), qc=())  # type: ignore[arg-type]
                return [*blocks[:a], ender, blocks[a]]
    raise LookupError("no account leaves the enclave in this run")


def test_acquiring_from_a_terminated_enclave_is_mint_4(honest: Run, tmp_path: Path) -> None:
    blocks = _ended_before_acquire(honest, [], coinbase=10 * honest.genesis.params.block_reward)
    assert {"MINT-3", "MINT-4"} <= _audit_blocks(tmp_path, honest, blocks)


def test_acquiring_from_a_broken_away_enclave_is_life_1(honest: Run, tmp_path: Path) -> None:
    blocks = _ended_before_acquire(honest, [BreakawayEntry(enclave="acme", reason="leaving")])
    assert "LIFE-1" in _audit_blocks(tmp_path, honest, blocks)


def test_honest_breakaway_ignores_the_enclaves_later_blocks(tmp_path: Path) -> None:
    def build(s: Scenario) -> None:
        small(s)
        s.breakaway(4_000, "acme")

    run = simulate(build)
    report = audit(tmp_path, run.genesis, run.blocks)
    assert "LIFE-1" not in rules_broken(report)
    assert "broken" in report.enclave_status["acme"].replace("_", " ").lower()
    assert all(i.shard.startswith("acme") for i in report.ignored)


def test_public_block_minting_more_than_the_reward_is_mint_3(honest: Run, tmp_path: Path) -> None:
    blocks = honest.blocks
    at = next(i for i, b in enumerate(blocks) if b.shard.startswith("P"))
    header = replace(blocks[at].header, coinbase=honest.genesis.params.block_reward + 1)
    blocks[at] = Block(header=header, entries=blocks[at].entries, qc=())
    report = audit(tmp_path, honest.genesis, relink(honest.world, honest.genesis, blocks))
    assert "MINT-3" in rules_broken(report)
    shard = blocks[at].shard
    assert (shard, blocks[at].height) in {(r.shard, r.height) for r in report.refused if "MINT-3" in r.rules}
    # a public shard is not terminated: it halts, and its own later blocks are ignored
    assert any(i.shard == shard and "halted" in i.reason for i in report.ignored)
    assert report.enclave_status["acme"] == "active"


def test_wrong_gas_floor_in_the_header_is_gas_3(honest: Run, tmp_path: Path) -> None:
    blocks = honest.blocks
    at = len(blocks) - 1
    blocks[at] = Block(header=replace(blocks[at].header, gas_floor=blocks[at].header.gas_floor + 1), entries=blocks[at].entries, qc=())
    assert "GAS-3" in _audit_blocks(tmp_path, honest, blocks)


# -- CLS-3 under the permissive policy ------------------------------------------------------

LEAKY = "class Leaky(Treasury):\n    ALLOW = {'peek': 'any'}\n    def peek(self):\n        return self.total\n"


def _permissive(s: Scenario) -> None:
    small(s)
    s.configure(cls3_policy="permissive")
    s.deploy(1_200, "Leaky", LEAKY, base="Treasury", deployer="acme_admin", shard="acme/0")


def test_permissive_policy_accepts_an_enclave_bound_open_class(tmp_path: Path) -> None:
    from sagachain.core.block import DeployEntry

    run = simulate(_permissive)
    deploys = [e for b in run.blocks for e in b.entries if isinstance(e, DeployEntry)]
    assert [d.cls.enclave for d in deploys] == ["acme"]
    assert audit(tmp_path, run.genesis, run.blocks).ok


def test_permissive_policy_requires_the_enclave_mark_cls_3(tmp_path: Path) -> None:
    from sagachain.core.block import DeployEntry

    run = simulate(_permissive)
    blocks = run.blocks
    at = next(i for i, b in enumerate(blocks) if any(isinstance(e, DeployEntry) for e in b.entries))
    entries = [replace(e, cls=replace(e.cls, enclave=None)) if isinstance(e, DeployEntry) else e for e in blocks[at].entries]
    blocks[at] = with_entries(blocks[at], entries)
    assert "CLS-3" in _audit_blocks(tmp_path, run, blocks)


def test_short_object_id_is_obj_1(honest: Run, tmp_path: Path) -> None:
    def edit(e: OpenEntry) -> OpenEntry:
        u = e.updates[0]
        return replace(e, updates=(ObjectUpdate(id=u.id[:20], value=u.value), *e.updates[1:]))

    assert "OBJ-1" in _audit_blocks(tmp_path, honest, _edit_entry(honest, "P", OpenEntry, edit))


def test_open_log_that_differs_from_execution_is_rt_4(honest: Run, tmp_path: Path) -> None:
    blocks = _edit_entry(honest, "P", OpenEntry, lambda e: replace(e, log=(*e.log, "not logged by the script")))
    assert "RT-4" in _audit_blocks(tmp_path, honest, blocks)


def test_leader_ignores_a_request_for_an_enclave_account_from_a_public_shard(honest: Run) -> None:
    from sagachain.core.ledger import ChainState
    from shards.placement import Priority
    from shards.shard import Request, ShardMachine

    chain = ChainState(honest.genesis)
    vault = _names(honest)["vault"]
    owner = chain.owner[vault]
    record = next(s for s in honest.genesis.shards if s.id == owner)
    machine = ShardMachine(record, chain, store=honest.initial["acme"].copy())
    assert [r.rule for r in machine.on_request(Request(vault, "P0", Priority(0, b"")))] == ["L2L-2"]
    assert vault not in machine.grants
