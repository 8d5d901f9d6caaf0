"""The scenario library: every file in scenarios/ runs, writes its results and gets the audit verdict it promises.

Each scenario is run small (its own parameters shrink it) with seed 1, then
its chain is audited with the public rules. Adversarial scenarios must be
judged with exactly the violations their docstring names; the others must be
well-formed. A scenario file added to scenarios/ without an entry here fails
``test_every_scenario_has_an_expectation``.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sagachain.audit.auditor import audit_chain
from sagachain.core.chainfile import read_chain
from sagachain.sim.load import run_scenario
from shards.tools import tools_for

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@dataclass(frozen=True)
class Expect:
    settings: dict[str, str] = field(default_factory=dict)
    rules: frozenset[str] = frozenset()  # violations the audit must name (empty: well-formed)
    ignored: bool = False  # whether the audit must list ignored blocks
    ignored_prefix: str = "acme"  # every ignored block belongs to these shards
    rejected: frozenset[str] = frozenset()  # rules that must appear in metrics.rejected_transactions
    all_commit: bool = False  # every submitted transaction commits


CASES: dict[str, Expect] = {
    "quickstart": Expect({"transfers": "10"}, all_commit=True),
    "scaling": Expect({"duration": "30000", "load_ms": "16000", "peak": "16", "cooldown_ms": "2000", "accounts": "20"}, all_commit=True),
    "placement/lookahead": Expect({"strategy": "lookahead", "transactions": "60", "load_ms": "8000", "duration": "20000"}),
    "placement/hash": Expect({"strategy": "hash", "transactions": "60", "load_ms": "8000", "duration": "20000"}),
    "placement/affinity": Expect({"strategy": "affinity", "transactions": "60", "load_ms": "8000", "duration": "20000"}),
    "gas_fairness": Expect({"enclave_txs": "10", "open_txs": "30", "load_ms": "6000", "duration": "15000"}),
    "overmint": Expect({"transfers": "20", "enclave_txs": "8", "at_height": "3", "duration": "10000"}, rules=frozenset({"MINT-3"}), ignored=True),
    "breakaway": Expect({"transfers": "20", "enclave_txs": "10", "duration": "12000", "at": "5000"}),
    "invalid_l2l": Expect(
        {"transfers": "16", "enclave_txs": "8", "duration": "10000", "at_height": "3"},
        rules=frozenset({"L2L-1", "L2L-2", "L2L-3"}),
        rejected=frozenset({"CMI-4"}),
    ),
    "cls3_policy/strict": Expect({"policy": "strict", "transfers": "10", "enclave_txs": "4", "duration": "9000"}, rejected=frozenset({"CLS-3"}), all_commit=True),
    "cls3_policy/collude": Expect({"policy": "strict", "collude": "true", "transfers": "10", "enclave_txs": "4", "duration": "9000"}, rules=frozenset({"CLS-3", "CMI-2"})),
    "cls3_policy/permissive": Expect({"policy": "permissive", "transfers": "10", "enclave_txs": "4", "duration": "9000"}, all_commit=True),
    "partition": Expect(
        {"transfers": "40", "enclave_txs": "8", "load_ms": "10000", "split_at": "2000", "heal_at": "4000", "crash_at": "6000", "restart_at": "8000", "duration": "25000"},
        all_commit=True,
    ),
    "leakage/light": Expect({"workload": "light", "enclave_txs": "10", "open_txs": "20", "duration": "12000"}, all_commit=True),
    "leakage/heavy": Expect({"workload": "heavy", "enclave_txs": "10", "open_txs": "20", "duration": "12000"}, all_commit=True),
    "regions": Expect({"transfers": "40", "enclave_txs": "8", "load_ms": "8000", "duration": "20000"}),
    "withholding": Expect({"transfers": "20", "enclave_txs": "10", "duration": "15000"}),
    "large": Expect({"accounts": "2000", "shards": "8", "nodes": "4", "transactions": "300", "load_ms": "5000", "duration": "20000"}),
    "mailbox": Expect({"messages": "20", "duration": "24000"}),
    "churn/seal-to-all": Expect({"size": "8", "strategy": "seal-to-all", "changes": "6"}, all_commit=True),
    "churn/key-tree": Expect({"size": "8", "strategy": "key-tree", "changes": "6"}, all_commit=True),
    "lying_proposer/forge_state": Expect({"lie": "forge_state", "duration": "12000", "transfers": "10", "records": "6", "payouts": "6"}, all_commit=True),
    "lying_proposer/inflate_payout": Expect({"lie": "inflate_payout", "duration": "12000", "transfers": "10", "records": "6", "payouts": "6"}, all_commit=True),
    "lying_proposer/wrong_log": Expect({"lie": "wrong_log", "duration": "12000", "transfers": "10", "records": "6", "payouts": "6"}, all_commit=True),
    "member_faults": Expect({"fault": "equivocate", "duration": "18000", "transfers": "30", "enclave_txs": "6", "load_ms": "8000"}, all_commit=True),
    "regions/fanout": Expect({"transfers": "40", "enclave_txs": "8", "load_ms": "8000", "duration": "20000", "fanout": "2", "single": "false"}),
}


def _files() -> list[Path]:
    return sorted(SCENARIOS.glob("*.py"))


def test_every_scenario_has_an_expectation() -> None:
    covered = {case.split("/")[0] for case in CASES}
    assert {p.stem for p in _files()} <= covered, "add the new scenario to CASES in tests/test_scenarios.py"


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.stem)
def test_scenario_has_a_docstring_with_its_question(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and "Question" in doc, f"{path.name} must open with a docstring that states its Question"


def _run(case: str, out: Path) -> tuple[dict, object]:
    expect = CASES[case]
    path = SCENARIOS / f"{case.split('/')[0]}.py"
    run_scenario(path, seed=1, out=out, settings=dict(expect.settings), plots=False)
    results = json.loads((out / "results.json").read_text())
    report = audit_chain(read_chain(out / "chain.sgc"), tools_for(results["crypto"]))
    return results, report


@pytest.mark.parametrize("case", sorted(CASES))
def test_scenario_runs_and_audits_as_promised(case: str, tmp_path: Path) -> None:
    expect = CASES[case]
    results, report = _run(case, tmp_path)
    assert (tmp_path / "results.json").is_file() and (tmp_path / "chain.sgc").is_file()
    assert results["parameters"], "the scenario reads its knobs with s.param"
    broken = {v.rule for v in report.violations}  # type: ignore[attr-defined]
    if expect.rules:
        assert not report.ok  # type: ignore[attr-defined]
        assert broken == set(expect.rules), [f"{v.rule} {v.reason}" for v in report.violations[:5]]  # type: ignore[attr-defined]
    else:
        assert report.ok, [f"{v.rule} {v.reason}" for v in report.violations[:5]]  # type: ignore[attr-defined]
    ignored = report.ignored  # type: ignore[attr-defined]
    if expect.ignored:
        assert ignored
    assert all(block.shard.startswith(expect.ignored_prefix) for block in ignored)
    metrics = results["metrics"]
    assert set(expect.rejected) <= set(metrics["rejected_transactions"])
    if expect.all_commit:
        assert sum(metrics["committed"].values()) == metrics["submitted"]


def test_adversarial_scenarios_report_their_ends(tmp_path: Path) -> None:
    overmint, report = _run("overmint", tmp_path / "overmint")
    assert "acme" in overmint["metrics"]["terminated"]
    assert "terminated" in report.enclave_status["acme"]  # type: ignore[attr-defined]
    breakaway, report = _run("breakaway", tmp_path / "breakaway")
    assert "acme" in breakaway["metrics"]["broken_away"]
    assert "broken" in report.enclave_status["acme"].replace("_", " ").replace("-", " ").lower()  # type: ignore[attr-defined]


def test_scaling_adds_shards_under_load(tmp_path: Path) -> None:
    results, _ = _run("scaling", tmp_path)
    changes = results["metrics"]["shard_changes"]
    assert any(c["change"] == "add" for c in changes)


def test_permissive_deploy_is_bound_to_the_enclave(tmp_path: Path) -> None:
    from sagachain.core.block import DeployEntry

    _run("cls3_policy/permissive", tmp_path)
    chain = read_chain(tmp_path / "chain.sgc")
    deploys = [e for b in chain.blocks for e in b.entries if isinstance(e, DeployEntry)]
    assert [(d.cls.name, d.cls.enclave) for d in deploys] == [("Leaky", "acme")]


@pytest.mark.parametrize("case", ["gas_fairness", "regions/fanout"])
def test_scenarios_are_deterministic(case: str, tmp_path: Path) -> None:
    first, _ = _run(case, tmp_path / "a")
    second, _ = _run(case, tmp_path / "b")
    assert first["chain"]["blake3"] == second["chain"]["blake3"]


def test_withholding_is_noticed_by_the_other_shard_only(tmp_path: Path) -> None:
    results, report = _run("withholding", tmp_path)
    held = results["metrics"]["withholding"]
    assert held["withheld_blocks"] >= 1 and held["noticed_by"] == ["acme/1"]
    assert report.ok  # type: ignore[attr-defined]  # nothing public shows it

