"""A lying enclave proposer is caught by the members' re-execution (TX-6), and only by it.

Each lie of ``shards.lies`` is put, just where the honest proposer put its
block, to two readers: an outsider, who sees only the public chain, and an
enclave member, whose chain view re-executes the block on its own copy of the
enclave state. The outsider finds nothing wrong (that is why members must
re-execute); the member refuses it naming TX-6. In the simulator, the
``lying_proposer`` scenario seats such a liar: every lie is refused, the
height is built by the next member, and the chain audits clean with the
enclave's state.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chainkit import Run, simulate, small
from sagachain.audit.auditor import audit_chain
from sagachain.core.block import Block, EnclaveEntry, MixedEntry
from sagachain.core.chainfile import read_chain
from sagachain.core.ledger import ChainState
from sagachain.core.rules import judge_block
from sagachain.sim.load import load_scenario
from sagachain.sim.output import write_results
from sagachain.sim.runner import Simulation
from sagachain.world.build import build_world
from shards.chainview import ChainView
from shards.enclave_replay import EnclaveReplay
from shards.lies import LIES
from shards.tools import default_tools, tools_for

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "lying_proposer.py"


@pytest.fixture(scope="module")
def run() -> Run:
    return simulate(small)


def _target(run: Run, kind: str) -> int:
    wanted = MixedEntry if kind == "inflate_payout" else EnclaveEntry | MixedEntry
    return next(i for i, b in enumerate(run.blocks) if b.shard.startswith("acme") and any(isinstance(e, wanted) for e in b.entries))


def _member_view(run: Run, upto: int) -> ChainView:
    """A member's view of the chain just before block ``upto``, following the enclave's state."""
    view = ChainView(ChainState(run.genesis), default_tools(), replay=EnclaveReplay({}))
    assert view.replay is not None
    view.replay.track(run.initial["acme"].copy())
    for block in run.blocks[:upto]:
        view.offer(block)
    return view


@pytest.mark.parametrize("kind", sorted(LIES))
def test_a_lie_passes_every_public_rule_but_a_member_refuses_it_with_tx_6(run: Run, kind: str) -> None:
    at = _target(run, kind)
    view = _member_view(run, at)
    honest = run.blocks[at]
    unsigned = Block(header=honest.header, entries=honest.entries, qc=())
    lie = LIES[kind](view.chain, unsigned)
    assert lie is not None and lie.hash != unsigned.hash

    outsider = judge_block(view.chain, lie, default_tools(), proposal=True, keep=False)
    assert outsider.violations == [], f"{kind}: the public rules already see it: {outsider.summary()}"
    problem = view.check_proposal(lie)
    assert problem is not None and problem.startswith("TX-6"), problem
    assert view.check_proposal(unsigned) is None  # the honest block, in the same place, is accepted


@pytest.mark.parametrize("kind", sorted(LIES))
def test_a_scenario_with_a_lying_proposer_finalizes_no_lie_and_keeps_going(kind: str, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIO, 1, {"lie": kind, "duration": "12000", "transfers": "10", "records": "6", "payouts": "6"})
    world = build_world(scenario)
    initial = {e: store.copy() for e, store in world.stores.items()}
    result = Simulation(world, tools_for(scenario.crypto)).run()
    write_results(result, tmp_path, initial, False)
    lies = result.metrics.lies
    assert lies["told"] >= 1 and lies["refused"] == lies["told"]
    assert result.metrics.rejected_blocks == {"TX-6": lies["told"]}
    assert sum(result.metrics.committed.values()) == result.metrics.submitted  # the next proposer built each height
    report = audit_chain(read_chain(tmp_path / "chain.sgc"), tools_for(scenario.crypto), enclaves=initial)
    assert report.ok, [f"{v.rule} {v.reason}" for v in report.violations[:3]]
    (acme,) = report.enclaves_replayed
    assert acme.enclave == "acme" and acme.blocks == result.metrics.blocks["acme/0"]  # every enclave block re-executed
