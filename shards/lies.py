"""What a lying enclave proposer puts to an honest committee (TX-6).

An enclave block publishes only hashes of what its transactions did to the
off-chain state (TX-3) and, for a mixed transaction, the public updates. An
outsider cannot tell a true hash from a false one; an enclave member can, by
re-executing the entry on its own copy of the state. Each function here takes
an honestly built proposal and returns the one a byzantine proposer would send
instead, or None when the block holds nothing to lie about:

- ``forge_state``: the first enclave or mixed entry claims an output state
  its transaction does not produce;
- ``inflate_payout``: the first mixed entry that pays coin moves 50,000 where
  its script pays less; the public changes still sum to zero, so every public
  rule holds;
- ``wrong_log``: the first enclave or mixed entry records a log hash its
  execution does not give.

Both drivers use these: the node when configured to lie (``lie`` in
``node.toml``, for tests) and the simulator for ``Scenario.misbehave`` with
these kinds. Honest members must vote nil, naming TX-6, and no such block may
become final.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sagachain.core.block import Block, EnclaveEntry, Entry, MixedEntry, ObjectUpdate, OpenEntry, body_hash
from sagachain.core.encoding import hash_value
from sagachain.core.ledger import ChainState

INFLATION = 49_995  # what the lie adds to a payout (a script paying 5 then moves 50,000)


def reseal(block: Block, entries: list[Entry], **header: int) -> Block:
    """The block with new entries and header figures; fees and tax re-added so only the intended rule breaks."""
    txs = [e for e in entries if isinstance(e, OpenEntry | EnclaveEntry | MixedEntry)]
    fields = {"fees": sum(e.fee for e in txs), "tax": sum(e.tax for e in txs), **header}
    new_header = replace(block.header, body=body_hash(entries), **fields)
    return Block(header=new_header, entries=tuple(entries), qc=())


def _first_hidden(block: Block) -> int | None:
    return next((i for i, e in enumerate(block.entries) if isinstance(e, EnclaveEntry | MixedEntry)), None)


def _rehash(block: Block, field_name: str, tag: str) -> Block | None:
    """The block with its first enclave or mixed entry's ``field_name`` hash made up."""
    at = _first_hidden(block)
    if at is None:
        return None
    entries = list(block.entries)
    entry = entries[at]
    assert isinstance(entry, EnclaveEntry | MixedEntry)
    entries[at] = replace(entry, **{field_name: hash_value([tag, getattr(entry, field_name)])})
    return reseal(block, entries)


def forge_state(chain: ChainState, block: Block) -> Block | None:
    """An output state hash the transaction does not produce."""
    return _rehash(block, "state_hash", "forged-state")


def wrong_log(chain: ChainState, block: Block) -> Block | None:
    """A log hash the transaction's execution does not give."""
    return _rehash(block, "log_hash", "forged-log")


def inflate_payout(chain: ChainState, block: Block) -> Block | None:
    """Shift coin from the payer to the payee of the first paying mixed entry, balanced."""
    entries = list(block.entries)
    chain.begin()  # each entry's changes are measured against what its predecessors left
    try:
        for at, entry in enumerate(entries):
            if isinstance(entry, MixedEntry):
                lie = _inflate(chain, entry)
                if lie is not None:
                    entries[at] = lie
                    return reseal(block, entries)
            chain.apply_entry(block, at, entry)
    finally:
        chain.rollback()
    return None


def _inflate(chain: ChainState, entry: MixedEntry) -> MixedEntry | None:
    payer = payee = None
    for k, update in enumerate(entry.updates):
        before = chain.objects.get(update.id)
        if update.value is None or before is None or "balance" not in update.value.fields:
            continue
        change = update.value.fields["balance"] - before.fields.get("balance", 0)
        if change < 0 and payer is None:
            payer = k
        elif change > 0 and payee is None:
            payee = k
    if payer is None or payee is None:
        return None
    updates = list(entry.updates)
    paying, paid = updates[payer].value, updates[payee].value
    assert paying is not None and paid is not None
    shift = min(INFLATION, paying.fields["balance"])
    if shift == 0:
        return None
    updates[payer] = ObjectUpdate(id=updates[payer].id, value=paying.with_fields(balance=paying.fields["balance"] - shift))
    updates[payee] = ObjectUpdate(id=updates[payee].id, value=paid.with_fields(balance=paid.fields["balance"] + shift))
    return replace(entry, updates=tuple(updates))


LIES: dict[str, Callable[[ChainState, Block], Block | None]] = {
    "forge_state": forge_state,
    "inflate_payout": inflate_payout,
    "wrong_log": wrong_log,
}
