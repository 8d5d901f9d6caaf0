"""``sagachain fuzz``: seeded random runs of the real consensus under faults, and what a broken one looks like.

A few dozen seeds run here (CI); the README quotes a longer sweep. The
mutation test breaks locking in ``CommitteeMachine`` (a member prevotes any
valid proposal, whatever it is locked on) and shows that the fuzzer finds a
safety failure within the seeds, names the seed and prints the replay
command: the checks can fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sagachain.cli import main
from sagachain.sim.fuzz import run_seed
from shards import committee as cm

MUTANT_SEED = 226  # a seed whose equivocating member splits a committee that no longer honours its locks


def test_two_dozen_seeds_pass_every_check(tmp_path: Path) -> None:
    report = tmp_path / "fuzz.json"
    result = CliRunner().invoke(main, ["fuzz", "--seeds", "24", "--quiet", "--report", str(report)])
    assert result.exit_code == 0, result.output
    totals = json.loads(report.read_text())
    assert totals["seeds"] == 24 and totals["failed"] == []
    assert totals["blocks"] > 200 and totals["consensus_messages"] > totals["blocks"]
    assert totals["members_caught_equivocating"] > 0, "the seeds include equivocating members"
    assert any(int(r) > 0 for r in totals["decided_by_round"]), "the seeds include faults that cost rounds"


def test_a_seed_replays_exactly() -> None:
    first, second = run_seed(7), run_seed(7)
    assert (first.blocks, first.txs, first.messages, first.rounds) == (second.blocks, second.txs, second.messages, second.rounds)


def test_a_committee_that_ignores_its_locks_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_seed(MUTANT_SEED).ok
    monkeypatch.setattr(cm.CommitteeMachine, "_is_locked", lambda self, block: True)  # prevote whatever is proposed
    broken = run_seed(MUTANT_SEED)
    assert any(f.startswith("safety:") for f in broken.failures), broken.failures
    result = CliRunner().invoke(main, ["fuzz", "--seeds", "1", "--start", str(MUTANT_SEED), "--quiet"])
    assert result.exit_code == 1
    assert f"seed {MUTANT_SEED} failed" in result.output and f"sagachain fuzz --seeds 1 --start {MUTANT_SEED}" in result.output
