"""Colluding committees: the misbehaviour a scenario can ask of a shard.

Each function takes an honestly built block and returns the block a
misbehaving leader would put to its (colluding) committee instead. The
auditor must name the rule each one breaks; tests check that it does.

- ``overmint``: the coinbase exceeds MINT-3 (an enclave is then terminated, MINT-4).
- ``leak_state``: an enclave transaction is published as an open entry with its
  enclave state and log (TX-3).
- ``wrong_gas``: enclave and mixed transactions are charged a tenth of GAS-3's charge.
- ``steal_account``: the shard acquires an enclave account it may not own (L2L-2).
- ``cross_enclave``: a transaction touching two enclaves is included (CMI-4).
- ``strict_deploy``: an open class with a private base is deployed under the
  strict policy (CLS-3); handled where deploys are accepted.
- ``withhold``: an enclave shard keeps its blocks' off-chain state changes from
  the enclave's other shards. Its blocks stay well-formed, so nothing public
  shows it; the other members notice when the changes do not come
  (``Simulation.deliver_final``), and accounts it releases cannot be acquired.

A lying *proposer* among honest members is another matter: its kinds
(``forge_state``, ``inflate_payout``, ``wrong_log``) are in ``shards.lies``,
shared with the node, and the honest members refuse its blocks (TX-6).
"""

from __future__ import annotations

from dataclasses import replace

from sagachain.core.block import (
    AcquireEntry,
    Block,
    EnclaveEntry,
    Entry,
    EntryRef,
    MixedEntry,
    ObjectUpdate,
    OpenEntry,
)
from sagachain.core.encoding import hash_value
from sagachain.core.ledger import ChainState
from sagachain.core.rules.formulas import gas_3_charge, gas_4_tax, mint_3_allowance
from sagachain.core.tx import Transaction
from shards.enclave_store import EnclaveStore
from shards.lies import reseal


def overmint(chain: ChainState, block: Block) -> Block:
    shard = chain.shards[block.shard]
    allowed = mint_3_allowance(chain.params, shard.is_enclave, block.entries)
    return reseal(block, list(block.entries), coinbase=allowed + 10 * chain.params.block_reward + 1)


def leak_state(chain: ChainState, block: Block, store: EnclaveStore) -> Block | None:
    """Publish the first enclave transaction's output state as if it were open."""
    entries = list(block.entries)
    for index, entry in enumerate(entries):
        if isinstance(entry, EnclaveEntry):
            leaked = tuple(
                ObjectUpdate(id=oid, value=obj)
                for account in entry.tx.account_ids()
                for oid, obj in sorted(store.objects_of(account).items())
            )
            entries[index] = OpenEntry(
                tx=entry.tx, ok=True, error=None, gas_used=entry.gas_charged, fee=entry.fee, tax=entry.tax, updates=leaked, log=()
            )
            opens = [e for e in entries if not isinstance(e, EnclaveEntry | MixedEntry)]
            rest = [e for e in entries if isinstance(e, EnclaveEntry | MixedEntry)]
            return reseal(block, opens + rest)
    return None


def wrong_gas(chain: ChainState, block: Block) -> Block | None:
    entries: list[Entry] = []
    changed = False
    for entry in block.entries:
        if isinstance(entry, EnclaveEntry | MixedEntry):
            charged = max(1, entry.gas_charged // 10)
            fee = charged * chain.params.gas_price
            entry = replace(entry, gas_charged=charged, fee=fee, tax=gas_4_tax(chain.params, fee))
            changed = True
        entries.append(entry)
    return reseal(block, entries) if changed else None


def steal_account(chain: ChainState, block: Block, victim: bytes) -> Block:
    """Acquire ``victim`` with a release that never happened."""
    fake = EntryRef(shard=chain.owner.get(victim, block.shard), height=0, index=0)
    grab = AcquireEntry(account=victim, release=fake, state_hash=hash_value(["stolen", victim]))
    return reseal(block, [grab, *block.entries])


def cross_enclave(chain: ChainState, block: Block, tx: Transaction) -> Block:
    """Include a two-enclave transaction as an enclave entry with invented hashes."""
    opens = [e.gas_used for e in block.entries if isinstance(e, OpenEntry)]
    charged = gas_3_charge(block.header.gas_floor, opens)
    fee = charged * chain.params.gas_price
    forged = EnclaveEntry(
        tx=tx,
        gas_charged=charged,
        fee=fee,
        tax=gas_4_tax(chain.params, fee),
        state_hash=hash_value(["forged-state", tx.id]),
        log_hash=hash_value(["forged-log", tx.id]),
    )
    return reseal(block, [*block.entries, forged])
