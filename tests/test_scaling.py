"""SH-2: public shards are added as the queue wait rises and removed when it falls; enclave shards never."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainkit import audit, simulate
from sagachain.errors import InputError
from sagachain.sim.scaling import Scaler, ScalingPolicy
from sagachain.sim.scenario import Scenario


def rising_then_quiet(s: Scenario) -> None:
    s.configure(duration=90_000, block_interval=500, latency=30, jitter=10, block_txs=6)  # 12 tx/s per shard
    s.public_shards(6, active=1)
    s.enclave("acme", shards=1)
    s.scaling(target_ms=1_500, low_ms=400, window=3, cooldown_ms=4_000)
    people = [f"u{i}" for i in range(60)]
    for name in people:
        s.account(name, balance=1_000_000)
    for i in range(900):  # 30 s of heavy load, then silence
        src, dst = s.rng.sample(people, 2)
        s.transaction(100 + i * 33, src, "a.pay(b, 1)", {"a": src, "b": dst})


def test_load_adds_shards_and_quiet_removes_them(tmp_path: Path) -> None:
    run = simulate(rising_then_quiet)
    changes = run.result.metrics.shard_changes
    added = [c for c in changes if c[1] == "add"]
    removed = [c for c in changes if c[1] == "remove"]
    assert added and removed and added[0][0] < removed[-1][0]
    counts = [row["public_shards"] for row in run.result.series.rows]
    assert max(counts) > 1 and counts[-1] < max(counts)
    assert all(row["enclave_shards"] == 1 for row in run.result.series.rows)  # SH-3: never scaled
    metrics = run.result.metrics
    assert sum(metrics.committed.values()) == metrics.submitted
    assert audit(tmp_path, run.genesis, run.blocks).ok


def test_scaler_needs_a_full_window_and_respects_the_cooldown() -> None:
    scaler = Scaler(ScalingPolicy(target_ms=100, low_ms=10, window=2, cooldown_ms=1_000))
    assert scaler.decide(0, 500, live=1, pool=3) == 0
    assert scaler.decide(100, 500, live=1, pool=3) == 1
    assert scaler.decide(200, 500, live=2, pool=3) == 0  # cooling down
    assert scaler.decide(1_200, 500, live=2, pool=3) == 1
    assert scaler.decide(2_400, 500, live=3, pool=3) == 0  # pool exhausted
    assert scaler.decide(3_600, 1, live=3, pool=3) == 0  # window holds a high value still
    assert scaler.decide(4_800, 1, live=3, pool=3) == -1


def test_bad_scaling_settings_are_input_errors() -> None:
    with pytest.raises(InputError, match="low_ms < target_ms"):
        ScalingPolicy(target_ms=10, low_ms=20)
    with pytest.raises(InputError, match="active"):
        Scenario(1).public_shards(2, active=3)
