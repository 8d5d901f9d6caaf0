"""Membership churn in the simulator (MEM-1..MEM-3): roster actions as real transactions, real keyrings.

Every member holds each epoch's key from its join on, removed nodes hold none
after their removal, the chain audits clean, the same seed gives the same
chain, the owner cannot be removed, and the key tree seals fewer bytes than
seal-to-all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chainkit import audit, chain_bytes
from sagachain.core.roster import MEMBER, OWNER
from sagachain.errors import InputError
from sagachain.world import recipes
from sagachain.sim.runner import Simulation
from sagachain.sim.scenario import Scenario
from sagachain.world.build import World, build_world
from sagachain.sweep import ResultPath, metric_at
from shards.tools import tools_for

STRATEGIES = ["seal-to-all", "key-tree"]


def _club(s: Scenario, strategy: str, size: int, auto_join: bool = False) -> None:
    s.configure(duration=20_000, block_interval=500, latency=40, jitter=10)
    s.public_shards(1, nodes=4)
    s.enclave("club", shards=1, nodes=4, key_strategy=strategy, members=size - 4, operator_balance=10**12, auto_join=auto_join)
    recipes.enclave_vaults(s, "club", ["club/0"])
    for at in range(600, 12_000, 700):  # club/0 builds blocks throughout: its committee signs them as the roster changes
        s.transaction(at, "sponsor", "v.record(1)", {"v": "vault_a"})


def _names(world: World) -> tuple[str, list[str]]:
    """The owner's node name and the other committee nodes' names."""
    chain = world.chain()
    owner = next(e.node for e in chain.roster_entries("club") if e.has(OWNER))
    names = {n.id: n.name for n in world.genesis.nodes}
    return names[owner], sorted(names[n] for n in chain.shards["club/0"].committee if n != owner)


def _run(strategy: str, size: int, declare, seed: int = 1) -> tuple[World, Simulation]:  # type: ignore[no-untyped-def]
    s = Scenario(seed, name="membership")
    _club(s, strategy, size)
    world = build_world(s)
    declare(s, *_names(world))  # roster actions change nothing in the genesis
    sim = Simulation(world, tools_for(s.crypto))
    sim.run()
    return world, sim


def _churn(s: Scenario, owner: str, seated: list[str]) -> None:
    s.roster(1_000, "club", "join")  # apply, then the owner approves
    s.roster(1_100, "club", "invite")  # the invitee accepts once the invite is final
    s.roster(1_200, "club", "rotate", node=seated[0])  # a seated node: it signs blocks with its new key from then on
    s.roster(1_300, "club", "remove", node="club-m0")
    s.roster(1_400, "club", "grant-admin", node="club-j0")
    s.roster(1_500, "club", "remove")  # a random non-owner member


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_member_holds_each_epoch_key_and_removed_nodes_none(strategy: str, tmp_path: Path) -> None:
    world, sim = _run(strategy, 6, _churn)
    driver, log = sim.membership, sim.metrics.membership
    assert log.refused == [] and log.skipped == [] and log.pending == 0 and log.actions == 6
    assert [c.change for c in log.changes] == ["add", "add", "rotate", "remove", "remove"]
    assert [c.method for c in log.changes] == ["approve", "accept", "rotate", "remove", "remove"]
    assert all(c.missing == 0 and c.leaked == 0 and c.all_hold_ms is not None for c in log.changes)
    assert all(c.requested_ms <= c.built_ms <= c.submitted_ms < c.final_ms < c.all_hold_ms for c in log.changes)  # type: ignore[operator]
    rings, members_at = driver.keyrings["club"], driver.members_at["club"]
    assert sorted(members_at) == list(range(1, 7))
    for epoch, members in members_at.items():
        holders = {node for node, ring in rings.items() if epoch in ring.keys}
        assert holders == members, f"epoch {epoch}"
        assert len({rings[n].keys[epoch] for n in members}) == 1  # one key per epoch
    for node in driver.removed["club"]:
        left = min(e for e, members in members_at.items() if node not in members and e > 1)
        assert all(e < left for e in rings[node].keys)  # nothing from its removal on
    entries = {e.node: e for e in sim.chain.roster_entries("club")}
    assert entries[driver.names["club-j0"]].has("admin") and "club-m0" not in {driver.node_names[n] for n in entries}
    assert audit(tmp_path, world.genesis, sim.blocks).ok
    rotate = next(c for c in log.changes if c.change == "rotate")
    gone = next((c.final_ms for c in log.changes if c.change == "remove" and c.node == rotate.node), 10**9)  # the random removal may pick it
    later = [b for b in sim.blocks if b.shard == "club/0" and rotate.all_hold_ms < b.header.time < gone]  # type: ignore[operator]
    assert later and all(driver.names[rotate.node] in {v.signer for v in b.qc} for b in later)  # it signs with its new key: the audit agrees
    assert sum(sim.metrics.committed.values()) == sim.metrics.submitted
    _, again = _run(strategy, 6, _churn)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert chain_bytes(tmp_path / "a", world.genesis, sim.blocks) == chain_bytes(tmp_path / "b", again.world.genesis, again.blocks)


def test_removing_the_owner_is_refused_by_mem_2(tmp_path: Path) -> None:
    world, sim = _run("key-tree", 6, lambda s, owner, seated: s.roster(1_000, "club", "remove", node=owner))
    log = sim.metrics.membership
    assert log.changes == [] and len(log.refused) == 1
    refusal = log.refused[0]
    assert refusal.rule == "MEM-2" and "owner" in refusal.error and refusal.method == "remove"
    owner = [e for e in sim.chain.roster_entries("club") if e.has(OWNER)]
    assert len(owner) == 1 and owner[0].state == MEMBER and sim.chain.schedules["club"].epoch == 1
    assert audit(tmp_path, world.genesis, sim.blocks).ok


def test_key_tree_seals_fewer_bytes_than_seal_to_all_at_64_members() -> None:
    def declare(s: Scenario, owner: str, seated: list[str]) -> None:
        s.churn("club", 1_000, 4_000, joins=1, removals=1, rotations=1)

    sealed = {}
    for strategy in STRATEGIES:
        _, sim = _run(strategy, 64, declare)
        changes = sim.metrics.membership.changes
        assert len(changes) == 3 and all(c.members >= 63 and c.missing == 0 and c.leaked == 0 for c in changes)
        sealed[strategy] = sim.metrics.membership.to_json()["summary"]["sealed_bytes_mean"]
    assert sealed["key-tree"] * 4 < sealed["seal-to-all"]
    assert sealed["seal-to-all"] >= 63 * 80  # a box per member: 32-byte secret, 48 bytes of overhead


def test_auto_join_is_one_transaction() -> None:
    s = Scenario(1, name="membership")
    _club(s, "seal-to-all", 4, auto_join=True)
    s.roster(1_000, "club", "join", seats=["club/0"])
    sim = Simulation(build_world(s), tools_for(s.crypto))
    sim.run()
    (change,) = sim.metrics.membership.changes
    assert change.method == "join" and change.members == 5 and change.missing == 0
    last = next(b for b in reversed(sim.blocks) if b.shard == "club/0")
    assert len(last.qc) == 5 and sim.world.node_keys[sim.membership.names["club-j0"]]  # it asked for a seat, and signs


@pytest.mark.parametrize(
    ("declare", "words"),
    [
        (lambda s: s.roster(1_000, "club", "promote"), "op 'promote'"),
        (lambda s: s.roster(1_000, "nope", "join"), "unknown enclave"),
        (lambda s: s.roster(1_000, "club", "remove", seats=["club/0"]), "takes none"),
        (lambda s: s.roster(1_000, "club", "join", seats=["P0"]), "shards of enclave"),
        (lambda s: s.roster(1_000, "club", "join", node="club-m0"), "already on the roster"),
        (lambda s: s.roster(1_000, "club", "rotate", node="club-zz"), "no such node"),
        (lambda s: s.roster(-1, "club", "join"), "non-negative"),
        (lambda s: s.churn("club", 5_000, 1_000, joins=1), "start < end"),
        (lambda s: s.churn("club", 0, 1_000, removals=-1), "removals=-1"),
    ],
)
def test_roster_declarations_are_checked(declare, words: str) -> None:  # type: ignore[no-untyped-def]
    s = Scenario(1, name="membership")
    _club(s, "key-tree", 6)
    with pytest.raises(InputError, match=words) as raised:
        declare(s)
    assert raised.value.rule == "MEM-2"


def test_roster_actions_need_an_operator_balance_and_real_crypto() -> None:
    s = Scenario(1, name="membership")
    s.public_shards(1)
    s.enclave("club")
    with pytest.raises(InputError, match="operator_balance"):
        s.roster(1_000, "club", "join")
    s = Scenario(1, name="membership")
    _club(s, "key-tree", 6)
    s.roster(1_000, "club", "join")
    s.crypto_mode("modelled")
    with pytest.raises(InputError, match="real crypto"):
        build_world(s)


def test_a_sweep_metric_reads_a_path_of_results() -> None:
    summary = {"metrics": {"membership": {"summary": {"sealed_bytes_mean": 880.0, "hold_ms_mean": None}}}}
    assert metric_at("metrics.membership.summary.sealed_bytes_mean").read(summary) == 880.0
    assert ResultPath("metrics.membership.summary.hold_ms_mean")(summary) is None
    assert ResultPath("metrics.nothing.here")(summary) is None
    with pytest.raises(InputError, match="not a number"):
        ResultPath("metrics.membership")(summary)
    with pytest.raises(InputError, match="dotted path"):
        metric_at("metrics..x")
