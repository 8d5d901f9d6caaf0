"""docs/RULES.md stays true to the code: every catalogued rule has a row, and every
test and implementation the doc names exists.

Reference forms the doc uses (both inside backticks):

- ``tests/test_x.py::test_name``: a test function in that file;
- ``path/to/module.py: name`` or ``path/to/module.py: Class.method``: a function
  or class (each dotted part) defined in that file.

The files are read as text; nothing but the rule catalogue is imported.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sagachain.core.rules import RULE_TEXT

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "RULES.md"
SPEC = ROOT.parent / "shared" / "SPEC.md"

RULE_ID = re.compile(r"\b(?:OBJ|CLS|RT|SH|L2L|TX|MINT|GAS|CMI|MEM|MBX|REG|LIFE|FMT)-\d+\b")
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
IMPL_REF = re.compile(r"`((?!tests/)[\w/]+\.py): ([A-Za-z_][\w.]*)`")
ROW_ID = re.compile(r"^\|\s*\*\*((?:[A-Z0-9]+)-\d+)\*\*\s*\|", re.M)


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _defines(text: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", text, re.M) is not None


def test_every_catalogued_rule_has_a_row() -> None:
    rows = set(ROW_ID.findall(_doc()))
    missing = sorted(set(RULE_TEXT) - rows)
    assert not missing, f"rules of the catalogue without a row in docs/RULES.md: {missing}"


def test_every_spec_rule_has_a_row() -> None:
    if not SPEC.is_file():
        pytest.skip(f"{SPEC} is not present")
    rows = set(ROW_ID.findall(_doc()))
    missing = sorted(set(RULE_ID.findall(SPEC.read_text(encoding="utf-8"))) - rows)
    assert not missing, f"SPEC.md rules without a row in docs/RULES.md: {missing}"


def test_named_tests_exist() -> None:
    refs = sorted(set(TEST_REF.findall(_doc())))
    assert len(refs) >= 30, "the doc should name the tests that cover its rules"
    broken = []
    for path, name in refs:
        file = ROOT / path
        if not file.is_file() or not re.search(rf"^\s*def {re.escape(name)}\(", file.read_text(encoding="utf-8"), re.M):
            broken.append(f"{path}::{name}")
    assert not broken, f"docs/RULES.md names tests that do not exist: {broken}"


def test_named_implementations_exist() -> None:
    refs = sorted(set(IMPL_REF.findall(_doc())))
    assert len(refs) >= 40, "the doc should name where its rules are implemented"
    broken = []
    for path, name in refs:
        file = ROOT / path
        if not file.is_file():
            broken.append(f"{path} (no such file)")
            continue
        text = file.read_text(encoding="utf-8")
        missing = [part for part in name.split(".") if not _defines(text, part)]
        if missing:
            broken.append(f"{path}: {name} (no def/class {', '.join(missing)})")
    assert not broken, f"docs/RULES.md names implementations that do not exist: {broken}"


def test_reference_patterns_catch_mistakes() -> None:
    """The checks above would notice a wrong name (guards against a regex matching nothing)."""
    sample = "`tests/test_runtime.py::test_no_such_test` and `runtimes/cmi.py: no_such_function`"
    assert TEST_REF.findall(sample) == [("tests/test_runtime.py", "test_no_such_test")]
    assert IMPL_REF.findall(sample) == [("runtimes/cmi.py", "no_such_function")]
    assert not _defines((ROOT / "runtimes" / "cmi.py").read_text(encoding="utf-8"), "no_such_function")
