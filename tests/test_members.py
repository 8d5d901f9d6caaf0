"""The members committee model: the simulator runs the node's consensus machine for every member.

Every scenario of the library runs in ``members`` mode and is judged as its
``tests/test_scenarios.py`` entry promises; one member's faults (crash, a split
committee, silence, equivocation, a lie) cost rounds or time but never a
block, a transaction or well-formedness.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_scenarios import CASES, SCENARIOS

from sagachain.audit.auditor import audit_chain
from sagachain.core.chainfile import read_chain
from sagachain.errors import InputError
from sagachain.sim.load import run_scenario
from shards.tools import tools_for


def _run(path: Path, out: Path, settings: dict[str, str], committees: str | None = "members") -> tuple[dict[str, Any], Any]:
    run_scenario(path, seed=1, out=out, settings=settings, plots=False, committees=committees)
    results = json.loads((out / "results.json").read_text())
    return results, audit_chain(read_chain(out / "chain.sgc"), tools_for(results["crypto"]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_scenario_runs_on_real_committees_and_audits_as_promised(case: str, tmp_path: Path) -> None:
    expect = CASES[case]
    results, report = _run(SCENARIOS / f"{case.split('/')[0]}.py", tmp_path, dict(expect.settings))
    consensus = results["metrics"]["consensus"]
    assert consensus["model"] == "members" and consensus["messages"] > 0
    assert not consensus["forks"], "no two members decide different blocks at one height"
    broken = {v.rule for v in report.violations}
    assert broken == set(expect.rules), [f"{v.rule} {v.reason}" for v in report.violations[:5]]
    if expect.ignored:
        assert report.ignored
    assert all(block.shard.startswith(expect.ignored_prefix) for block in report.ignored)
    metrics = results["metrics"]
    assert set(expect.rejected) <= set(metrics["rejected_transactions"])
    if expect.all_commit:
        assert sum(metrics["committed"].values()) == metrics["submitted"]


def _faults(tmp_path: Path, **settings: str) -> tuple[dict[str, Any], Any, list[Any]]:
    results, report = _run(SCENARIOS / "member_faults.py", tmp_path, settings, committees=None)
    blocks = read_chain(tmp_path / "chain.sgc").blocks
    assert report.ok, [f"{v.rule} {v.reason}" for v in report.violations[:5]]
    metrics = results["metrics"]
    assert sum(metrics["committed"].values()) == metrics["submitted"], "a member's fault loses no transaction"
    assert not metrics["consensus"]["forks"]
    return metrics, report, blocks


def _p0_times(blocks: list[Any]) -> list[int]:
    return sorted(b.header.time for b in blocks if b.shard == "P0")


def test_without_faults_most_heights_decide_in_their_first_round(tmp_path: Path) -> None:
    metrics, _, _ = _faults(tmp_path, fault="none")
    rounds = metrics["consensus"]["decided_by_round"]
    assert rounds["0"] > sum(n for r, n in rounds.items() if r != "0")
    assert metrics["consensus"]["evidence"] == 0 and metrics["consensus"]["equivocations"] == 0


@pytest.mark.parametrize("nodes, stalls", [(1, False), (2, True)])
def test_a_crashed_member_stops_and_a_committee_without_quorum_waits_for_its_restart(nodes: int, stalls: bool, tmp_path: Path) -> None:
    _, _, blocks = _faults(tmp_path, fault="crash", nodes=str(nodes), at="4000", until="8000")
    during = [t for t in _p0_times(blocks) if 4_300 <= t < 8_000]  # a block already voted on may still finish
    assert (not during) == stalls, during
    assert any(t >= 8_000 for t in _p0_times(blocks)), "the restarted members catch up and the shard goes on"


def test_a_committee_split_in_two_halves_decides_nothing_until_the_heal(tmp_path: Path) -> None:
    metrics, _, blocks = _faults(tmp_path, fault="split", at="4000", until="8000")
    assert not [t for t in _p0_times(blocks) if 4_300 <= t < 8_000]
    assert any(t >= 8_000 for t in _p0_times(blocks))
    assert metrics["consensus"]["messages_lost"] > 0


def test_a_silent_member_costs_rounds_not_blocks(tmp_path: Path) -> None:
    _, _, blocks = _faults(tmp_path, fault="silent", at_height="3", count="6")
    committee = next(r.committee for r in read_chain(tmp_path / "chain.sgc").genesis.shards if r.id == "P0")
    silent = committee[3 % len(committee)]  # the round-0 proposer of height 3 (CommitteeMachine.proposer)
    p0 = {b.height: b for b in blocks if b.shard == "P0"}
    quiet = [p0[h] for h in range(3, 9) if h in p0]
    assert len(quiet) >= 4
    for block in quiet:  # neither proposed nor signed by it: the others' quorum decided without it
        assert block.header.producer != silent and silent not in {v.signer for v in block.qc}
    assert any(b.header.producer == silent for h, b in p0.items() if h >= 9), "it proposes again once it speaks"


def test_an_equivocating_proposer_is_caught_and_one_block_is_decided_per_height(tmp_path: Path) -> None:
    metrics, _, blocks = _faults(tmp_path, fault="equivocate", at_height="3", count="4")
    consensus = metrics["consensus"]
    assert consensus["equivocations"] >= 1
    assert consensus["evidence"] >= 1, "honest members hold both signed proposals"
    heights = [b.height for b in blocks if b.shard == "P0"]
    assert heights == sorted(set(heights)) == list(range(1, len(heights) + 1))


@pytest.mark.parametrize("case", ["lying_proposer/forge_state", "lying_proposer/inflate_payout", "lying_proposer/wrong_log"])
def test_a_lying_member_is_refused_by_the_re_executing_members(case: str, tmp_path: Path) -> None:
    results, report = _run(SCENARIOS / "lying_proposer.py", tmp_path, dict(CASES[case].settings))
    metrics = results["metrics"]
    assert report.ok and sum(metrics["committed"].values()) == metrics["submitted"]
    assert metrics["lies"]["told"] >= 1 and metrics["lies"]["told"] == metrics["lies"]["refused"]
    assert metrics["rejected_blocks"].get("TX-6", 0) >= metrics["lies"]["told"]
    assert metrics["consensus"]["nil_prevotes_for_refused_blocks"] >= metrics["lies"]["told"]


def test_members_mode_is_deterministic(tmp_path: Path) -> None:
    first, _ = _run(SCENARIOS / "member_faults.py", tmp_path / "a", {"fault": "equivocate"}, committees=None)
    second, _ = _run(SCENARIOS / "member_faults.py", tmp_path / "b", {"fault": "equivocate"}, committees=None)
    assert first["chain"]["blake3"] == second["chain"]["blake3"]


def test_a_member_fault_needs_the_members_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="members"):
        _run(SCENARIOS / "member_faults.py", tmp_path, {"fault": "silent"}, committees="modelled")
