"""Judging blocks: run every rule's checks, apply what is honoured.

This is the one place that decides what a block does to the public ledger, for
the simulator's validators and for the auditor alike:

- a block of a terminated or broken-away enclave is ignored (MINT-4, LIFE-1);
- a block of an enclave shard that mints more than MINT-3 allows is ignored
  and terminates its enclave (MINT-4);
- any other block is checked entry by entry, each entry against the state its
  predecessors left, and applied; its violations are returned.
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


@dataclass(frozen=True)
class Verdict:
    violations: list[Violation]
    applied: bool
    ignored_because: str | None = None
    terminated: str | None = None


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


def judge_block(state: ChainState, block: Block, tools: Tools, coverage: Coverage | None = None) -> Verdict:
    """Decide and apply what ``block`` does to the public ledger (see the module docstring)."""
    enclave = state.shard_enclave(block.shard)
    if block.shard in state.shards and not state.enclave_active(enclave):
        status = state.status[enclave or ""]
        return Verdict([], False, f"enclave {enclave} is {status.state} since {status.since[0]}#{status.since[1]}" if status.since else status.state)
    state.begin()
    found = check_and_apply(state, block, tools, coverage)
    if enclave is not None and any(v.rule == "MINT-3" for v in found):
        state.rollback()
        state.end_enclave(enclave, TERMINATED, (block.shard, block.height), "over-minted (MINT-3)")
        if coverage is not None:
            coverage.count("MINT-4").blocks += 1
        return Verdict(found, False, "over-minting block of an enclave (MINT-4)", terminated=enclave)
    state.commit()
    return Verdict(found, True)
