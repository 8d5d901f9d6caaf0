"""The chain file: every shard's blocks in one file (docs/FORMAT.md).

Layout: an 8-byte magic, then records, each a 4-byte big-endian length and
that many bytes of canonical MessagePack (OBJ-5). The first record is the
genesis, then one record per block in the order the writer saw them become
final, then an end record holding the record count and the BLAKE3 digest of
every byte before the end record. A reader therefore detects a change to any
byte: in a block it breaks the block hash, the quorum signatures or the
canonical form; anywhere at all it breaks the digest (FMT-1).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import blake3

from sagachain.core.block import Block, block_from_wire, block_to_wire
from sagachain.core.encoding import decode, encode
from sagachain.core.genesis import Genesis
from sagachain.core.wire import WireError, from_wire
from sagachain.errors import ChainFormatError, RuleViolation

MAGIC = b"SAGACHN\x01"
LENGTH = struct.Struct(">I")
MAX_RECORD = 1024 * 1024 * 1024  # 1 GiB: a genesis of a million accounts is about 300 MiB


class ChainWriter:
    """Writes a chain file record by record, keeping the running digest."""

    def __init__(self, out: BinaryIO, genesis: Genesis) -> None:
        self._out = out
        self._digest = blake3.blake3()
        self._count = 0
        self._emit(MAGIC)
        self._record({"type": "genesis", "genesis": genesis})

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self._digest.update(data)

    def _record(self, value: dict[str, Any]) -> None:
        data = encode(value)
        self._emit(LENGTH.pack(len(data)) + data)
        self._count += 1

    def block(self, block: Block) -> None:
        self._record({"type": "block", "block": block_to_wire(block)})

    def close(self) -> None:
        data = encode({"type": "end", "records": self._count, "digest": self._digest.digest()})
        self._out.write(LENGTH.pack(len(data)) + data)
        self._out.flush()


RECORD_KEYS = {"genesis": {"type", "genesis"}, "block": {"type", "block"}, "end": {"type", "records", "digest"}}


def write_chain(path: Path, genesis: Genesis, blocks: list[Block]) -> None:
    """Write a chain file durably: once this returns, the bytes are on disk (fsync)."""
    with path.open("wb") as out:
        writer = ChainWriter(out, genesis)
        for block in blocks:
            writer.block(block)
        writer.close()
        os.fsync(out.fileno())


@dataclass
class ChainFile:
    """A chain file as read: the records, and what the reader noticed on the way."""

    genesis: Genesis
    blocks: list[Block]
    offsets: list[int]
    digest_ok: bool
    stored_digest: bytes
    noncanonical: list[int] = field(default_factory=list)


def _records(data: bytes) -> Iterator[tuple[int, bytes]]:
    pos = len(MAGIC)
    while pos < len(data):
        if pos + LENGTH.size > len(data):
            raise ChainFormatError("the file ends inside a record length", offset=pos, expected="a 4-byte length")
        (size,) = LENGTH.unpack_from(data, pos)
        if size > MAX_RECORD:
            raise ChainFormatError(f"record length {size} exceeds {MAX_RECORD}", offset=pos, expected="a record length")
        if pos + LENGTH.size + size > len(data):
            raise ChainFormatError(
                f"record of {size} bytes runs past the end of the file", offset=pos, expected=f"{size} record bytes"
            )
        yield pos, data[pos + LENGTH.size : pos + LENGTH.size + size]
        pos += LENGTH.size + size


def read_chain_bytes(data: bytes) -> ChainFile:
    """Parse a chain file; raise ChainFormatError with the byte offset if it is not one."""
    if data[: len(MAGIC)] != MAGIC:
        raise ChainFormatError("not a SagaChain chain file", offset=0, expected=f"magic {MAGIC!r}")
    genesis: Genesis | None = None
    blocks: list[Block] = []
    offsets: list[int] = []
    noncanonical: list[int] = []
    end: dict[str, Any] | None = None
    for offset, raw in _records(data):
        if end is not None:
            raise ChainFormatError("bytes after the end record", offset=offset, expected="end of file")
        value = _decode(raw, offset)
        try:
            if encode(value) != raw:
                noncanonical.append(offset)
        except RuleViolation as exc:  # a float, or an integer out of range: not hashable data
            raise ChainFormatError(exc.message, offset=offset, expected="canonical MessagePack (OBJ-5)") from None
        kind = value.get("type")
        if kind in RECORD_KEYS and set(value) != RECORD_KEYS[kind]:
            raise ChainFormatError(
                f"{kind} record has keys {sorted(map(str, value))}", offset=offset, expected=f"exactly {sorted(RECORD_KEYS[kind])}"
            )
        try:
            if genesis is None:
                if kind != "genesis":
                    raise ChainFormatError(f"first record is {kind!r}", offset=offset, expected="the genesis record")
                genesis = from_wire(Genesis, value.get("genesis"), "genesis")
            elif kind == "block":
                blocks.append(block_from_wire(value.get("block"), f"block record at byte {offset}"))
                offsets.append(offset)
            elif kind == "end":
                end = value
                end_offset = offset
            else:
                raise ChainFormatError(f"unknown record type {kind!r}", offset=offset, expected="block or end")
        except WireError as exc:
            raise ChainFormatError(str(exc), offset=offset, expected="a well-formed record") from None
    if genesis is None:
        raise ChainFormatError("no records", offset=len(MAGIC), expected="the genesis record")
    if end is None:
        raise ChainFormatError("the file has no end record (truncated?)", offset=len(data), expected="the end record")
    stored = end.get("digest")
    count = end.get("records")
    if not isinstance(stored, bytes) or type(count) is not int or count != len(blocks) + 1:
        raise ChainFormatError("malformed end record", offset=end_offset, expected="records count and digest")
    digest_ok = blake3.blake3(data[:end_offset]).digest() == stored
    return ChainFile(genesis, blocks, offsets, digest_ok, stored, noncanonical)


def _decode(raw: bytes, offset: int) -> dict[str, Any]:
    try:
        value = decode(raw)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise ChainFormatError(f"record is not MessagePack ({exc})", offset=offset, expected="a MessagePack map") from None
    if not isinstance(value, dict):
        raise ChainFormatError("record is not a map", offset=offset, expected="a MessagePack map")
    return value


def read_chain(path: Path) -> ChainFile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ChainFormatError(f"cannot read {path}: {exc.strerror}", offset=0, expected="a readable file") from None
    return read_chain_bytes(data)
