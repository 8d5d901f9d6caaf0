"""A node's chain view applies final blocks in any arrival order, and refuses bad ones.

Gossip delivers blocks in whatever order the network chooses; the view holds
each back until what it builds on is applied. Whatever the order, every
block of an honest run is applied and the ledger ends where the simulator's
ended. A tampered block is refused with its rule and never applied.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chainkit import Run, simulate, small
from node.chainview import ChainView
from node.enclave_replica import EnclaveReplica, changes_state
from sagachain.core.block import Block, OpenEntry
from sagachain.core.ledger import ChainState
from shards.tools import default_tools


@pytest.fixture(scope="module")
def run() -> Run:
    return simulate(lambda s: small(s, transfers=30))


def _fresh(run: Run) -> ChainView:
    return ChainView(ChainState(run.world.genesis), default_tools())


def _summary(chain: ChainState) -> tuple[object, ...]:
    return (dict(chain.owner), dict(chain.objects), dict(chain.nonces), dict(chain.transit), chain.circulating)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.randoms(use_true_random=False))
def test_any_arrival_order_applies_every_block_and_reaches_the_same_ledger(run: Run, order) -> None:  # type: ignore[no-untyped-def]
    blocks = list(run.result.blocks)
    assert len(blocks) > 20 and {b.shard for b in blocks} >= {"P0", "P1", "acme/0"}
    order.shuffle(blocks)
    view = _fresh(run)
    applied: list[Block] = []
    for block in blocks:
        done, refused = view.offer(block)
        assert not refused, [r.reason for r in refused]
        applied.extend(done)
    assert not view.waiting
    assert sorted(b.hash for b in applied) == sorted(b.hash for b in run.result.blocks)
    assert _summary(view.chain) == _summary(run.result.chain)
    position = {(b.shard, b.height): i for i, b in enumerate(applied)}
    for block in applied:  # each applied after its parent and what its gas basis names
        i = position[(block.shard, block.height)]
        assert block.height == 1 or position[(block.shard, block.height - 1)] < i
        assert all(position.get((h.shard, h.height), -1) < i for h in block.header.gas_basis if h.height > 0)


def test_a_block_whose_qc_is_cut_is_refused_with_sh_1_and_not_applied(run: Run) -> None:
    view = _fresh(run)
    first = run.result.blocks[0]
    cut = Block(header=first.header, entries=first.entries, qc=first.qc[:1])
    applied, refused = view.offer(cut)
    assert not applied and [r.rules for r in refused] == [("SH-1",)]
    assert view.heads[first.shard] == 0
    applied, refused = view.offer(first)  # the genuine block still goes in afterwards
    assert applied == [first] and not refused


def test_a_tampered_fee_is_refused_with_its_rule(run: Run) -> None:
    view = _fresh(run)
    index, block = next((i, b) for i, b in enumerate(run.result.blocks) if any(isinstance(e, OpenEntry) for e in b.entries))
    for earlier in run.result.blocks[:index]:
        view.offer(earlier)
    header = replace(block.header, fees=block.header.fees + 1)
    bad = Block(header=header, entries=block.entries, qc=block.qc)
    applied, refused = view.offer(bad)
    assert not applied and refused and "SH-1" in refused[0].rules  # the qc signs the genuine hash
    assert view.heads[block.shard] == block.height - 1


def test_a_proposal_waits_for_what_it_builds_on(run: Run) -> None:
    view = _fresh(run)
    later = next(b for b in run.result.blocks if b.height == 2)
    assert view.check_proposal(later).startswith("waiting for")
    assert view.missing(later) is not None


def test_an_enclave_replica_follows_the_chain_with_deltas_and_turns_stale_without_one(run: Run) -> None:
    enclave_blocks = [b for b in run.result.blocks if b.shard == "acme/0"]
    changing = [b for b in enclave_blocks if changes_state(b)]
    assert changing, "the small scenario runs enclave transactions on acme/0"
    replica = EnclaveReplica("acme", ("acme/0",))
    replica.install(run.initial["acme"], {})
    assert replica.current({"acme/0": 0})
    first = changing[0]
    for block in enclave_blocks:
        if block is first:
            break
        assert not replica.on_final(block)  # no off-chain change: follows without a delta
    assert not replica.on_final(first)  # its delta never came: stale
    assert replica.heads["acme/0"] == first.height - 1
    assert not replica.current({"acme/0": first.height})
    replica.keep(first.hash, {b"x" * 32: None})
    assert replica.on_final(first) and replica.current({"acme/0": first.height})
