"""What a ``ShardMachine`` and its driver hand each other: the L2L request it takes in,
and the values it returns (refusals, the block it built). The driver acts on these
records; it never reads the machine's own collections to learn what was decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagachain.core.block import Block, EntryRef
from sagachain.core.objects import StoredObject
from sagachain.core.tx import Transaction
from shards.placement import Priority, Queued


@dataclass(frozen=True, slots=True)
class Request:
    """L2L-1: a leader asks the owner of ``account`` to release it."""

    account: bytes
    requester: str
    priority: Priority


@dataclass(frozen=True, slots=True)
class Rejection:
    """A transaction or request the shard refused, with the rule that refused it."""

    rule: str
    reason: str
    tx: Transaction | None = None


@dataclass
class Proposal:
    """A block waiting for its committee, and the off-chain writes it carries."""

    block: Block
    enclave_writes: dict[bytes, StoredObject | None]
    snapshots: dict[EntryRef, dict[bytes, dict[bytes, StoredObject]]]
    included: list[Queued]


@dataclass(frozen=True, slots=True)
class Built:
    """What ``build`` decided: the block to put to the committee (None: nothing to put in one),
    and the queued transactions it refused on the way, which the driver must report."""

    proposal: Proposal | None
    refused: list[Rejection]
