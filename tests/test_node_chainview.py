"""A reader's chain view applies final blocks in any arrival order, and refuses bad ones.

Gossip delivers blocks in whatever order the network chooses; the view holds
each back until what it builds on is judged. Whatever the order, every block
of an honest run is applied and the ledger ends where the simulator's ended.
A tampered block is refused with its rule and never applied; one without a
valid quorum takes no height, so the genuine block still goes in.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chainkit import Run, simulate, small
from sagachain.core.block import Block, OpenEntry
from sagachain.core.ledger import ChainState
from sagachain.core.rules import APPLIED, REFUSED
from shards.chainview import ChainView
from shards.enclave_replica import EnclaveReplica, changes_state
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
        judged = view.offer(block)
        assert all(j.outcome == APPLIED for j in judged), [j.verdict.summary() for j in judged]
        applied.extend(j.block for j in judged)
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
    [judged] = view.offer(cut)
    assert judged.outcome == REFUSED and judged.verdict.rules == ("SH-1",) and not judged.verdict.final
    assert view.heads[first.shard] == 0 and first.shard not in view.chain.halted
    [judged] = view.offer(first)  # the genuine block still goes in afterwards
    assert judged.block is first and judged.outcome == APPLIED


def test_a_tampered_fee_is_refused_with_its_rule(run: Run) -> None:
    view = _fresh(run)
    index, block = next((i, b) for i, b in enumerate(run.result.blocks) if any(isinstance(e, OpenEntry) for e in b.entries))
    for earlier in run.result.blocks[:index]:
        view.offer(earlier)
    header = replace(block.header, fees=block.header.fees + 1)
    bad = Block(header=header, entries=block.entries, qc=block.qc)
    [judged] = view.offer(bad)
    assert judged.outcome == REFUSED and "SH-1" in judged.verdict.rules  # the qc signs the genuine hash
    assert view.heads[block.shard] == block.height - 1


def test_a_proposal_waits_for_what_it_builds_on(run: Run) -> None:
    view = _fresh(run)
    later = next(b for b in run.result.blocks if b.height == 2)
    assert view.check_proposal(later).startswith("waiting for")
    assert view.missing(later) is not None


def test_an_enclave_replica_advances_only_by_its_own_reexecution_and_turns_stale_without_one(run: Run) -> None:
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
        assert not replica.on_final(block, replayed=False)  # no off-chain change: follows without a replay
    assert not replica.on_final(first, replayed=False)  # not re-executed here: stale
    assert replica.heads["acme/0"] == first.height - 1
    assert not replica.current({"acme/0": first.height})
    assert replica.on_final(first, replayed=True) and replica.current({"acme/0": first.height})
