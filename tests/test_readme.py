"""The README's promises: its scenario example runs and audits clean; the quickstart is deterministic."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from sagachain.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_readme_scenario_example_runs_and_audits_clean(tmp_path: Path) -> None:
    block = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None, "the README shows a scenario example"
    scenario = tmp_path / "example.py"
    scenario.write_text(block.group(1))
    runner = CliRunner()
    ran = runner.invoke(main, ["run", str(scenario), "--seed", "3", "--out", str(tmp_path / "out"), "--quiet"])
    assert ran.exit_code == 0, ran.output
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    assert summary["metrics"]["committed"] == {"open": 1}
    audited = runner.invoke(main, ["audit", str(tmp_path / "out" / "chain.sgc")])
    assert audited.exit_code == 0, audited.output


def test_quickstart_twice_gives_the_same_chain_file(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("one", "two"):
        ran = runner.invoke(main, ["run", str(ROOT / "scenarios" / "quickstart.py"), "--seed", "1", "--out", str(tmp_path / name), "--quiet"])
        assert ran.exit_code == 0, ran.output
    assert (tmp_path / "one" / "chain.sgc").read_bytes() == (tmp_path / "two" / "chain.sgc").read_bytes()
