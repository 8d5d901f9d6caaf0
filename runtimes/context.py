"""What a runtime is given to execute a transaction, and what it gives back.

The runtime sees the ledger only through these values: the shard it runs on
and which enclaves the executing node belongs to (for CMI-1/CMI-2/RT-2), the
class and runtime registries, the private code the node holds, and a read-only
view of objects. It returns writes instead of performing them, so the caller
(a shard machine, a validator, the auditor) decides what becomes of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sagachain.core.keys import verify
from sagachain.core.objects import ClassRecord, RuntimeRecord, StoredObject
from runtimes.gas import GasSchedule


class ObjectView(Protocol):
    """Read access to objects as the transaction sees them."""

    def get(self, oid: bytes) -> StoredObject | None: ...


@dataclass(frozen=True)
class ExecutionContext:
    """Where and by whom a transaction is executed."""

    shard: str
    shard_enclave: str | None
    node_enclaves: frozenset[str]
    owns: Callable[[bytes], bool]
    account_enclave: Callable[[bytes], str | None]
    classes: Mapping[bytes, ClassRecord]
    runtimes: Mapping[bytes, RuntimeRecord]
    private_code: Mapping[bytes, str] = field(default_factory=dict)
    gas: GasSchedule = field(default_factory=GasSchedule)
    # MEM-3: why key material cannot start ``enclave``'s next epoch for a change (op, node, new key),
    # judged against the roster's public key schedule; None when it can
    epoch_problem: Callable[[str, bytes, tuple[str, bytes, bytes]], str | None] = lambda enclave, rekey, change: None
    time: int = 0  # the block's time: when an envelope arrived, whether its TTL has passed (MBX-2)
    verify: Callable[[bytes, bytes, bytes], bool] = verify  # signatures native methods check (key proofs, MEM-2)


@dataclass(frozen=True)
class ExecutionResult:
    """The outcome of one transaction (RT-4: the same on every node).

    ``rule`` names the rule that stopped a failed transaction (None when the
    script failed on its own terms, e.g. ``require``). ``writes`` maps object
    ids to new values; it is empty when the transaction failed.
    """

    ok: bool
    rule: str | None
    error: str | None
    gas_used: int
    writes: dict[bytes, StoredObject | None]
    log: tuple[Any, ...]
    return_value: Any = None
