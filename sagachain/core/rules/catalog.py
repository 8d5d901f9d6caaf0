"""Violations, and the catalogue of rules with what each one checks.

A check function is registered with the rule id it enforces and the scope it
runs at (the genesis, a block, or a transaction entry). The auditor's table
lists the catalogue; block validation in the simulator runs the same checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

GENESIS = "genesis"
BLOCK = "block"
ENTRY = "entry"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule, located as precisely as the data allows."""

    rule: str
    reason: str
    shard: str | None = None
    height: int | None = None
    entry: int | None = None
    tx: bytes | None = None

    def where(self) -> str:
        parts = []
        if self.shard is not None:
            parts.append(f"{self.shard}#{self.height}")
        if self.entry is not None:
            parts.append(f"entry {self.entry}")
        if self.tx is not None:
            parts.append(f"tx {self.tx.hex()[:12]}")
        return " ".join(parts) or "genesis"


@dataclass(frozen=True, slots=True)
class Check:
    rule: str
    text: str
    scope: str
    func: Callable[..., Iterator[Violation]]
    applies: tuple[type, ...]


CHECKS: list[Check] = []
RULE_TEXT: dict[str, str] = {}


def rule(
    rule_id: str, text: str, scope: str, applies: tuple[type, ...] = ()
) -> Callable[[Callable[..., Iterator[Violation]]], Callable[..., Iterator[Violation]]]:
    """Register a check function for ``rule_id``; ``text`` says what it checks.

    An entry check runs only on the entry types in ``applies``, so the audit
    can count exactly the entries each rule looked at.
    """

    def register(func: Callable[..., Iterator[Violation]]) -> Callable[..., Iterator[Violation]]:
        CHECKS.append(Check(rule_id, text, scope, func, applies))
        RULE_TEXT.setdefault(rule_id, text)
        return func

    return register


def checks(scope: str) -> list[Check]:
    return [c for c in CHECKS if c.scope == scope]


def describe(rule_id: str, text: str) -> None:
    """Name a rule checked outside the registered functions (reader, termination)."""
    RULE_TEXT.setdefault(rule_id, text)

