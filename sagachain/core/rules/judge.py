"""Judging blocks: run every rule's checks, apply what is honoured.

This is the one place that decides what a block does to the public ledger, for
the simulator's validators and for the auditor alike:

- a block of a terminated or broken-away enclave is ignored (MINT-4, LIFE-1),
  and so is every block of a halted shard;
- a block of an enclave shard that mints more than MINT-3 allows is ignored
  and terminates its enclave (MINT-4);
- any other block is checked entry by entry, each entry against the state its
  predecessors left. A block that breaks a rule is refused: nothing of it is
  applied, and its shard halts, since every later block of the shard builds
  on it. A block that breaks none is applied.

A node's chain view, the simulator and the auditor all call ``judge_block``,
so they cannot disagree on a chain (``tests/test_readers_agree.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sagachain.core.block import Block, OpenEntry, EnclaveEntry, MixedEntry
from sagachain.core.ledger import TERMINATED, ChainState
from sagachain.core.rules.catalog import BLOCK, ENTRY, GENESIS, Violation, checks, describe
from sagachain.core.rules.tools import Tools

TX_TYPES = (OpenEntry, EnclaveEntry, MixedEntry)

describe("MINT-5", "circulating balances plus all fees paid equal the genesis supply after every block")
describe("MINT-4", "blocks of a terminated enclave are ignored; an over-minting enclave block terminates its enclave")


@dataclass
class RuleCount:
    blocks: int = 0
    txs: int = 0
    violations: int = 0


@dataclass
class Coverage:
    """How many blocks and transactions each rule looked at, and what it found."""

    counts: dict[str, RuleCount] = field(default_factory=dict)

    def count(self, rule: str) -> RuleCount:
        return self.counts.setdefault(rule, RuleCount())

    def record(self, violations: list[Violation]) -> None:
        for v in violations:
            self.count(v.rule).violations += 1


APPLIED = "applied"
REFUSED = "refused"
IGNORED = "ignored"


@dataclass(frozen=True)
class Verdict:
    """What one block did to the ledger, as every reader must see it.

    ``applied``: honoured, its effects are in the state. ``refused``: it broke
    a rule (``violations``), nothing of it was applied and its shard halts,
    unless it is not ``final``: without a valid quorum certificate (SH-1) it
    is no block of the chain at all, only bytes someone sent, and changes
    nothing (else anyone could halt a shard or end an enclave by sending a
    forgery). ``ignored``: a block the chain does not honour
    (``ignored_because``): of an ended enclave (MINT-4, LIFE-1), of a halted
    shard, or an over-minting enclave block, which ``terminated`` its enclave.
    """

    violations: list[Violation]
    applied: bool
    ignored_because: str | None = None
    terminated: str | None = None
    final: bool = True

    @property
    def outcome(self) -> str:
        if self.applied:
            return APPLIED
        return IGNORED if self.ignored_because is not None else REFUSED

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(sorted({v.rule for v in self.violations}))

    def summary(self, limit: int = 3) -> str:
        """The verdict in one line, for a log or a receipt."""
        if self.ignored_because is not None:
            return self.ignored_because
        return "; ".join(f"{v.rule}: {v.reason}" for v in self.violations[:limit]) or self.outcome


def check_genesis(state: ChainState, tools: Tools, coverage: Coverage | None = None) -> list[Violation]:
    found: list[Violation] = []
    for check in checks(GENESIS):
        found.extend(check.func(state, tools))
        if coverage is not None:
            coverage.count(check.rule)
    if coverage is not None:
        coverage.record(found)
    return found


def check_and_apply(state: ChainState, block: Block, tools: Tools, coverage: Coverage | None = None) -> list[Violation]:
    """Run block and entry checks while applying the block; return the violations."""
    found: list[Violation] = []
    counted: set[str] = set()
    for check in checks(BLOCK):
        found.extend(check.func(state, block, tools))
        counted.add(check.rule)
    entry_checks = checks(ENTRY)
    for index, entry in enumerate(block.entries):
        is_tx = isinstance(entry, TX_TYPES)
        for check in entry_checks:
            if isinstance(entry, check.applies):
                found.extend(check.func(state, block, index, entry, tools))
                counted.add(check.rule)
                if is_tx and coverage is not None:
                    coverage.count(check.rule).txs += 1
        state.apply_entry(block, index, entry)
    state.finish_block(block)
    if state.circulating + state.tallies.fees != state.supply:
        found.append(
            Violation(
                "MINT-5",
                f"circulating {state.circulating} + fees {state.tallies.fees} != genesis supply {state.supply}",
                block.shard,
                block.height,
            )
        )
    counted.add("MINT-5")
    if coverage is not None:
        for rule_id in counted:
            coverage.count(rule_id).blocks += 1
        coverage.record(found)
    return found


def not_honoured(state: ChainState, block: Block) -> tuple[str, str] | None:
    """``(rule, why)`` when the chain honours no block of ``block``'s shard any more, else None.

    MINT-4 and LIFE-1 for an ended enclave; TX-5 for a halted shard, whose
    later blocks all build on the refused one.
    """
    if block.shard not in state.shards:
        return None  # TX-5 names it
    halted = state.halted.get(block.shard)
    if halted is not None:
        return "TX-5", f"shard {block.shard} halted at height {halted[0]}: {halted[1]}"
    enclave = state.shard_enclave(block.shard)
    if state.enclave_active(enclave):
        return None
    status = state.status[enclave or ""]
    rule = "MINT-4" if status.state == TERMINATED else "LIFE-1"
    since = f" since {status.since[0]}#{status.since[1]}" if status.since else ""
    return rule, f"enclave {enclave} is {status.state}{since} ({rule})"


def judge_block(
    state: ChainState,
    block: Block,
    tools: Tools,
    coverage: Coverage | None = None,
    *,
    proposal: bool = False,
    keep: bool = True,
) -> Verdict:
    """Decide and apply what ``block`` does to the public ledger: the one judge of every reader.

    A final block (the default) is ignored when its shard is not honoured any
    more (``not_honoured``); one without a valid quorum (SH-1) is refused and
    changes nothing; an over-minting enclave block is ignored and terminates
    its enclave (MINT-4); a block breaking any other rule is refused and halts
    its shard (``ChainState.halt``); else it is applied.

    ``proposal=True`` judges a block that has no quorum yet, as a committee
    member does before it votes: SH-1 is not checked, nothing halts or
    terminates, and an acceptable block stays applied only when ``keep``.
    """
    why_not = not_honoured(state, block)
    if why_not is not None:
        if proposal:
            return Verdict([Violation(why_not[0], why_not[1], block.shard, block.height)], False)
        return Verdict([], False, why_not[1])
    enclave = state.shard_enclave(block.shard)
    state.begin()
    found = check_and_apply(state, block, tools, None if proposal else coverage)
    if proposal:
        found = [v for v in found if v.rule != "SH-1"]
        if found or not keep:
            state.rollback()
        else:
            state.commit()
        return Verdict(found, not found and keep)
    if any(v.rule == "SH-1" for v in found):
        state.rollback()  # not signed by its committee: it ends nothing and halts nothing
        return Verdict(found, False, final=False)
    if enclave is not None and any(v.rule == "MINT-3" for v in found):
        state.rollback()
        state.end_enclave(enclave, TERMINATED, (block.shard, block.height), "over-minted (MINT-3)")
        if coverage is not None:
            coverage.count("MINT-4").blocks += 1
        return Verdict(found, False, f"over-minting block of enclave {enclave}: it is terminated (MINT-4)", terminated=enclave)
    if found:
        state.rollback()
        rules = ", ".join(sorted({v.rule for v in found}))
        state.halt(block.shard, block.height, f"its block {block.height} was refused ({rules})")
        return Verdict(found, False)
    state.commit()
    return Verdict(found, True)
