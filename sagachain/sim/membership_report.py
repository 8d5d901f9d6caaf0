"""What membership churn cost, per epoch change (MEM-3): the records, their JSON and a table.

One :class:`EpochChange` per roster change that started an epoch: the key
material's size on chain, and when every member held the new key (or how many
did not, and how many removed nodes did; both must be 0). The figures are
deterministic, so they go to ``results.json`` under ``metrics.membership``
(docs/RESULTS.md) and a sweep can read them by path (docs/SWEEPS.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True)
class EpochChange:
    """One epoch started by a final roster change.

    ``action`` is the scenario's (join, invite, remove, ...), ``method`` the roster
    method whose transaction started the epoch (approve, accept, join, remove,
    block, rotate) and ``change`` what it did to the members (add, remove, rotate).
    Times are virtual ms: ``built_ms`` when the committer started sealing the key
    material, ``submitted_ms`` when the transaction starting the epoch was sent,
    ``final_ms`` when its block was final, ``all_hold_ms`` when the last member had
    received that block and opened its key (None when a member never could).
    """

    enclave: str
    strategy: str
    action: str
    method: str
    change: str
    node: str
    epoch: int
    members: int
    boxes: int
    sealed_bytes: int
    rekey_bytes: int
    entry_bytes: int
    requested_ms: int
    built_ms: int
    submitted_ms: int
    final_ms: int
    all_hold_ms: int | None
    missing: int  # members after the change that did not get the key: must be 0
    leaked: int  # removed nodes that did get it: must be 0

    @property
    def hold_ms(self) -> int | None:
        """From the final block until every member holds the key."""
        return None if self.all_hold_ms is None else self.all_hold_ms - self.final_ms

    @property
    def rekey_ms(self) -> int | None:
        """From the committer starting to seal until every member holds the key."""
        return None if self.all_hold_ms is None else self.all_hold_ms - self.built_ms

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "hold_ms": self.hold_ms, "rekey_ms": self.rekey_ms}


@dataclass(frozen=True)
class Refusal:
    """A roster transaction the chain refused or committed as failed, with the rule that said no."""

    enclave: str
    action: str
    method: str
    node: str
    rule: str
    error: str
    t_ms: int


@dataclass
class MembershipLog:
    changes: list[EpochChange] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # actions with nobody to act on
    actions: int = 0  # roster actions that came due
    pending: int = 0  # actions waiting or under way when the run ended

    def to_json(self) -> dict[str, Any]:
        by_strategy: dict[str, list[EpochChange]] = {}
        by_change: dict[str, list[EpochChange]] = {}
        for c in self.changes:
            by_strategy.setdefault(c.strategy, []).append(c)
            by_change.setdefault(c.change, []).append(c)
        return {
            "actions": self.actions,
            "pending": self.pending,
            "summary": _figures(self.changes),
            "by_strategy": {k: _figures(v) for k, v in sorted(by_strategy.items())},
            "by_change": {k: _figures(v) for k, v in sorted(by_change.items())},
            "changes": [c.to_json() for c in self.changes],
            "refused": [asdict(r) for r in self.refused],
            "skipped": self.skipped,
        }


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _figures(changes: list[EpochChange]) -> dict[str, Any]:
    holds = [c.hold_ms for c in changes if c.hold_ms is not None]
    rekeys = [c.rekey_ms for c in changes if c.rekey_ms is not None]
    return {
        "changes": len(changes),
        "members_mean": _mean([c.members for c in changes]),
        "boxes_mean": _mean([c.boxes for c in changes]),
        "sealed_bytes_mean": _mean([c.sealed_bytes for c in changes]),
        "sealed_bytes_max": max((c.sealed_bytes for c in changes), default=None),
        "rekey_bytes_mean": _mean([c.rekey_bytes for c in changes]),
        "entry_bytes_mean": _mean([c.entry_bytes for c in changes]),
        "hold_ms_mean": _mean(holds),
        "hold_ms_max": max(holds, default=None),
        "rekey_ms_mean": _mean(rekeys),
        "missing": sum(c.missing for c in changes),
        "leaked": sum(c.leaked for c in changes),
    }


def membership_table(section: dict[str, Any]) -> Table | None:
    """The run summary's table of epoch changes by enclave and change; None when there were none."""
    from rich.table import Table

    if not section.get("changes") and not section.get("refused"):
        return None
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    strategies: dict[str, str] = {}
    for c in section["changes"]:
        groups.setdefault((c["enclave"], c["change"]), []).append(c)
        strategies[c["enclave"]] = c["strategy"]
    which = ", ".join(f"{e} {s}" for e, s in sorted(strategies.items()))
    table = Table(title=f"epoch changes (MEM-3) of {which}: mean per change", show_header=True)
    several = len(strategies) > 1
    for name in ("change", "n", "members", "sealed B", "chain B", "hold ms", "seal→hold", "lost/leak"):
        table.add_column(name, justify="left" if name == "change" else "right", no_wrap=True)
    for (enclave, change), rows in sorted(groups.items()):
        f = _figures([EpochChange(**{k: v for k, v in r.items() if k not in ("hold_ms", "rekey_ms")}) for r in rows])
        table.add_row(f"{enclave} {change}" if several else change, str(len(rows)), _num(f["members_mean"]), _num(f["sealed_bytes_mean"]), _num(f["entry_bytes_mean"]),
                      _num(f["hold_ms_mean"]), _num(f["rekey_ms_mean"]), f"{f['missing']}/{f['leaked']}")
    table.caption = ("chain B: the roster transaction's block entry; ms until every member holds the key, from the final "
                     "block (hold) and from the committer starting to seal; lost: members without it, leak: removed nodes with it")
    refused = section.get("refused", [])
    if refused:
        rules = sorted({r["rule"] or "refused" for r in refused})
        table.caption += f". {len(refused)} roster transaction(s) failed ({', '.join(rules)}): see metrics.membership.refused"
    return table


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}"
