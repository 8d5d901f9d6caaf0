"""Account assignment between shards (L2L-1..L2L-4) and the lifecycle rules that
end an enclave's part in it (MINT-4, LIFE-1), plus rollback (TX-7).

A transfer is two entries: the owner's ``ReleaseEntry`` naming the receiving
shard, then the receiver's ``AcquireEntry`` naming that release. Between the
two the account is in transit and no shard may execute on it, so it is never
owned twice and never lost (L2L-3).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sagachain.core.block import (
    AcquireEntry,
    Block,
    BreakawayEntry,
    EnclaveEntry,
    MixedEntry,
    ReleaseEntry,
    RollbackEntry,
)
from sagachain.core.ledger import ACTIVE, TERMINATED, ChainState
from sagachain.core.rules.catalog import ENTRY, Violation, rule
from sagachain.core.rules.tools import Tools


def _v(rule_id: str, block: Block, index: int, reason: str) -> Violation:
    return Violation(rule_id, reason, block.shard, block.height, index)


def _name(state: ChainState, account: bytes) -> str:
    record = state.accounts.get(account)
    return record.name if record else account.hex()[:12]


@rule("L2L-1", "a release names a shard and the account's state hash; an acquire names a pending release to it", ENTRY, (ReleaseEntry, AcquireEntry))
def check_l2l_1_transfer(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    if isinstance(entry, ReleaseEntry):
        if entry.to_shard not in state.shards or entry.to_shard == block.shard:
            yield _v("L2L-1", block, index, f"release of {_name(state, entry.account)} to {entry.to_shard!r}: not another known shard")
        if entry.account in state.accounts and state.account_enclave(entry.account) is None:
            expected = state.public_state_hash(entry.account)
            if entry.state_hash != expected:
                yield _v("L2L-1", block, index, f"release of {_name(state, entry.account)} states a hash that is not its public state's")
    elif isinstance(entry, AcquireEntry):
        transit = state.transit.get(entry.account)
        if transit is None or transit.release != entry.release:
            yield _v("L2L-1", block, index, f"acquire of {_name(state, entry.account)} names no pending release ({entry.release.shard}#{entry.release.height}/{entry.release.index})")
        elif entry.state_hash != transit.state_hash:
            yield _v("L2L-1", block, index, f"acquire of {_name(state, entry.account)} states a hash other than its release's")


@rule("L2L-2", "an enclave account is only released to, and acquired by, shards of its own enclave", ENTRY, (ReleaseEntry, AcquireEntry))
def check_l2l_2_enclave_assignment(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    if isinstance(entry, ReleaseEntry):
        target = entry.to_shard
    elif isinstance(entry, AcquireEntry):
        target = block.shard
    else:
        return
    enclave = state.account_enclave(entry.account)
    if enclave is not None and state.shard_enclave(target) != enclave:
        yield _v("L2L-2", block, index, f"enclave account {_name(state, entry.account)} of {enclave} assigned to shard {target}, which cannot execute it")


@rule("L2L-3", "only the owner releases an account; only the named receiver acquires it, once", ENTRY, (ReleaseEntry, AcquireEntry))
def check_l2l_3_single_owner(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    if isinstance(entry, ReleaseEntry):
        if not state.owns(block.shard, entry.account):
            yield _v("L2L-3", block, index, f"{block.shard} releases {_name(state, entry.account)}, which it does not own (owner {state.owner.get(entry.account)})")
    elif isinstance(entry, AcquireEntry):
        if entry.release in state.acquired:
            yield _v("L2L-3", block, index, f"release {entry.release.shard}#{entry.release.height} of {_name(state, entry.account)} acquired twice")
        transit = state.transit.get(entry.account)
        if transit is not None and transit.to_shard != block.shard:
            yield _v("L2L-3", block, index, f"{block.shard} acquires {_name(state, entry.account)}, released to {transit.to_shard}")
        elif transit is None and state.owner.get(entry.account) != block.shard:
            yield _v("L2L-3", block, index, f"{block.shard} acquires {_name(state, entry.account)}, owned by {state.owner.get(entry.account)} and never released")


@rule("L2L-4", "no account is released to a terminated or broken-away enclave, or to a halted shard", ENTRY, (ReleaseEntry,))
def check_l2l_4_no_accounts_for_ended(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    if isinstance(entry, ReleaseEntry) and entry.to_shard in state.shards and not state.shard_active(entry.to_shard):
        enclave = state.shard_enclave(entry.to_shard)
        if entry.to_shard in state.halted:
            where = f"halted shard {entry.to_shard} (its block {state.halted[entry.to_shard][0]} was refused)"
        else:
            where = f"{entry.to_shard} of {state.status[enclave or ''].state} enclave {enclave}"
        yield _v("L2L-4", block, index, f"releases {_name(state, entry.account)} to {where}")


@rule("MINT-4", "no account change of a terminated enclave is honoured after its termination", ENTRY, (AcquireEntry,))
def check_mint_4_terminated(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    if isinstance(entry, AcquireEntry):
        transit = state.transit.get(entry.account)
        enclave = state.shard_enclave(transit.from_shard) if transit else None
        if enclave is not None and state.status[enclave].state == TERMINATED:
            yield _v("MINT-4", block, index, f"acquires {_name(state, entry.account)} from terminated enclave {enclave}")


@rule("LIFE-1", "a breakaway is declared by the enclave's own shard; nothing is taken from it after", ENTRY, (BreakawayEntry, AcquireEntry))
def check_life_1_breakaway(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    if isinstance(entry, BreakawayEntry):
        if state.shard_enclave(block.shard) != entry.enclave:
            yield _v("LIFE-1", block, index, f"shard {block.shard} declares the breakaway of enclave {entry.enclave}, not its own")
    elif isinstance(entry, AcquireEntry):
        transit = state.transit.get(entry.account)
        enclave = state.shard_enclave(transit.from_shard) if transit else None
        if enclave is not None and state.status[enclave].state not in (ACTIVE, TERMINATED):
            yield _v("LIFE-1", block, index, f"acquires {_name(state, entry.account)} from broken-away enclave {enclave}")


@rule("TX-7", "a rollback replaces enclave state hashes by earlier ones of the same accounts, on the enclave's shard", ENTRY, (RollbackEntry,))
def check_tx_7_rollback(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    shard_enclave = state.shard_enclave(block.shard)
    for account in entry.accounts:
        enclave = state.account_enclave(account)
        if enclave is None or enclave != shard_enclave:
            yield _v("TX-7", block, index, f"rollback of {_name(state, account)} on {block.shard}: only an enclave rolls back its own accounts")
        elif not state.owns(block.shard, account):
            yield _v("TX-7", block, index, f"rollback of {_name(state, account)}, which {block.shard} does not own")
    target = state.entry_at(entry.to)
    if not isinstance(target, EnclaveEntry | MixedEntry):
        yield _v("TX-7", block, index, f"rollback target {entry.to.shard}#{entry.to.height}/{entry.to.index} is not an earlier enclave transaction")
        return
    enclave_accounts = tuple(sorted(a for a in target.tx.account_ids() if state.account_enclave(a) is not None))
    if enclave_accounts != tuple(sorted(entry.accounts)):
        yield _v("TX-7", block, index, "rollback names other accounts than its target transaction's enclave accounts")
    if target.state_hash != entry.state_hash:
        yield _v("TX-7", block, index, "rollback state hash is not the target transaction's output state hash")
