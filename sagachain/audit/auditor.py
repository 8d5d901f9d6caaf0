"""The audit: every rule public data can check, over every block of every shard.

``audit_chain(chain_file, tools, enclaves)`` is the whole audit as a function
that does no I/O: it offers the blocks in file order (the order they became
final) to a ``shards.chainview.ChainView``, the very reader a node runs, so
each block gets the verdict of ``judge_block``, the judge of the simulator
and the node alike, and collects an :class:`AuditReport`: per-rule coverage,
every violation, every refused and every ignored block.
Printing and the JSON form are in ``sagachain.audit.report``; the command is
``sagachain audit`` (``sagachain.cli``).

Beyond the rule catalogue (``sagachain.core.rules``) the audit checks:

- FMT-1, the chain file itself: the end record's BLAKE3 digest covers every
  byte before it, and every record is in canonical encoding (a re-encoded
  record would change hashes; a non-canonical one hides bytes no hash covers).
- TX-6, when given an enclave's sealed state and key: re-execution of the
  enclave's transactions (``shards.enclave_replay``).

A block that breaks a rule is *refused*: not applied, and its shard halts.
Blocks that the chain does not honour (those of a terminated or broken-away
enclave or of a halted shard, and an over-minting enclave block, MINT-4 /
LIFE-1) are listed as *ignored*, never counted as valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sagachain.core.block import EnclaveEntry, MixedEntry, OpenEntry
from sagachain.core.chainfile import ChainFile
from sagachain.core.ledger import ACTIVE, ChainState
from sagachain.core.rules import IGNORED, REFUSED, RULE_TEXT, Coverage, Tools, Violation, check_genesis
from sagachain.core.rules.catalog import GENESIS, checks
from shards.chainview import AUDIT, ChainView, Judged
from shards.enclave_replay import RULE as TX6, TEXT as TX6_TEXT, EnclaveReplay, ReplayStats
from sagachain.errors import InputError
from shards.enclave_store import KEY_SIZE, EnclaveStore
from shards.tools import default_tools

REPORT_VERSION = 1
FMT1 = "FMT-1"
FMT1_TEXT = "chain file: the end record's BLAKE3 digest covers every byte before it; every record is canonically encoded"
AUDIT_TEXT = "every block could be checked (a check that crashed on a block is reported here, never hidden)"
# Rules some checks report under although no check is registered for them.
EXTRA_TEXT = {
    "RT-4": "execution is deterministic: re-executing an open entry gives its log (checked with TX-2)",
}

TX_TYPES = (OpenEntry, EnclaveEntry, MixedEntry)


@dataclass(frozen=True)
class RuleRow:
    """One line of the audit table: what a rule checked and what it found."""

    id: str
    text: str
    blocks: int
    txs: int
    violations: int
    genesis: bool = False  # the rule (also) checked the genesis record
    note: str = ""  # e.g. part of the check skipped for want of a tool


@dataclass(frozen=True)
class IgnoredBlock:
    """A block in the file that the chain does not honour, and why (MINT-4, LIFE-1)."""

    shard: str
    height: int
    reason: str
    offset: int


@dataclass(frozen=True)
class RefusedBlock:
    """A block in the file that breaks a rule: not applied, and its shard halts there."""

    shard: str
    height: int
    rules: tuple[str, ...]
    offset: int


@dataclass
class AuditReport:
    """Everything an audit found; ``sagachain.audit.report`` prints it or writes it as JSON."""

    chain_id: str
    genesis_hash: bytes
    chain_digest: bytes
    digest_ok: bool
    blocks: int
    txs: int
    shards: int
    rules: list[RuleRow]
    violations: list[Violation]
    ignored: list[IgnoredBlock]
    refused: list[RefusedBlock]
    enclaves_replayed: list[ReplayStats]
    enclave_status: dict[str, str]
    skipped: list[str] = field(default_factory=list)
    version: int = REPORT_VERSION

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def verdict(self) -> str:
        """``well-formed`` or ``violations``."""
        return "well-formed" if self.ok else "violations"


@dataclass
class Tooling:
    """The tools handed to the checks, and what is skipped for want of one."""

    tools: Tools
    skipped: dict[str, str]  # rule id -> what was not checked and why


def default_tooling() -> Tooling:
    """The runtime-backed tools: every check runs in full."""
    return Tooling(default_tools(), {})


def missing_tools(tools: Tools, why: str = "no tool given") -> dict[str, str]:
    """Which parts of which rules a ``Tools`` without some functions cannot check."""
    skipped: dict[str, str] = {}
    if tools.replay_open is None:
        for rule_id in ("TX-2", "GAS-2", "RT-4"):
            skipped[rule_id] = f"open transactions not re-executed: {why}"
    if tools.check_script is None:
        skipped["TX-1"] = f"scripts not checked against the SagaPython subset: {why}"
    if tools.check_class is None:
        skipped["CLS-1"] = f"open classes' method tables not compared with their code: {why}"
    return skipped


def audit_chain(
    chain: ChainFile,
    tools: Tools | Tooling | None = None,
    enclaves: dict[str, EnclaveStore] | None = None,
    progress: Callable[[int], None] | None = None,
    on_judged: Callable[[Judged, ChainState], None] | None = None,
) -> AuditReport:
    """Check ``chain`` against every rule; return the report (no printing, no files).

    ``tools`` are the runtime-backed helpers of the checks (``shards.tools.
    default_tools()``); None loads them when the runtimes are importable.
    ``enclaves`` maps an enclave name to its initial off-chain store (unsealed
    from ``E.sealed``); their transactions are re-executed (TX-6). Raises
    ``InputError`` when a store names no enclave of the chain or does not match
    the enclave's state commitment in the genesis. ``progress`` is called with
    the number of blocks done after each block; ``on_judged`` with each
    block's judgment and the ledger state right after it (the differential
    tests compare readers with it).
    """
    tooling = _tooling(tools)
    stores = dict(enclaves or {})
    _check_stores(chain, stores)
    state = ChainState(chain.genesis)
    coverage = Coverage()
    violations: list[Violation] = []
    violations.extend(_fmt_1(chain))
    violations.extend(check_genesis(state, tooling.tools, coverage))
    replay = EnclaveReplay(stores)
    view = ChainView(state, tooling.tools, replay=replay, coverage=coverage)
    offsets = {id(block): offset for block, offset in zip(chain.blocks, chain.offsets, strict=True)}
    ignored: list[IgnoredBlock] = []
    refused: list[RefusedBlock] = []

    def record(judged: list[Judged]) -> None:
        for item in judged:
            block, verdict = item.block, item.verdict
            violations.extend(verdict.violations)
            if verdict.outcome == IGNORED:
                ignored.append(IgnoredBlock(block.shard, block.height, verdict.ignored_because or "ignored", offsets[id(block)]))
            elif verdict.outcome == REFUSED:
                refused.append(RefusedBlock(block.shard, block.height, verdict.rules, offsets[id(block)]))
            violations.extend(item.replayed)
            coverage.count(TX6).violations += len(item.replayed)
            if on_judged is not None:
                on_judged(item, state)

    txs = 0
    for number, block in enumerate(chain.blocks, start=1):
        txs += sum(1 for e in block.entries if isinstance(e, TX_TYPES))
        record(view.offer(block))
        if progress is not None:
            progress(number)
    record(view.flush())
    skipped = dict(tooling.skipped)
    rules = _rows(chain, coverage, replay, skipped, bool(stores))
    return AuditReport(
        chain_id=chain.genesis.chain_id,
        genesis_hash=state.genesis_hash,
        chain_digest=chain.stored_digest,
        digest_ok=chain.digest_ok,
        blocks=len(chain.blocks),
        txs=txs,
        shards=len(state.shards),
        rules=rules,
        violations=violations,
        ignored=ignored,
        refused=refused,
        enclaves_replayed=list(replay.stats.values()) if replay.active else [],
        enclave_status={e: _status(s.state, s.since, s.reason) for e, s in state.status.items()},
        skipped=[f"{rule_id}: {why}" for rule_id, why in skipped.items()],
    )


def _tooling(tools: Tools | Tooling | None) -> Tooling:
    if tools is None:
        return default_tooling()
    if isinstance(tools, Tooling):
        return tools
    return Tooling(tools, missing_tools(tools))


def _check_stores(chain: ChainFile, stores: dict[str, EnclaveStore]) -> None:
    records = {e.id: e for e in chain.genesis.enclaves}
    for name, store in stores.items():
        record = records.get(name)
        if record is None:
            raise InputError(f"enclave state for {name!r}, but the chain's enclaves are {sorted(records) or 'none'}")
        if store.enclave != name:
            raise InputError(f"the enclave state given for {name!r} is the state of enclave {store.enclave!r}")
        if store.commitment() != record.state_commitment:
            raise InputError(
                f"the enclave state of {name!r} does not match the state commitment in this chain's genesis; "
                "is it from another run or seed?"
            )


def _fmt_1(chain: ChainFile) -> list[Violation]:
    found: list[Violation] = []
    if not chain.digest_ok:
        found.append(
            Violation(FMT1, f"the end record's digest {chain.stored_digest.hex()[:16]} is not the BLAKE3 of the bytes before it: the file was changed")
        )
    where = {offset: block for offset, block in zip(chain.offsets, chain.blocks, strict=True)}
    for offset in chain.noncanonical:
        block = where.get(offset)
        if block is None:
            found.append(Violation(FMT1, f"the record at byte {offset} is not in canonical encoding"))
        else:
            found.append(Violation(FMT1, f"the block record at byte {offset} is not in canonical encoding", block.shard, block.height))
    return found


def _rows(chain: ChainFile, coverage: Coverage, replay: EnclaveReplay, skipped: dict[str, str], with_enclaves: bool) -> list[RuleRow]:
    genesis_rules = {c.rule for c in checks(GENESIS)}
    n_blocks = len(chain.blocks)
    n_txs = sum(1 for b in chain.blocks for e in b.entries if isinstance(e, TX_TYPES))
    fmt_violations = (0 if chain.digest_ok else 1) + len(chain.noncanonical)
    rows = [RuleRow(FMT1, FMT1_TEXT, n_blocks, n_txs, fmt_violations, genesis=True)]
    ids = list(RULE_TEXT)
    ids += sorted(r for r in coverage.counts if r not in RULE_TEXT and r not in (TX6, AUDIT, FMT1))
    for rule_id in ids:
        count = coverage.count(rule_id)
        text = RULE_TEXT.get(rule_id) or EXTRA_TEXT.get(rule_id, "reported by another rule's check")
        rows.append(RuleRow(rule_id, text, count.blocks, count.txs, count.violations, rule_id in genesis_rules, skipped.get(rule_id, "")))
    if with_enclaves:
        stats = list(replay.stats.values()) if replay.active else []
        rows.append(
            RuleRow(
                TX6,
                TX6_TEXT,
                sum(s.blocks for s in stats),
                sum(s.txs for s in stats),
                sum(s.violations for s in stats),
                note=skipped.get(TX6, ""),
            )
        )
    if AUDIT in coverage.counts:
        rows.append(RuleRow(AUDIT, AUDIT_TEXT, 0, 0, coverage.count(AUDIT).violations))
    return rows


def _status(state: str, since: tuple[str, int] | None, reason: str) -> str:
    if state == ACTIVE:
        return ACTIVE
    where = f" at {since[0]}#{since[1]}" if since else ""
    return f"{state}{where}" + (f": {reason}" if reason else "")


# -- loading the inputs of an audit (files) ----------------------------------------


def load_enclave(state_path: Path, key_path: Path) -> EnclaveStore:
    """Unseal ``E.sealed`` with the hex key in ``E.key``; InputError naming the file on failure."""
    try:
        key_text = key_path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read enclave key file {key_path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        key = bytes.fromhex(key_text)
    except ValueError:
        raise InputError(f"enclave key file {key_path} must hold the key in hex (as `sagachain run` writes it)") from None
    if len(key) != KEY_SIZE:
        raise InputError(f"enclave key file {key_path} holds {len(key)} bytes; an enclave key is {KEY_SIZE} bytes")
    try:
        sealed = state_path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read enclave state file {state_path}: {exc.strerror}") from None
    try:
        return EnclaveStore.unseal(key, sealed)
    except InputError as exc:
        raise InputError(f"enclave state file {state_path} with key {key_path}: {exc.message}") from None

