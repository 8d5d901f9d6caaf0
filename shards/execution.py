"""Executing one transaction on a shard and turning the result into a block entry.

The leader that builds a block, the validators that re-execute open entries,
and the auditor (re-executing open entries from public data, and enclave
entries when given the enclave's state) all go through ``execute``, so an
entry can only be judged against what the same code would have produced.

Money flow of one transaction (GAS-1..GAS-4): the payer must hold
``gas_limit x price``; that much is set aside before the script runs, so the
script cannot spend it; afterwards the payer is refunded all but the fee. An
open transaction's fee is the gas it used (GAS-2); an enclave or mixed one's
is the GAS-3 charge of its block. The script's writes to non-enclave objects
become the entry's updates; its writes to enclave objects go to the enclave's
off-chain store and only their hash is published (TX-3, TX-4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from runtimes import ExecutionContext, ExecutionResult, execute_transaction
from sagachain.core.block import Block, EnclaveEntry, MixedEntry, ObjectUpdate, OpenEntry, TxEntry
from sagachain.core.encoding import hash_value
from sagachain.core.ledger import ChainState
from sagachain.core.objects import BALANCE_FIELD, StoredObject
from sagachain.core.roster import EpochRecord
from sagachain.core.rules.formulas import gas_4_tax
from sagachain.core.rules.tools import Replay
from sagachain.core.rules.transactions import touched_enclaves
from sagachain.core.tx import ENCLAVE, MIXED, OPEN, Transaction, classify
from sagachain.errors import RuleViolation
from shards.enclave_store import EnclaveStore


class _View:
    """Objects as the script sees them: writes so far, then the public state, then the enclave store."""

    def __init__(self, chain: ChainState, store: EnclaveStore | None, writes: dict[bytes, StoredObject | None]) -> None:
        self.chain = chain
        self.store = store
        self.writes = writes

    def get(self, oid: bytes) -> StoredObject | None:
        if oid in self.writes:
            return self.writes[oid]
        obj = self.chain.objects.get(oid)
        if obj is None and self.store is not None:
            obj = self.store.objects.get(oid)
        return obj


@dataclass(frozen=True)
class Outcome:
    """An executed transaction: its entry, and the enclave writes to keep off chain."""

    entry: TxEntry
    enclave_writes: dict[bytes, StoredObject | None] = field(default_factory=dict)
    result: ExecutionResult | None = None


def kind_of(chain: ChainState, tx: Transaction) -> tuple[str, str | None]:
    """TX-2..TX-4: the kind and enclave of a transaction; CMI-4 when it spans enclaves."""
    probe = OpenEntry(tx=tx, ok=True, error=None, gas_used=0, fee=0, tax=0, updates=(), log=())
    enclaves, public = touched_enclaves(chain, probe)
    if len(enclaves) > 1:
        raise RuleViolation("CMI-4", f"transaction touches enclaves {sorted(enclaves)}; cross-enclave data goes through public mailboxes")
    return classify(enclaves, public), next(iter(enclaves), None)


def context(
    chain: ChainState,
    shard: str,
    node_enclaves: frozenset[str],
    private_code: Mapping[bytes, str],
    time: int = 0,
) -> ExecutionContext:
    return ExecutionContext(
        shard=shard,
        shard_enclave=chain.shard_enclave(shard),
        node_enclaves=node_enclaves,
        owns=lambda account: chain.owns(shard, account),
        account_enclave=chain.account_enclave,
        classes=chain.classes,
        runtimes=chain.runtimes,
        private_code=private_code,
        epoch_problem=lambda enclave, rekey, change: next(iter(chain.rekey_problems(enclave, EpochRecord(epoch=0, rekey=rekey), change)), None),
        time=time,
    )


def execute(
    chain: ChainState,
    shard: str,
    tx: Transaction,
    *,
    store: EnclaveStore | None = None,
    enclave_charge: int | None = None,
    time: int = 0,
) -> Outcome:
    """Run ``tx`` on ``shard`` against ``chain`` (and ``store`` for enclave accounts).

    ``enclave_charge`` is the block's GAS-3 charge; it is required for enclave
    and mixed transactions and ignored for open ones. ``time`` is the block's time.
    """
    kind, enclave = kind_of(chain, tx)
    price = chain.params.gas_price
    payer = chain.objects.get(tx.gas_payer)
    reserve = tx.gas_limit * price
    if payer is None or chain.account_enclave(tx.gas_payer) is not None:
        raise RuleViolation("GAS-1", "the gas payer must be an existing non-enclave account")
    if chain.balance(tx.gas_payer) < reserve:
        raise RuleViolation("GAS-1", f"payer holds {chain.balance(tx.gas_payer)}, needs gas limit x price = {reserve}")
    writes: dict[bytes, StoredObject | None] = {tx.gas_payer: _with_balance(payer, chain.balance(tx.gas_payer) - reserve)}
    view = _View(chain, store, writes)
    ctx = context(chain, shard, frozenset({enclave}) if enclave and store else frozenset(), store.private_code if store else {}, time)
    result = execute_transaction(tx, ctx, view)
    final: dict[bytes, StoredObject | None] = dict(result.writes) if result.ok else {}
    if kind == OPEN:
        gas = min(result.gas_used, tx.gas_limit)
    else:
        if enclave_charge is None:
            raise ValueError("an enclave or mixed transaction needs its block's GAS-3 charge")
        if enclave_charge > tx.gas_limit:
            raise RuleViolation("GAS-3", f"the block's enclave charge {enclave_charge} exceeds the gas limit {tx.gas_limit}")
        gas = enclave_charge
    fee = gas * price
    payer_now = final.get(tx.gas_payer, writes[tx.gas_payer])
    assert payer_now is not None
    final[tx.gas_payer] = _with_balance(payer_now, _bal(payer_now) + reserve - fee)
    public = {oid: v for oid, v in final.items() if not _enclave_owned(chain, store, oid, v)}
    private = {oid: v for oid, v in final.items() if oid not in public}
    script_wrote_payer = result.ok and tx.gas_payer in result.writes
    updates = tuple(
        ObjectUpdate(id=oid, value=v) for oid, v in sorted(public.items()) if oid != tx.gas_payer or script_wrote_payer
    )
    tax = gas_4_tax(chain.params, fee)
    if kind == OPEN:
        entry: TxEntry = OpenEntry(
            tx=tx, ok=result.ok, error=result.error, gas_used=gas, fee=fee, tax=tax, updates=updates, log=result.log
        )
        return Outcome(entry, {}, result)
    assert store is not None and enclave is not None
    enclave_accounts = sorted(a for a in tx.account_ids() if chain.account_enclave(a) == enclave)
    after = store.copy()
    after.write(private)
    state_hash = after.state_hash(enclave_accounts)
    log_hash = hash_value(["log", result.ok, result.error, result.gas_used, list(result.log), result.return_value])
    if kind == ENCLAVE:
        entry = EnclaveEntry(tx=tx, gas_charged=gas, fee=fee, tax=tax, state_hash=state_hash, log_hash=log_hash)
    else:
        assert kind == MIXED
        entry = MixedEntry(tx=tx, gas_charged=gas, fee=fee, tax=tax, state_hash=state_hash, log_hash=log_hash, updates=updates)
    return Outcome(entry, private, result)


def _bal(obj: StoredObject) -> int:
    return int(obj.fields.get(BALANCE_FIELD, 0) or 0)


def _with_balance(obj: StoredObject, balance: int) -> StoredObject:
    return obj.with_fields(**{BALANCE_FIELD: balance})


def _enclave_owned(chain: ChainState, store: EnclaveStore | None, oid: bytes, value: StoredObject | None) -> bool:
    obj = value
    if obj is None:
        obj = chain.objects.get(oid) or (store.objects.get(oid) if store else None)
    return obj is not None and chain.account_enclave(obj.owner) is not None


def replay_open(chain: ChainState, block: Block, entry: OpenEntry) -> Replay:
    """The TX-2/GAS-2 tool: re-execute an open entry on the public state."""
    try:
        outcome = execute(chain, block.shard, entry.tx, time=block.header.time)
    except RuleViolation as exc:
        return Replay(False, str(exc), 0, (), ())
    replayed = outcome.entry
    assert isinstance(replayed, OpenEntry)
    return Replay(replayed.ok, replayed.error, replayed.gas_used, replayed.updates, replayed.log)
