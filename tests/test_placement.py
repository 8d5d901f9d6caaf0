"""Placement strategies (L2L-1): each keeps the chain well-formed; affinity exploits community structure."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainkit import audit, chain_bytes, simulate
from sagachain.errors import InputError
from sagachain.sim.scenario import Scenario
from shards.placement import Affinity, HashHome, LookAhead, Placement

COMMUNITIES, MEMBERS = 4, 6


def clustered(strategy: Placement) -> object:
    """Four groups of accounts that mostly pay within their group."""

    def build(s: Scenario) -> None:
        s.configure(duration=120_000, block_interval=500, latency=30, jitter=10)  # long enough for the slowest to drain
        s.public_shards(4)
        s.placement(strategy)
        names = [[f"c{c}m{m}" for m in range(MEMBERS)] for c in range(COMMUNITIES)]
        for group in names:
            for name in group:
                s.account(name, balance=1_000_000)
        for i in range(160):
            group = names[s.rng.randrange(COMMUNITIES)] if s.rng.random() < 0.9 else [n for g in names for n in g]
            src, dst = s.rng.sample(group, 2)
            s.transaction(200 + i * 150, src, f"a.pay(b, {s.rng.randint(1, 9)})", {"a": src, "b": dst})

    return build


@pytest.mark.parametrize("strategy", [LookAhead, HashHome, Affinity], ids=lambda c: c.__name__)
def test_every_strategy_commits_and_stays_well_formed(strategy: type, tmp_path: Path) -> None:
    run = simulate(clustered(strategy()))  # type: ignore[arg-type]
    metrics = run.result.metrics
    assert sum(metrics.committed.values()) == metrics.submitted
    assert audit(tmp_path, run.genesis, run.blocks).ok


def test_affinity_moves_fewer_accounts_than_hash_homes_on_a_clustered_workload() -> None:
    hashed = simulate(clustered(HashHome())).result.metrics.acquires  # type: ignore[arg-type]
    learned = simulate(clustered(Affinity(every=4))).result.metrics.acquires  # type: ignore[arg-type]
    assert learned < hashed


def test_affinity_is_deterministic(tmp_path: Path) -> None:
    one = simulate(clustered(Affinity()))  # type: ignore[arg-type]
    two = simulate(clustered(Affinity()))  # type: ignore[arg-type]
    assert chain_bytes(tmp_path, one.genesis, one.blocks) == chain_bytes(tmp_path / "..", two.genesis, two.blocks)


def test_a_placement_must_have_the_interface() -> None:
    with pytest.raises(InputError, match="lacks the method"):
        Scenario(1).placement(object())  # type: ignore[arg-type]
