"""A node and an auditor reading the same chain never disagree, block by block.

The differential test of the one judge: every scenario in ``scenarios/`` (at
the small sizes of ``tests/test_scenarios.py``) and chains with rule-breaking
blocks (made by colluding committees and by re-signing tampered blocks, as in
``tests/test_audit_rules.py``) go to a node's chain view, built as a node
builds it, and to ``sagachain audit``'s ``audit_chain``. Both must give every
block the same outcome (applied, refused, ignored) with the same rules, and
end each block with the same ledger state (``state_digest``).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from chainkit import Run, relink, simulate, small, with_entries
from sagachain.audit.auditor import audit_chain
from sagachain.core.block import Block, MixedEntry, ObjectUpdate
from sagachain.core.chainfile import ChainFile, read_chain, read_chain_bytes, write_chain
from sagachain.core.ledger import ChainState
from sagachain.core.rules import APPLIED, IGNORED, REFUSED
from sagachain.core.state_digest import state_digest
from sagachain.sim.scenario import Scenario
from sagachain.sim.load import run_scenario
from shards.chainview import ChainView, Judged
from shards.enclave_replay import EnclaveReplay
from shards.tools import tools_for
from test_scenarios import CASES, SCENARIOS

Step = tuple[str, int, str, tuple[str, ...], bytes]  # shard, height, outcome, rules, digest after it


def _node_reading(chain: ChainFile, tools: object, order: list[Block] | None = None) -> list[Step]:
    """What a node makes of the blocks, in file order (or ``order``, a gossip order)."""
    view = ChainView(ChainState(chain.genesis), tools, replay=EnclaveReplay({}))  # type: ignore[arg-type]
    steps: list[Step] = []
    for block in order if order is not None else chain.blocks:
        steps.extend(_step(j, view.chain) for j in view.offer(block))
    steps.extend(_step(j, view.chain) for j in view.flush())
    return steps


def _auditor_reading(chain: ChainFile, tools: object) -> tuple[list[Step], object]:
    steps: list[Step] = []
    report = audit_chain(chain, tools, on_judged=lambda j, state: steps.append(_step(j, state)))  # type: ignore[arg-type]
    return steps, report


def _step(judged: Judged, state: ChainState) -> Step:
    return (judged.block.shard, judged.block.height, judged.outcome, judged.verdict.rules, state_digest(state))


def _agree(chain: ChainFile, tools: object) -> list[Step]:
    node = _node_reading(chain, tools)
    auditor, report = _auditor_reading(chain, tools)
    assert len(node) == len(chain.blocks) and len(auditor) == len(chain.blocks)
    for at, (mine, theirs) in enumerate(zip(node, auditor, strict=True)):
        assert mine == theirs, f"block {at}: node {mine[:4]} vs auditor {theirs[:4]}"
    refused = [(s, h) for s, h, outcome, _, _ in node if outcome == REFUSED]
    ignored = [(s, h) for s, h, outcome, _, _ in node if outcome == IGNORED]
    assert refused == [(r.shard, r.height) for r in report.refused]  # type: ignore[attr-defined]
    assert ignored == [(i.shard, i.height) for i in report.ignored]  # type: ignore[attr-defined]
    return node


@pytest.mark.parametrize("case", sorted(CASES))
def test_node_and_auditor_agree_on_every_scenario_chain(case: str, tmp_path: Path) -> None:
    expect = CASES[case]
    run_scenario(SCENARIOS / f"{case.split('/')[0]}.py", seed=1, out=tmp_path, settings=dict(expect.settings), plots=False)
    tools = tools_for(json.loads((tmp_path / "results.json").read_text())["crypto"])
    chain = read_chain(tmp_path / "chain.sgc")
    steps = _agree(chain, tools)
    if expect.ignored:
        assert any(outcome == IGNORED for _, _, outcome, _, _ in steps)
    if not expect.rules and not expect.ignored and case != "breakaway":
        assert all(outcome == APPLIED for _, _, outcome, _, _ in steps)


@pytest.fixture(scope="module")
def honest() -> Run:
    return simulate(small)


def test_any_gossip_order_reaches_the_auditors_ledger(honest: Run, tmp_path: Path) -> None:
    chain = _file(tmp_path, honest.genesis, honest.blocks)
    tools = tools_for("real")
    final = _auditor_reading(chain, tools)[0][-1][4]
    for seed in range(5):
        order = list(chain.blocks)
        random.Random(seed).shuffle(order)
        steps = _node_reading(chain, tools, order)
        assert all(outcome == APPLIED for _, _, outcome, _, _ in steps)
        assert steps[-1][4] == final


def _file(tmp: Path, genesis: object, blocks: list[Block]) -> ChainFile:
    path = tmp / "chain.sgc"
    write_chain(path, genesis, blocks)  # type: ignore[arg-type]
    return read_chain_bytes(path.read_bytes())


def _colluding(kind: str, shard: str) -> Run:
    def build(s: Scenario) -> None:
        small(s, beta=kind == "cross_enclave")
        if kind == "cross_enclave":
            s.transaction(1_000, "alice", "v.record(1)\nw.record(2)", {"v": "vault", "w": "beta_box"})
        if kind == "steal_account":
            s.misbehave(shard, kind, target="carol")
            return
        s.misbehave(shard, kind)  # type: ignore[arg-type]

    return simulate(build)


@pytest.mark.parametrize(
    ("kind", "shard"),
    [("overmint", "acme/0"), ("leak_state", "acme/0"), ("wrong_gas", "acme/0"), ("cross_enclave", "acme/0"), ("steal_account", "P0")],
)
def test_node_and_auditor_agree_on_a_colluding_committees_chain(kind: str, shard: str, tmp_path: Path) -> None:
    run = _colluding(kind, shard)
    steps = _agree(_file(tmp_path, run.genesis, run.blocks), tools_for("real"))
    assert any(outcome != APPLIED for _, _, outcome, _, _ in steps), f"{kind}: the misbehaviour left no trace"


def _inflate_payout(honest: Run) -> list[Block]:
    """The mixed payout moves 50,000 where the script pays 5; the public changes still sum to zero."""
    blocks = honest.blocks
    at = next(i for i, b in enumerate(blocks) if any(isinstance(e, MixedEntry) for e in b.entries))
    entries = list(blocks[at].entries)
    k = next(i for i, e in enumerate(entries) if isinstance(e, MixedEntry))
    entry = entries[k]
    uses = {use.alias: use.account for use in entry.tx.accounts}
    shift = {uses["a"]: -49_995, uses["b"]: 49_995}  # payout(a, b, 5): a pays b
    updates = []
    for u in entry.updates:
        if u.value is None or u.id not in shift:
            updates.append(u)
            continue
        updates.append(ObjectUpdate(id=u.id, value=u.value.with_fields(balance=u.value.fields["balance"] + shift[u.id])))
    entries[k] = replace(entry, updates=tuple(updates))
    blocks[at] = with_entries(blocks[at], entries)
    return blocks


def _tamper_coinbase(honest: Run) -> list[Block]:
    blocks = honest.blocks
    at = next(i for i, b in enumerate(blocks) if b.shard == "P0")
    blocks[at] = Block(header=replace(blocks[at].header, coinbase=honest.genesis.params.block_reward * 3), entries=blocks[at].entries, qc=())
    return blocks


def _tamper_enclave_coinbase(honest: Run) -> list[Block]:
    blocks = honest.blocks
    at = max(i for i, b in enumerate(blocks) if b.shard == "acme/0")
    blocks[at] = Block(header=replace(blocks[at].header, coinbase=honest.genesis.params.block_reward * 3), entries=blocks[at].entries, qc=())
    return blocks


def _cut_quorum(honest: Run) -> list[Block]:
    blocks = relink(honest.world, honest.genesis, honest.blocks)
    at = len(blocks) // 2
    blocks[at] = Block(header=blocks[at].header, entries=blocks[at].entries, qc=blocks[at].qc[:1])
    return blocks


@pytest.mark.parametrize("tamper", [_inflate_payout, _tamper_coinbase, _tamper_enclave_coinbase, _cut_quorum], ids=lambda f: f.__name__.strip("_"))
def test_node_and_auditor_agree_on_re_signed_rule_breaking_chains(tamper, honest: Run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocks = tamper(honest)
    if tamper is not _cut_quorum:
        blocks = relink(honest.world, honest.genesis, blocks)
    steps = _agree(_file(tmp_path, honest.genesis, blocks), tools_for("real"))
    assert any(outcome != APPLIED for _, _, outcome, _, _ in steps)
