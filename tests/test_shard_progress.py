"""Shards never lose work: a refused transaction does not stall its sender, and a proposal
that fails validation is taken back, not dropped."""

from __future__ import annotations

from chainkit import simulate, small
from sagachain.sim.scenario import Scenario


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


def test_a_breakaway_sharing_a_block_with_releases_still_happens() -> None:
    def build(s: Scenario) -> None:
        small(s, transfers=20)
        s.breakaway(4_000, "acme")

    metrics = simulate(build).result.metrics
    assert metrics.broken_away
    assert not metrics.rejected_blocks
