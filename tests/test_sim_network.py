"""The simulator's network, cost model, faults and time series."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chainkit import audit, simulate, small
from sagachain.errors import InputError
from sagachain.sim.network import Constant, LogNormal, Network, NetworkModel, Regions, Uniform
from sagachain.sim.scenario import Scenario


def _net(**model: object) -> Network:
    return Network(NetworkModel(**model), random.Random(7), shards=9)  # type: ignore[arg-type]


def test_latency_models_draw_in_their_range() -> None:
    rng = random.Random(1)
    assert Constant(12).draw(rng, "a", "b") == 12
    assert all(10 <= Uniform(10, 20).draw(rng, "a", "b") <= 20 for _ in range(100))
    draws = sorted(LogNormal(50, 0.5).draw(rng, "a", "b") for _ in range(2001))
    assert 40 < draws[1000] < 60  # the median
    regions = Regions({"P0": "eu", "P1": "us"}, {("us", "eu"): Constant(80)}, local=Constant(3))
    assert regions.draw(rng, "P0", "P1") == 80 and regions.draw(rng, "P0", "P0") == 3
    with pytest.raises(InputError, match="no region"):
        regions.draw(rng, "P0", "P9")


def test_loss_delays_reliable_messages_and_drops_unreliable_ones() -> None:
    lossy = _net(latency=Constant(10), loss=0.5, retry_ms=100)
    reliable = [lossy.send("a", "b") for _ in range(200)]
    assert all(d is not None and d >= 10 for d in reliable)
    assert any(d is not None and d >= 120 for d in reliable)  # some were retransmitted
    unreliable = [lossy.send("a", "b", reliable=False) for _ in range(200)]
    assert None in unreliable and 10 in unreliable


def test_partition_holds_messages_until_heal() -> None:
    net = _net(latency=Constant(10))
    net.partition([["a"], ["b"]])
    assert net.send("a", "b") is None
    net.heal()
    assert net.send("a", "b") == 10


def test_bandwidth_and_gossip_fanout() -> None:
    assert _net(latency=Constant(10), bandwidth=100).send("a", "b", size=1_000) == 20
    assert _net(latency=Constant(10), fanout=2).gossip_hops() == 3  # 8 other shards, fan-out 2
    assert _net(latency=Constant(10)).gossip_hops() == 1


def test_bad_network_settings_are_input_errors() -> None:
    s = Scenario(1)
    with pytest.raises(InputError, match="unknown network setting"):
        s.network(latncy=Constant(1))
    with pytest.raises(InputError, match="loss"):
        s.network(loss=1.5)
    with pytest.raises(InputError, match="unknown cost"):
        s.costs(verify=1)


def test_a_slower_network_raises_latency_and_the_chain_stays_well_formed(tmp_path: Path) -> None:
    def base(s: Scenario) -> None:
        small(s)
        s.configure(duration=60_000)  # long enough for everything to commit in both runs

    def slow(s: Scenario) -> None:
        base(s)
        s.network(latency=LogNormal(200, 0.4), loss=0.05)

    fast, slowed = simulate(base), simulate(slow)
    assert slowed.result.metrics.submitted == sum(slowed.result.metrics.committed.values())
    assert sum(slowed.result.metrics.latencies) > sum(fast.result.metrics.latencies)
    assert audit(tmp_path, slowed.genesis, slowed.blocks).ok


def test_crash_without_quorum_stops_a_shard_until_restart(tmp_path: Path) -> None:
    def crashing(s: Scenario) -> None:
        small(s)
        s.crash(2_000, "P0", nodes=2, restart=8_000)

    run = simulate(crashing)
    times = [b.header.time for b in run.blocks if b.shard == "P0"]
    assert not any(2_000 < t < 8_000 for t in times)
    assert any(t >= 8_000 for t in times)
    rows = run.result.series.rows
    assert min(r["public_shards"] for r in rows) == 1
    assert audit(tmp_path, run.genesis, run.blocks).ok


def test_partition_and_heal_keep_the_chain_well_formed(tmp_path: Path) -> None:
    def split(s: Scenario) -> None:
        small(s)
        s.partition(1_500, ["P0", "acme/0"], ["P1", "acme/1"])
        s.heal(5_000)

    run = simulate(split)
    assert run.result.network.lost > 0
    assert audit(tmp_path, run.genesis, run.blocks).ok
    assert sum(run.result.metrics.committed.values()) > 0


def test_time_series_adds_up_to_the_totals() -> None:
    run = simulate(small)
    rows = run.result.series.rows
    for kind in ("open", "enclave", "mixed"):
        assert sum(r[f"committed_{kind}"] for r in rows) == run.result.metrics.committed[kind]
    assert sum(r["transfers"] for r in rows) == run.result.metrics.acquires
    assert [r["t_ms"] for r in rows] == sorted({r["t_ms"] for r in rows})
