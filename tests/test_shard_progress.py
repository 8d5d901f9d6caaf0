"""Shards never lose work: a refused transaction does not stall its sender, and a proposal
that fails validation is taken back, not dropped."""

from __future__ import annotations

from chainkit import simulate, small
from sagachain.sim.runner import Simulation
from sagachain.sim.scenario import Scenario
from sagachain.world.build import build_world
from shards.tools import tools_for


def test_a_refused_transaction_does_not_block_its_senders_later_ones() -> None:
    def build(s: Scenario) -> None:
        small(s, beta=True, transfers=0)
        s.configure(duration=20_000)
        s.transaction(300, "alice", "v.record(1)\nw.record(2)", {"v": "vault", "w": "beta_box"})  # CMI-4: refused
        for i in range(5):
            s.transaction(1_000 + 500 * i, "alice", "a.pay(b, 1)", {"a": "alice", "b": "bob"})

    metrics = simulate(build).result.metrics
    assert metrics.rejected["CMI-4"] == 1
    assert sum(metrics.committed.values()) == metrics.submitted - 1


def test_the_simulator_tells_every_shard_of_a_void_nonce_and_shares_no_collection_with_them() -> None:
    scenario = Scenario(1, name="test")
    small(scenario, beta=True, transfers=0)
    scenario.configure(duration=3_000)
    scenario.transaction(300, "alice", "v.record(1)\nw.record(2)", {"v": "vault", "w": "beta_box"})  # CMI-4: refused
    sim = Simulation(build_world(scenario), tools_for(scenario.crypto), None)
    sim.run()
    alice = sim.world.account("alice")
    assert sim.void == {alice: {1}}
    assert [r.rule for r in sim.refusals.values()] == ["CMI-4"]
    for machine in sim.machines.values():
        assert machine.void == sim.void and machine.void is not sim.void
        assert machine.live == frozenset(sim.live) and machine.live is not sim.live


def test_a_breakaway_sharing_a_block_with_releases_still_happens() -> None:
    def build(s: Scenario) -> None:
        small(s, transfers=20)
        s.breakaway(4_000, "acme")

    metrics = simulate(build).result.metrics
    assert metrics.broken_away
    assert not metrics.rejected_blocks
