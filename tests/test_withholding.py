"""An enclave shard that withholds off-chain state from the enclave's other shards.

The public chain cannot show it (TX-6: outsiders check only well-formedness);
the other members notice when a block's state changes do not arrive, and an
account the withholder releases can never be acquired (its state hash cannot
be matched).
"""

from __future__ import annotations

from pathlib import Path

from chainkit import audit, simulate, small
from sagachain.sim.scenario import Scenario


def withholding(s: Scenario) -> None:
    small(s)
    s.configure(duration=20_000)
    s.transaction(3_000, "bob", "v.record(7)", {"v": "vault"})
    s.misbehave("acme/0", "withhold", count=1_000)


def test_members_notice_withheld_state_while_the_chain_looks_fine(tmp_path: Path) -> None:
    run = simulate(withholding)
    metrics = run.result.metrics
    assert metrics.withheld_blocks > 0
    assert metrics.withheld_noticed
    timeout = run.world.scenario.timing.state_timeout
    first = min(delay for *_, delay in metrics.withheld_noticed)
    assert timeout <= first <= timeout + 1_000
    assert {replica for _, _, replica, _ in metrics.withheld_noticed} == {"acme/1"}
    assert audit(tmp_path, run.genesis, run.blocks).ok  # nothing public gives it away


def test_honest_enclave_shards_share_their_state_and_nobody_notices() -> None:
    run = simulate(small)
    assert run.result.metrics.withheld_blocks == 0
    assert not run.result.metrics.withheld_noticed
