"""Transaction entries: signatures and replay (TX-1), kinds (TX-2..TX-4) and the
public side of the CMI (CMI-1, CMI-2, CMI-4), state updates (OBJ-2, OBJ-3).

What a transaction touches is public: its declared accounts, its gas payer and
the objects its entry updates. From that alone these checks decide whether the
entry has the right kind, ran on a shard allowed to run it, and published no
enclave state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sagachain.core.block import Block, EnclaveEntry, MixedEntry, ObjectUpdate, OpenEntry, TxEntry
from sagachain.core.ledger import ChainState
from sagachain.core.rules.catalog import ENTRY, Violation, rule
from sagachain.core.rules.tools import Tools
from sagachain.core.tx import ENCLAVE, MIXED, OPEN, classify

TX_TYPES = (OpenEntry, EnclaveEntry, MixedEntry)


def _v(rule_id: str, block: Block, index: int, entry: TxEntry, reason: str) -> Violation:
    return Violation(rule_id, reason, block.shard, block.height, index, entry.tx.id)


def touched_enclaves(state: ChainState, entry: TxEntry) -> tuple[set[str], bool]:
    """The enclaves whose accounts the transaction declares, and whether it declares a public one."""
    enclaves: set[str] = set()
    public = False
    for account in entry.tx.account_ids():
        enclave = state.account_enclave(account)
        if enclave is None:
            public = True
        else:
            enclaves.add(enclave)
    return enclaves, public


def tx_1_problems(state: ChainState, tx: Any, tools: Tools) -> Iterator[str]:
    """TX-1 for one transaction against ``state``: why it may not execute now (nothing when it may).

    The one statement of TX-1: the block check below and node admission
    (``shards.admission``) both read it.
    """
    sender = state.accounts.get(tx.sender)
    if sender is None:
        yield f"sender {tx.sender.hex()[:12]} is not an account of this chain"
    elif not tools.verify(sender.public_key, tx.id, tx.signature):
        yield f"the signature does not verify with {sender.name}'s key; sign the transaction id with the sender's key"
    if tx.id in state.seen_tx:
        yield "replayed: this transaction is already in a final block"
    last = state.nonces.get(tx.sender, 0)
    if tx.nonce <= last:
        name = sender.name if sender is not None else "the sender"
        yield f"nonce {tx.nonce} is not above {name}'s last nonce {last} on chain; use {last + 1}"
    if tx.gas_limit <= 0:
        yield f"gas limit {tx.gas_limit} must be positive"
    aliases = [use.alias for use in tx.accounts]
    if len(set(aliases)) != len(aliases) or len(set(tx.account_ids())) != len(aliases):
        yield "declared accounts repeat an alias or an account; declare each account once, under one alias"
    missing = [a.hex()[:12] for a in (*tx.account_ids(), tx.gas_payer) if a not in state.accounts]
    if missing:
        yield f"declared account(s) or gas payer {sorted(set(missing))} do not exist on this chain"
    if tools.check_script is not None:
        problem = tools.check_script(tx.script)
        if problem is not None:
            yield problem


@rule("TX-1", "transaction is signed by its sender, its nonce is fresh, its script is in the SagaPython subset", ENTRY, TX_TYPES)
def check_tx_1_transaction(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    for problem in tx_1_problems(state, entry.tx, tools):
        yield _v("TX-1", block, index, entry, problem)


@rule("CMI-4", "no transaction touches the accounts of two different enclaves", ENTRY, TX_TYPES)
def check_cmi_4_cross_enclave(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    enclaves, _ = touched_enclaves(state, entry)
    if len(enclaves) > 1:
        yield _v("CMI-4", block, index, entry, f"touches accounts of enclaves {sorted(enclaves)}: cross-enclave data must go through a public mailbox")


@rule("CMI-1", "the executing shard owns every account the transaction touches and its gas payer", ENTRY, TX_TYPES)
def check_cmi_1_ownership(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    for account in (*entry.tx.account_ids(), entry.tx.gas_payer):
        if account in state.accounts and not state.owns(block.shard, account):
            where = state.owner.get(account)
            moving = " (in transit)" if account in state.transit else ""
            yield _v("CMI-1", block, index, entry, f"account {state.accounts[account].name} is owned by {where}{moving}, not by {block.shard}")


@rule("CMI-2", "enclave accounts and enclave-bound classes only execute on their enclave's shards", ENTRY, TX_TYPES)
def check_cmi_2_enclave_execution(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    shard_enclave = state.shard_enclave(block.shard)
    enclaves, _ = touched_enclaves(state, entry)
    for enclave in sorted(enclaves):
        if enclave != shard_enclave:
            yield _v("CMI-2", block, index, entry, f"touches accounts of enclave {enclave} on shard {block.shard} ({_kind(shard_enclave)})")
    for update in _updates(entry):
        obj = update.value or state.objects.get(update.id)
        bound = state.class_enclave(obj.class_id) if obj else None
        if bound is not None and bound != shard_enclave:
            yield _v("CMI-2", block, index, entry, f"object {update.id.hex()[:12]} of a class bound to enclave {bound} changed on {block.shard}")


def _kind(enclave: str | None) -> str:
    return f"enclave {enclave}" if enclave else "a public shard"


@rule("TX-2", "open entries touch no enclave account and their updates equal a re-execution", ENTRY, (OpenEntry,))
def check_tx_2_open(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    enclaves, _ = touched_enclaves(state, entry)
    if enclaves:
        return  # reported by TX-3: an enclave transaction published as open
    if tools.replay_open is None:
        return
    replay = tools.replay_open(state, block, entry)
    if replay.ok != entry.ok:
        yield _v("TX-2", block, index, entry, f"entry says ok={entry.ok}, re-execution says ok={replay.ok} ({replay.error})")
    elif _norm(replay.updates) != _norm(entry.updates):
        yield _v("TX-2", block, index, entry, "state updates differ from a re-execution on the public state")
    if replay.gas_used != entry.gas_used:
        yield _v("GAS-2", block, index, entry, f"gas used {entry.gas_used}, re-execution used {replay.gas_used}")
    if replay.log != entry.log:
        yield _v("RT-4", block, index, entry, "log differs from a re-execution: execution is not deterministic")


def _norm(updates: tuple[ObjectUpdate, ...]) -> dict[bytes, object]:
    return {u.id: u.value for u in updates}


def _updates(entry: Any) -> tuple[ObjectUpdate, ...]:
    return entry.updates if isinstance(entry, OpenEntry | MixedEntry) else ()


@rule("TX-3", "enclave transactions carry only script and hashes; no enclave state is ever published", ENTRY, TX_TYPES)
def check_tx_3_enclave(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    enclaves, public = touched_enclaves(state, entry)
    if len(enclaves) > 1:
        return  # CMI-4
    expected = classify(enclaves, public)
    if isinstance(entry, OpenEntry) and expected != OPEN:
        yield _v("TX-3", block, index, entry, f"a {expected} transaction of enclave {next(iter(enclaves))} was published as an open entry with its state and log")
    if isinstance(entry, EnclaveEntry) and expected != ENCLAVE:
        yield _v("TX-3", block, index, entry, f"recorded as an enclave entry but it is {expected}")
    for update in _updates(entry):
        obj = update.value or state.objects.get(update.id)
        owner = obj.owner if obj else None
        if owner is not None and state.account_enclave(owner) is not None:
            yield _v("TX-3", block, index, entry, f"publishes state of enclave account {state.accounts[owner].name} (object {update.id.hex()[:12]})")


@rule("TX-4", "mixed transactions run on their enclave's shard and publish only non-enclave updates", ENTRY, (MixedEntry, EnclaveEntry))
def check_tx_4_mixed(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    enclaves, public = touched_enclaves(state, entry)
    if len(enclaves) != 1:
        if not enclaves:
            yield _v("TX-4", block, index, entry, f"recorded as {entry.kind} but touches no enclave account")
        return
    if isinstance(entry, MixedEntry) and classify(enclaves, public) != MIXED:
        yield _v("TX-4", block, index, entry, "recorded as mixed but touches no public account")


@rule("OBJ-2", "every updated object has one owner account, co-resident and declared by the transaction", ENTRY, (OpenEntry, MixedEntry))
def check_obj_2_updates(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    allowed = set(entry.tx.account_ids()) | {entry.tx.gas_payer}
    for update in entry.updates:
        for obj in (state.objects.get(update.id), update.value):
            if obj is None:
                continue
            if obj.owner not in state.accounts:
                yield _v("OBJ-2", block, index, entry, f"object {update.id.hex()[:12]} names unknown owner {obj.owner.hex()[:12]}")
            elif obj.owner not in allowed:
                yield _v("OBJ-2", block, index, entry, f"object {update.id.hex()[:12]} belongs to {state.accounts[obj.owner].name}, which the transaction does not declare")


@rule("OBJ-3", "account objects keep their account class and own themselves", ENTRY, (OpenEntry, MixedEntry))
def check_obj_3_accounts(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    for update in entry.updates:
        record = state.accounts.get(update.id)
        if record is None:
            continue
        if update.value is None:
            yield _v("OBJ-3", block, index, entry, f"deletes the account object of {record.name}")
        elif update.value.class_id != record.class_id or update.value.owner != record.id:
            yield _v("OBJ-3", block, index, entry, f"changes the class or owner of account {record.name}")
