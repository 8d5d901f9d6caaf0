"""Money: gas (GAS-1..GAS-4) and minting (MINT-1..MINT-3, MINT-5).

Coin lives only in the ``balance`` field of non-enclave account objects. A fee
leaves the payer's balance and goes to the block's payouts (producer and
Foundation); a coinbase adds to the payouts. So at every height the
circulating balances plus all fees ever paid equal the genesis supply
(MINT-5), and the payout ledger equals all fees plus all valid coinbases.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sagachain.core.block import Block, EnclaveEntry, MixedEntry, OpenEntry
from sagachain.core.ledger import ChainState
from sagachain.core.objects import BALANCE_FIELD
from sagachain.core.rules.catalog import BLOCK, ENTRY, Violation, rule
from sagachain.core.rules.formulas import gas_3_charge, gas_3_floor, gas_4_tax, mint_3_allowance
from sagachain.core.rules.tools import Tools

TX_TYPES = (OpenEntry, EnclaveEntry, MixedEntry)


def _v(rule_id: str, block: Block, reason: str, index: int | None = None, entry: Any = None) -> Violation:
    tx = entry.tx.id if entry is not None and hasattr(entry, "tx") else None
    return Violation(rule_id, reason, block.shard, block.height, index, tx)


@rule("GAS-1", "every transaction pays its fee from a non-enclave account it names, which can afford it", ENTRY, TX_TYPES)
def check_gas_1_payer(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    payer = entry.tx.gas_payer
    record = state.accounts.get(payer)
    if record is None:
        yield _v("GAS-1", block, f"gas payer {payer.hex()[:12]} is not an account", index, entry)
        return
    if record.enclave is not None:
        yield _v("GAS-1", block, f"gas payer {record.name} is an enclave account; enclave accounts hold no SagaCoin", index, entry)
        return
    if entry.fee <= 0:
        yield _v("GAS-1", block, f"fee {entry.fee}: every transaction pays gas", index, entry)
    if state.balance(payer) < entry.fee:
        yield _v("GAS-1", block, f"payer {record.name} holds {state.balance(payer)}, less than the fee {entry.fee}", index, entry)


@rule("GAS-2", "an open transaction is charged the gas its execution used", ENTRY, (OpenEntry,))
def check_gas_2_open_charge(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    price = state.params.gas_price
    if entry.fee != entry.gas_used * price:
        yield _v("GAS-2", block, f"fee {entry.fee} is not gas used {entry.gas_used} x price {price}", index, entry)
    if entry.gas_used > entry.tx.gas_limit:
        yield _v("GAS-2", block, f"gas used {entry.gas_used} exceeds the limit {entry.tx.gas_limit}", index, entry)


@rule("GAS-3", "the header's gas floor is the rolling average over the named blocks, never going back", BLOCK)
def check_gas_3_floor(state: ChainState, block: Block, tools: Tools) -> Iterator[Violation]:
    h = block.header
    previous = state.basis.get(block.shard, {})
    seen: set[str] = set()
    for head in h.gas_basis:
        if head.shard in seen or head.shard not in state.shards:
            yield _v("GAS-3", block, f"gas basis names shard {head.shard!r} twice or unknown")
            continue
        seen.add(head.shard)
        if head.height > state.heads.get(head.shard, 0):
            yield _v("GAS-3", block, f"gas basis names {head.shard}#{head.height}, which is not yet on chain")
        if head.height < previous.get(head.shard, 0):
            yield _v("GAS-3", block, f"gas basis goes back on {head.shard}: {head.height} < {previous[head.shard]} in the parent")
    expected = gas_3_floor(state, h.gas_basis)
    if h.gas_floor != expected:
        yield _v("GAS-3", block, f"header gas floor {h.gas_floor}, the window gives {expected}")


@rule("GAS-3", "enclave and mixed transactions are charged max(block's open average, floor), after all open ones", ENTRY, TX_TYPES)
def check_gas_3_enclave_charge(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    if isinstance(entry, OpenEntry):
        if any(isinstance(e, EnclaveEntry | MixedEntry) for e in block.entries[:index]):
            yield _v("GAS-3", block, "an open transaction follows an enclave one: the enclave charge must be fixed when it runs", index, entry)
        return
    if not isinstance(entry, EnclaveEntry | MixedEntry):
        return
    opens = [e.gas_used for e in block.entries if isinstance(e, OpenEntry)]
    expected = gas_3_charge(block.header.gas_floor, opens)
    if entry.gas_charged != expected:
        yield _v("GAS-3", block, f"charged {entry.gas_charged} gas, GAS-3 requires {expected} (floor {block.header.gas_floor}, {len(opens)} open txs)", index, entry)
    if entry.fee != entry.gas_charged * state.params.gas_price:
        yield _v("GAS-3", block, f"fee {entry.fee} is not charged gas {entry.gas_charged} x price {state.params.gas_price}", index, entry)


@rule("GAS-4", "the Foundation gets its share of every fee; header fee and tax totals add up", ENTRY, TX_TYPES)
def check_gas_4_tax(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    expected = gas_4_tax(state.params, entry.fee)
    if entry.tax != expected:
        yield _v("GAS-4", block, f"tax {entry.tax} on fee {entry.fee}, expected {expected}", index, entry)


@rule("GAS-4", "header fees and tax are the sums over the block's transactions", BLOCK)
def check_gas_4_totals(state: ChainState, block: Block, tools: Tools) -> Iterator[Violation]:
    txs = block.tx_entries()
    fees, tax = sum(e.fee for e in txs), sum(e.tax for e in txs)
    if block.header.fees != fees or block.header.tax != tax:
        yield _v("GAS-4", block, f"header fees/tax {block.header.fees}/{block.header.tax}, entries sum to {fees}/{tax}")


@rule("MINT-1", "no enclave account is ever given SagaCoin", ENTRY, (OpenEntry, MixedEntry))
def check_mint_1_enclave_coin(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    for update in entry.updates:
        value = update.value
        if value is not None and state.account_enclave(value.owner) is not None and value.fields.get(BALANCE_FIELD):
            yield _v("MINT-1", block, f"object {update.id.hex()[:12]} of an enclave account holds {value.fields[BALANCE_FIELD]} coin", index, entry)


def _balance_delta(state: ChainState, entry: OpenEntry | MixedEntry) -> tuple[int, list[str]]:
    """Sum of balance changes of the entry's updates, measured after its fee left the payer."""
    total = 0
    negative = []
    for update in entry.updates:
        old = state.objects.get(update.id)
        before = int(old.fields.get(BALANCE_FIELD, 0) or 0) if old else 0
        if update.id == entry.tx.gas_payer:
            before -= entry.fee
        after = int(update.value.fields.get(BALANCE_FIELD, 0) or 0) if update.value else 0
        if after < 0:
            negative.append(update.id.hex()[:12])
        total += after - before
    return total, negative


@rule("MINT-2", "a mixed transaction's non-enclave balance changes sum to zero, apart from its fee", ENTRY, (MixedEntry,))
def check_mint_2_mixed_conservation(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    delta, _ = _balance_delta(state, entry)
    if delta != 0:
        yield _v("MINT-2", block, f"non-enclave balances change by {delta:+d} besides the fee: coin created or destroyed across the enclave boundary", index, entry)


@rule("MINT-5", "an open transaction moves coin without creating or destroying any; no balance goes negative", ENTRY, (OpenEntry, MixedEntry))
def check_mint_5_open_conservation(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    delta, negative = _balance_delta(state, entry)
    if isinstance(entry, OpenEntry) and delta != 0:
        yield _v("MINT-5", block, f"balances change by {delta:+d} besides the fee", index, entry)
    for oid in negative:
        yield _v("MINT-5", block, f"object {oid} ends with a negative balance", index, entry)


@rule("MINT-3", "the coinbase is within the block reward, prorated on enclave shards by non-enclave transactions", BLOCK)
def check_mint_3_coinbase(state: ChainState, block: Block, tools: Tools) -> Iterator[Violation]:
    shard = state.shards.get(block.shard)
    if shard is None:
        return
    allowed = mint_3_allowance(state.params, shard.is_enclave, block.entries)
    if block.header.coinbase < 0 or block.header.coinbase > allowed:
        yield _v("MINT-3", block, f"mints {block.header.coinbase}, at most {allowed} allowed")
