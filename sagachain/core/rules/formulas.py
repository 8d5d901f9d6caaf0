"""The arithmetic of the money rules, shared by block producers and checkers.

A leader computes the GAS-3 floor and charge and the MINT-3 allowance with
these functions when it builds a block; every validator and the auditor
compute them again with the same functions and compare.
"""

from __future__ import annotations

from collections.abc import Iterable

from sagachain.core.block import EnclaveEntry, Head, MixedEntry, OpenEntry
from sagachain.core.genesis import PPM, Params
from sagachain.core.ledger import ChainState


def gas_3_floor(state: ChainState, basis: Iterable[Head]) -> int:
    """GAS-3: the rolling global average gas per open transaction.

    The window is the last ``gas_window`` blocks of each shard, ending at the
    height the producer names for that shard in ``basis``. With no open
    transaction in the window the floor is ``min_gas``; it never drops below it.
    """
    total = count = 0
    window = state.params.gas_window
    for head in basis:
        gas_to, count_to = state.cumulative_open(head.shard, head.height)
        gas_from, count_from = state.cumulative_open(head.shard, head.height - window)
        total += gas_to - gas_from
        count += count_to - count_from
    if count == 0:
        return state.params.min_gas
    return max(state.params.min_gas, total // count)


def gas_3_charge(floor: int, open_gas: list[int]) -> int:
    """GAS-3: what every enclave or mixed transaction of a block is charged."""
    if not open_gas:
        return floor
    return max(floor, sum(open_gas) // len(open_gas))


def gas_4_tax(params: Params, fee: int) -> int:
    """GAS-4: the Foundation's share of one fee."""
    return fee * params.tax_ppm // PPM


def mint_3_allowance(params: Params, enclave_shard: bool, entries: Iterable[object]) -> int:
    """MINT-3: the most a block may mint.

    A public shard's block may mint the block reward. An enclave shard's block
    may mint it prorated by the share of its transactions that update
    non-enclave accounts: open and mixed count, enclave-only do not.
    """
    if not enclave_shard:
        return params.block_reward
    txs = [e for e in entries if isinstance(e, OpenEntry | EnclaveEntry | MixedEntry)]
    if not txs:
        return 0
    counted = sum(1 for e in txs if isinstance(e, OpenEntry | MixedEntry))
    return params.block_reward * counted // len(txs)
