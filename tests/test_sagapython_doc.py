"""docs/SAGAPYTHON.md is true to the runtime.

Three checks:

1. every name in ``runtimes.subset.BUILTINS`` and every field of
   ``GasSchedule`` appears in the document (as inline code, e.g. `put`);
2. every fenced block tagged ``sagapython-script`` is accepted by
   ``runtimes.check_script``, and every block tagged ``sagapython-class`` by
   ``runtimes.check_class_source``;
3. every block tagged ``sagapython-refused`` is refused by ``check_script``
   with a TX-1 ``ScriptError`` whose message the document states.

Convention for refused blocks (also stated in section 3 of the document): the
first non-blank line after the closing fence reads

    Refused: `line N: <construct>`            (at least the line and construct)
    Refused: `line N: <construct>: not allowed in SagaPython; <hint>`   (or all of it)

The quoted text must equal the error's message (``ScriptError.message``,
i.e. without the ``[TX-1]`` prefix), or be a prefix of it that ends right
before ``": "``, so ``line 2: While`` matches but ``line 2: Wh`` does not.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "SAGAPYTHON.md"
if str(ROOT) not in sys.path:  # the package is not installed in .venv; run from the checkout
    sys.path.insert(0, str(ROOT))

from runtimes import GasSchedule, check_class_source, check_script  # noqa: E402
from runtimes.subset import BUILTINS  # noqa: E402
from sagachain.errors import ScriptError  # noqa: E402

TEXT = DOC.read_text(encoding="utf-8")
LINES = TEXT.splitlines()
_REFUSED_LINE = re.compile(r"^Refused: `(line (\d+): .+)`\s*$")


def _blocks() -> list[tuple[str, str, int]]:
    """(tag, source, line after the closing fence) for every fenced block of the document."""
    blocks = []
    i = 0
    while i < len(LINES):
        line = LINES[i]
        if line.startswith("```") and line.strip() != "```":
            tag = line[3:].strip()
            body = []
            i += 1
            while i < len(LINES) and LINES[i].strip() != "```":
                body.append(LINES[i])
                i += 1
            assert i < len(LINES), f"unclosed ```{tag} block in {DOC.name}"
            blocks.append((tag, "\n".join(body) + "\n", i + 1))
        i += 1
    return blocks


BLOCKS = _blocks()


def _tagged(tag: str) -> list[tuple[str, int]]:
    return [(source, after) for t, source, after in BLOCKS if t == tag]


def _expected_after(after: int) -> str:
    """The quoted message on the first non-blank line after a refused block."""
    rest = [line for line in LINES[after:] if line.strip()]
    assert rest, "a sagapython-refused block must be followed by a `Refused: ...` line"
    match = _REFUSED_LINE.match(rest[0].strip())
    assert match, f"expected a line like Refused: `line N: construct` after the block, got {rest[0]!r}"
    return match.group(1)


# -- 1. names -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_is_documented(name: str) -> None:
    assert f"`{name}(" in TEXT or f"`{name}`" in TEXT, f"built-in {name} is not documented in {DOC.name}"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(GasSchedule)])
def test_every_gas_field_is_documented_with_its_default(field: str) -> None:
    default = getattr(GasSchedule(), field)
    row = re.search(rf"^\| `{field}` \| {default} \|", TEXT, re.M)
    assert row, f"GasSchedule.{field} (default {default}) has no row in the gas table of {DOC.name}"


# -- 2. accepted blocks -------------------------------------------------------


def test_the_document_has_examples_of_every_kind() -> None:
    tags = [t for t, _, _ in BLOCKS]
    assert tags.count("sagapython-script") >= 3
    assert tags.count("sagapython-class") >= 2
    assert tags.count("sagapython-refused") >= 3


@pytest.mark.parametrize(("source", "after"), _tagged("sagapython-script"))
def test_script_blocks_are_accepted(source: str, after: int) -> None:
    check_script(source)


@pytest.mark.parametrize(("source", "after"), _tagged("sagapython-class"))
def test_class_blocks_are_accepted(source: str, after: int) -> None:
    check_class_source(source)


# -- 3. refused blocks --------------------------------------------------------


@pytest.mark.parametrize(("source", "after"), _tagged("sagapython-refused"))
def test_refused_blocks_are_refused_as_documented(source: str, after: int) -> None:
    expected = _expected_after(after)
    with pytest.raises(ScriptError) as info:
        check_script(source)
    error = info.value
    assert error.rule == "TX-1"
    assert error.message.startswith(f"line {error.line}: {error.construct}: not allowed in SagaPython; ")
    assert error.message == expected or error.message.startswith(expected + ": "), (
        f"documented {expected!r}, runtime says {error.message!r}"
    )
    assert expected.startswith(f"line {error.line}: {error.construct}")
