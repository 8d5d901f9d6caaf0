"""Blocks and their entries (TX-2..TX-5, L2L-1, TX-7, LIFE-1, SH-1).

A block is a header, a body of entries and a quorum certificate. The header
names the shard, its height, the parent's hash, the hash of the body and the
figures the money rules need (coinbase, fees, tax, the GAS-3 floor and the
blocks it was computed over). The block hash is the hash of the header; the
quorum certificate is the committee's signatures over that hash (SH-1).

Entry kinds:

- ``OpenEntry`` (TX-2): the transaction, its status, gas and full state updates.
- ``EnclaveEntry`` (TX-3): the transaction, the charged gas, the hash of the
  output state of the enclave accounts and the hash of the output log. Nothing
  else: no status, no gas used, no state.
- ``MixedEntry`` (TX-4): an enclave entry plus the full updates of every
  non-enclave object it changed.
- ``ReleaseEntry`` / ``AcquireEntry`` (L2L-1): one account leaving a shard and
  arriving on another.
- ``DeployEntry`` (CLS-1): a new class.
- ``RollbackEntry`` (TX-7): an enclave's accounts set back to an earlier state hash.
- ``BreakawayEntry`` (LIFE-1): an enclave's shard leaving the chain for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from sagachain.core.encoding import hash_value
from sagachain.core.objects import ClassRecord, StoredObject
from sagachain.core.tx import ENCLAVE, MIXED, OPEN, Transaction
from sagachain.core.wire import DERIVED, WireError, from_wire, register_codec, wire_fields


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectUpdate:
    """The full value of an object after a transaction; ``value`` None means deleted."""

    id: bytes
    value: StoredObject | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryRef:
    """Points at one entry of one block: a release, a transaction to roll back to."""

    shard: str
    height: int
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenEntry:
    """An open transaction's result (TX-2); everything needed to re-execute and compare."""

    tx: Transaction
    ok: bool
    error: str | None
    gas_used: int
    fee: int
    tax: int
    updates: tuple[ObjectUpdate, ...]
    log: tuple[Any, ...]

    kind = OPEN


@dataclass(frozen=True, slots=True, kw_only=True)
class EnclaveEntry:
    """An enclave transaction (TX-3): script, charged gas, output state hash, output log hash."""

    tx: Transaction
    gas_charged: int
    fee: int
    tax: int
    state_hash: bytes
    log_hash: bytes

    kind = ENCLAVE


@dataclass(frozen=True, slots=True, kw_only=True)
class MixedEntry:
    """A mixed transaction (TX-4): the enclave hashes and the non-enclave updates."""

    tx: Transaction
    gas_charged: int
    fee: int
    tax: int
    state_hash: bytes
    log_hash: bytes
    updates: tuple[ObjectUpdate, ...]

    kind = MIXED


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseEntry:
    """The owning shard gives up an account to ``to_shard`` (L2L-1).

    ``state_hash`` is the hash of every object the account owns at release;
    ``nonce`` is the sender nonce reached so far, so replay protection moves too.
    """

    account: bytes
    to_shard: str
    state_hash: bytes
    nonce: int

    kind = "release"


@dataclass(frozen=True, slots=True, kw_only=True)
class AcquireEntry:
    """The receiving shard takes the account released at ``release`` (L2L-1)."""

    account: bytes
    release: EntryRef
    state_hash: bytes

    kind = "acquire"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployEntry:
    """A class deployed on chain (CLS-1, CLS-3), signed by its deployer account."""

    cls: ClassRecord
    deployer: bytes
    signature: bytes

    kind = "deploy"

    def signed_bytes(self) -> bytes:
        return hash_value(["deploy", self.cls, self.deployer])


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackEntry:
    """TX-7: replaces the current state hash of ``accounts`` by the one ``to`` produced."""

    accounts: tuple[bytes, ...]
    to: EntryRef
    state_hash: bytes

    kind = "rollback"


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakawayEntry:
    """LIFE-1: this shard's enclave stops taking part in the chain; one-way."""

    enclave: str
    reason: str

    kind = "breakaway"


Entry: TypeAlias = (
    OpenEntry | EnclaveEntry | MixedEntry | ReleaseEntry | AcquireEntry | DeployEntry | RollbackEntry | BreakawayEntry
)
TxEntry: TypeAlias = OpenEntry | EnclaveEntry | MixedEntry
ENTRY_TYPES: dict[str, type] = {
    t.kind: t
    for t in (OpenEntry, EnclaveEntry, MixedEntry, ReleaseEntry, AcquireEntry, DeployEntry, RollbackEntry, BreakawayEntry)
}


def entry_to_wire(entry: Entry) -> dict[str, Any]:
    """An entry as a map tagged with its ``type``, ready for ``encode`` (nested records
    stay records: ``encode`` writes each as the map of its fields)."""
    return {"type": entry.kind, **{name: getattr(entry, name) for name in wire_fields(type(entry))}}


def entry_from_wire(data: Any, where: str) -> Entry:
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise WireError(f"{where}: an entry must be a map with a 'type' string")
    cls = ENTRY_TYPES.get(data["type"])
    if cls is None:
        raise WireError(f"{where}: unknown entry type {data['type']!r}; known: {sorted(ENTRY_TYPES)}")
    rest = {k: v for k, v in data.items() if k != "type"}
    return from_wire(cls, rest, f"{where}<{data['type']}>")


@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    """A shard's block height, as seen by a producer when it computed the GAS-3 floor."""

    shard: str
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockHeader:
    """Everything a block's hash covers (TX-5)."""

    chain: bytes
    shard: str
    height: int
    parent: bytes
    time: int
    producer: bytes
    committee: bytes
    body: bytes
    gas_floor: int
    gas_basis: tuple[Head, ...]
    coinbase: int
    fees: int
    tax: int
    hash: bytes = field(default=b"", init=False, repr=False, compare=False, metadata={DERIVED: True})

    def __post_init__(self) -> None:
        # The block hash: what votes sign and children name as parent; computed once.
        object.__setattr__(self, "hash", hash_value(["block", self]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Vote:
    """One committee member's signature over a block hash (SH-1)."""

    signer: bytes
    signature: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    header: BlockHeader
    entries: tuple[Entry, ...]
    qc: tuple[Vote, ...]

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def shard(self) -> str:
        return self.header.shard

    @property
    def height(self) -> int:
        return self.header.height

    def tx_entries(self) -> list[TxEntry]:
        return [e for e in self.entries if isinstance(e, OpenEntry | EnclaveEntry | MixedEntry)]


def body_hash(entries: tuple[Entry, ...] | list[Entry]) -> bytes:
    return hash_value(["body", [entry_to_wire(e) for e in entries]])


def block_to_wire(block: Block) -> dict[str, Any]:
    """A block as the map the chain file stores, ready for ``encode`` (see ``entry_to_wire``)."""
    return {"header": block.header, "entries": [entry_to_wire(e) for e in block.entries], "qc": list(block.qc)}


def block_from_wire(data: Any, where: str = "block") -> Block:
    if not isinstance(data, dict) or set(data) != {"header", "entries", "qc"}:
        raise WireError(f"{where}: a block is a map with exactly header, entries, qc")
    if not isinstance(data["entries"], list):
        raise WireError(f"{where}.entries: expected a list")
    header = from_wire(BlockHeader, data["header"], f"{where}.header")
    entries = tuple(entry_from_wire(e, f"{where}.entries[{i}]") for i, e in enumerate(data["entries"]))
    qc = from_wire(tuple[Vote, ...], data["qc"], f"{where}.qc")  # type: ignore[arg-type]
    return Block(header=header, entries=entries, qc=qc)


register_codec(Block, block_from_wire, block_to_wire)
