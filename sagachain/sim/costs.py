"""What processing costs in virtual time: the simulator's cost model.

A block is final only after its leader built it (executing its transactions)
and its committee validated it (checking signatures and re-executing open
transactions). Those take real time on real nodes, so the simulator charges
them in virtual time, from these figures, instead of pretending they are free.

The defaults are order-of-magnitude figures for one core of a commodity
server: an Ed25519 verification about 60 µs, BLAKE3 about 1 µs per KiB, and
SagaPython execution about 1 µs per gas unit (the interpreter's own speed in
``benchmarks/results.json`` is of that order). Costs are summed in
microseconds and rounded up to whole milliseconds once per block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sagachain.core.block import Block, EnclaveEntry, MixedEntry, OpenEntry
from sagachain.errors import InputError


@dataclass(frozen=True)
class CostModel:
    verify_us: float = 60.0  # one Ed25519 signature verification (transaction or vote)
    sign_us: float = 25.0  # one Ed25519 signature (each committee member's vote)
    hash_us_per_kib: float = 1.0  # BLAKE3 over encoded bytes
    gas_us: float = 1.0  # one unit of SagaPython gas, executed
    entry_us: float = 20.0  # fixed overhead per entry (decode, state lookups)
    # Epoch keys (MEM-3, sagachain.sim.membership), timed on the reference machine (2 cores, CPython 3,
    # PyNaCl) over 3,000 calls each: ``sealing.seal`` of a 32-byte secret 54 µs, ``sealing.open_sealed``
    # 53 µs, one key-tree path step (hash to the next secret, derive its X25519 public key) 17 µs.
    seal_us: float = 54.0  # the committer seals one box of a rekey
    open_us: float = 53.0  # a member opens its one box
    derive_us: float = 17.0  # a key-tree path secret: hashed up one level and its public key derived

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if value < 0:
                raise InputError(f"cost {name} must not be negative, got {value}")

    def build_ms(self, block: Block, size: int) -> int:
        """Leader's time to execute the block's transactions and hash it."""
        gas = sum(_gas(e) for e in block.entries)
        us = gas * self.gas_us + len(block.entries) * self.entry_us + size / 1024 * self.hash_us_per_kib
        return math.ceil(us / 1000)

    def validate_ms(self, block: Block, size: int, committee: int) -> int:
        """A validator's time to check the block: signatures, re-execution of open entries, hashing, voting."""
        txs = sum(1 for e in block.entries if isinstance(e, OpenEntry | EnclaveEntry | MixedEntry))
        open_gas = sum(e.gas_used for e in block.entries if isinstance(e, OpenEntry))
        us = (
            txs * self.verify_us
            + open_gas * self.gas_us
            + len(block.entries) * self.entry_us
            + size / 1024 * self.hash_us_per_kib
            + committee * self.verify_us  # checking the other members' votes
            + self.sign_us
        )
        return math.ceil(us / 1000)


def _gas(entry: object) -> int:
    if isinstance(entry, OpenEntry):
        return entry.gas_used
    if isinstance(entry, EnclaveEntry | MixedEntry):
        return entry.gas_charged
    return 0
