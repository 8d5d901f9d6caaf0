"""The messages of protocol version 2: between the nodes of a shard and of an
enclave, and the client requests the node added (docs/PROTOCOL.md, section 8).

Version 1 (``node/wire.py``) gave the connection and the first client
messages; a running node also needs to agree on blocks with its committee
(SH-1), spread final blocks, negotiate accounts with other leaders (L2L),
catch up after a restart, and hand a member that fell behind its enclave's
off-chain state (MEM-4). Each is one registered dataclass here.

Off-chain enclave data travels only in ``enclave_state``, whose payload is
sealed under an epoch key (MEM-3) inside the already encrypted channel, and
only to nodes the sender has checked are members of that enclave. A block's
enclave writes never travel: every member re-executes the block (TX-6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagachain.core.block import Block
from sagachain.core.objects import StoredObject
from sagachain.core.tx import Transaction
from node.wire import Message, message
from shards import committee

MAX_BLOCKS_PER_REPLY = 64  # blocks in one ``blocks`` answer: keeps a reply well under the frame limit
MAX_OBJECTS_PER_REPLY = 256  # objects in one ``objects`` answer


# -- between committee members (SH-1) -------------------------------------------------


@message("consensus")
@dataclass(frozen=True, slots=True, kw_only=True)
class Consensus(Message):
    """One committee message (proposal, prevote, precommit, commit, decision) of ``shards.committee``."""

    body: committee.Message


@message("forward_tx")
@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardTx(Message):
    """A transaction a node accepted, handed to the committee members of the shard that runs it."""

    tx: Transaction


@message("final_block")
@dataclass(frozen=True, slots=True, kw_only=True)
class FinalBlock(Message):
    """Gossip: a block final with its quorum certificate (SH-1), for every node's copy of the chain."""

    block: Block


@message("get_blocks")
@dataclass(frozen=True, slots=True, kw_only=True)
class GetBlocks(Message):
    """Catch-up: the final blocks of ``shard`` from ``from_height`` on, at most ``limit``."""

    shard: str
    from_height: int
    limit: int


@message("blocks")
@dataclass(frozen=True, slots=True, kw_only=True)
class Blocks(Message):
    """Answer to GetBlocks, in height order; fewer than asked means the answerer has no more."""

    shard: str
    blocks: tuple[Block, ...]

    def __post_init__(self) -> None:
        if len(self.blocks) > MAX_BLOCKS_PER_REPLY:
            raise ValueError(f"{len(self.blocks)} blocks; at most {MAX_BLOCKS_PER_REPLY} per reply")


@message("l2l_request")
@dataclass(frozen=True, slots=True, kw_only=True)
class L2LRequest(Message):
    """L2L-1: shard ``requester`` asks the committee of the owning shard to release ``account``.

    ``arrived`` and ``tx_id`` are the priority of the oldest transaction behind
    the request (older wins, then the lower id), as ``shards.placement.Priority``.
    """

    account: bytes
    requester: str
    arrived: int
    tx_id: bytes


# -- between enclave members (MEM-4) ---------------------------------------------------


@message("get_enclave_state")
@dataclass(frozen=True, slots=True, kw_only=True)
class GetEnclaveState(Message):
    """A member (re)joining: send me the enclave's off-chain state. Refused to non-members."""

    enclave: str


@message("enclave_state")
@dataclass(frozen=True, slots=True, kw_only=True)
class EnclaveState(Message):
    """Answer to GetEnclaveState: the state as of ``heads`` (each enclave shard's height),
    sealed under the key of ``epoch``, the sender's latest. No key travels: a member derives
    it from the roster's public key material (MEM-3), so a node that joined opens the
    current state and nothing sealed before its epoch."""

    enclave: str
    heads: dict[str, int]
    epoch: int
    sealed: bytes


# -- client requests added in version 2 ------------------------------------------------


@message("get_object")
@dataclass(frozen=True, slots=True, kw_only=True)
class GetObject(Message):
    id: bytes


@message("object")
@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectReply(Message):
    """Answer to GetObject: the public object, or nil when unknown or off-chain (MEM-4)."""

    id: bytes
    value: StoredObject | None


@message("get_objects")
@dataclass(frozen=True, slots=True, kw_only=True)
class GetObjects(Message):
    """The public objects ``account`` owns with ids above ``after``, in id order, at most ``limit``
    (a roster's entries and epochs, a mailbox's envelopes, the registry's records)."""

    account: bytes
    after: bytes = b""
    limit: int = 256


@message("objects")
@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectsReply(Message):
    """Answer to GetObjects. ``more``: objects past the last one remain; ask again with it as ``after``.
    An enclave account's objects are off-chain (MEM-4): the answer is empty for one."""

    account: bytes
    objects: dict[bytes, StoredObject]
    more: bool



@message("get_receipt")
@dataclass(frozen=True, slots=True, kw_only=True)
class GetReceipt(Message):
    tx: bytes  # the transaction id


@message("receipt")
@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt(Message):
    """Where a transaction stands on the answering node.

    ``status``: ``"final"`` (in block ``shard``/``height`` at entry ``index``;
    ``ok`` says whether its script succeeded), ``"pending"`` (queued here),
    ``"refused"`` (with ``rule`` and ``reason``) or ``"unknown"``.
    """

    tx: bytes
    status: str
    shard: str | None
    height: int
    index: int
    ok: bool | None
    rule: str | None
    reason: str | None


@message("get_status")
@dataclass(frozen=True, slots=True, kw_only=True)
class GetStatus(Message):
    """What ``sagachain node status ADDRESS`` asks."""


@message("status")
@dataclass(frozen=True, slots=True, kw_only=True)
class Status(Message):
    """A node's view of itself; ``data`` is a map described in docs/PROTOCOL.md 8.9."""

    data: dict[str, Any]
