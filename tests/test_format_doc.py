"""docs/FORMAT.md is true: an independent reader written from the document alone.

The reader below uses msgpack, blake3 and pynacl directly, never
sagachain.core.chainfile or sagachain.core.encoding. The files it reads are
written by the real writer (``write_chain``) from a tiny genesis and two
blocks built with the core records. If the writer and the document part ways,
a test here fails; the field-name tests make the document fail loudly when a
record grows a field it does not describe.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import sys
from pathlib import Path
from typing import Any

import blake3
import msgpack
import pytest
from nacl.signing import VerifyKey

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "FORMAT.md"
if str(ROOT) not in sys.path:  # the package is not installed in .venv; run from the checkout
    sys.path.insert(0, str(ROOT))

from sagachain.core import block as block_mod  # noqa: E402
from sagachain.core import genesis as genesis_mod  # noqa: E402
from sagachain.core import objects as objects_mod  # noqa: E402
from sagachain.core.wire import wire_fields  # noqa: E402
from sagachain.core import tx as tx_mod  # noqa: E402
from sagachain.core.block import (  # noqa: E402
    Block,
    BlockHeader,
    DeployEntry,
    ObjectUpdate,
    OpenEntry,
    Vote,
    body_hash,
)
from sagachain.core.chainfile import write_chain  # noqa: E402
from sagachain.core.encoding import ObjRef  # noqa: E402
from sagachain.core.genesis import Genesis, Params, PublicObject  # noqa: E402
from sagachain.core.keys import KeyPair  # noqa: E402
from sagachain.core.objects import (  # noqa: E402
    ACCOUNT_CLASS_ID,
    PUBLIC_RUNTIME_ID,
    AccountRecord,
    ClassRecord,
    MethodSig,
    NodeRecord,
    ShardRecord,
    StoredObject,
    account_id_for,
    class_id_for,
    code_hash,
    node_id_for,
)
from sagachain.core.tx import make_transaction  # noqa: E402

# ---------------------------------------------------------------------------
# The independent reader (FORMAT.md sections 1-3 only)
# ---------------------------------------------------------------------------

MAGIC = b"SAGACHN\x01"
MAX_RECORD = 1024 * 1024 * 1024


class FormatError(Exception):
    pass


def canon_tree(value: Any) -> Any:
    """Section 3: maps sorted by the canonical encoding of their keys, no floats, ext 1 only."""
    if isinstance(value, float):
        raise FormatError("float in canonical data")
    if isinstance(value, msgpack.ExtType):
        if value.code != 1 or len(value.data) != 32:
            raise FormatError(f"extension type {value.code} of {len(value.data)} bytes")
        return value
    if isinstance(value, list | tuple):
        return [canon_tree(v) for v in value]
    if isinstance(value, dict):
        items = [(canon_tree(k), canon_tree(v)) for k, v in value.items()]
        items.sort(key=lambda kv: canon(kv[0]))
        return dict(items)  # msgpack writes a dict in insertion order
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value <= 2**64 - 1:
        raise FormatError("integer out of range")
    return value


def canon(value: Any) -> bytes:
    return msgpack.packb(canon_tree(value), use_bin_type=True)


def H(value: Any) -> bytes:
    return blake3.blake3(canon(value)).digest()


def derive_id(*parts: Any) -> bytes:
    return H(["sagachain-id", *parts])


def unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False, use_list=True)


@dataclasses.dataclass
class Parsed:
    records: list[tuple[int, bytes, dict[str, Any]]]  # offset of the length prefix, body, value
    end: dict[str, Any]
    end_offset: int
    data: bytes


def read(data: bytes) -> Parsed:
    if data[:8] != MAGIC:
        raise FormatError("bad magic or version")
    pos, records, end, end_offset = 8, [], None, -1
    while pos < len(data):
        if end is not None:
            raise FormatError("bytes after the end record")
        if pos + 4 > len(data):
            raise FormatError("file ends inside a length")
        (size,) = struct.unpack_from(">I", data, pos)
        if size > MAX_RECORD or pos + 4 + size > len(data):
            raise FormatError("record runs past the end")
        raw = data[pos + 4 : pos + 4 + size]
        value = unpack(raw)
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            raise FormatError("record is not a map with a type")
        if canon(value) != raw:
            raise FormatError(f"record at {pos} is not canonical")
        if value["type"] == "end":
            end, end_offset = value, pos
        else:
            expected = "genesis" if not records else "block"
            if value["type"] != expected or set(value) != {"type", expected}:
                raise FormatError(f"record at {pos}: {value['type']!r}, expected {expected!r}")
            records.append((pos, raw, value))
        pos += 4 + size
    if end is None:
        raise FormatError("no end record")
    if set(end) != {"type", "records", "digest"} or type(end["records"]) is not int or end["records"] != len(records):
        raise FormatError("bad end record")
    if end["digest"] != blake3.blake3(data[:end_offset]).digest():
        raise FormatError("digest mismatch (FMT-1)")
    return Parsed(records, end, end_offset, data)


# ---------------------------------------------------------------------------
# The example chain (FORMAT.md section 10)
# ---------------------------------------------------------------------------

NODE_KEY = KeyPair.derive("format-doc", "n1")
ALICE_KEY = KeyPair.derive("format-doc", "alice")


def example_genesis() -> Genesis:
    node = node_id_for(NODE_KEY.public)
    alice = account_id_for("alice")
    return Genesis(
        chain_id="doc",
        params=Params(foundation=alice),
        runtimes=(),
        classes=(),
        nodes=(NodeRecord(id=node, name="n1", public_key=NODE_KEY.public, operator="op", runtimes=(PUBLIC_RUNTIME_ID,)),),
        shards=(ShardRecord(id="P0", enclave=None, committee=(node,)),),
        enclaves=(),
        accounts=(AccountRecord(id=alice, name="alice", class_id=ACCOUNT_CLASS_ID, enclave=None, public_key=ALICE_KEY.public, shard="P0"),),
        objects=(PublicObject(id=alice, value=StoredObject(class_id=ACCOUNT_CLASS_ID, owner=alice, fields={"balance": 100})),),
    )


def _seal(genesis: Genesis, height: int, parent: bytes, entries: tuple[Any, ...], fees: int, tax: int) -> Block:
    shard = genesis.shards[0]
    header = BlockHeader(
        chain=genesis.hash, shard="P0", height=height, parent=parent, time=1000 * height, producer=shard.committee[0],
        committee=shard.committee_hash(), body=body_hash(entries), gas_floor=100, gas_basis=(), coinbase=50, fees=fees, tax=tax,
    )
    return Block(header=header, entries=entries, qc=(Vote(signer=shard.committee[0], signature=NODE_KEY.sign(header.hash)),))


def build_example() -> tuple[Genesis, list[Block]]:
    genesis = example_genesis()
    alice = account_id_for("alice")
    tx = make_transaction(key=ALICE_KEY, sender=alice, nonce=1, gas_limit=500, gas_payer=alice, accounts={"me": alice}, script="me.balance")
    open_entry = OpenEntry(
        tx=tx, ok=True, error=None, gas_used=20, fee=20, tax=2,
        updates=(ObjectUpdate(id=alice, value=StoredObject(class_id=ACCOUNT_CLASS_ID, owner=alice, fields={"balance": 80})),),
        log=("hello", ObjRef(alice), -40, 2**40),
    )
    first = _seal(genesis, 1, genesis.hash, (open_entry,), 20, 2)
    code = "class Counter:\n    def bump(self):\n        self.n = self.n + 1\n"
    cls = ClassRecord(
        id=class_id_for("Counter"), name="Counter", base=None, runtime=PUBLIC_RUNTIME_ID,
        methods=(MethodSig(name="bump", params=(), allow="any"),), code=code, code_hash=code_hash(code),
        private=False, enclave=None, owner=None,
    )
    draft = DeployEntry(cls=cls, deployer=alice, signature=b"")
    deploy = DeployEntry(cls=cls, deployer=alice, signature=ALICE_KEY.sign(draft.signed_bytes()))
    second = _seal(genesis, 2, first.hash, (deploy,), 0, 0)
    return genesis, [first, second]


@pytest.fixture
def chain_bytes(tmp_path: Path) -> bytes:
    genesis, blocks = build_example()
    path = tmp_path / "chain.sgc"
    write_chain(path, genesis, blocks)
    return path.read_bytes()


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_framing_count_digest_and_canonical_records(chain_bytes: bytes) -> None:
    parsed = read(chain_bytes)
    assert chain_bytes[:7] == b"SAGACHN" and chain_bytes[7] == 1
    assert [v["type"] for _, _, v in parsed.records] == ["genesis", "block", "block"]
    assert parsed.end["records"] == 3
    # The end record is the last thing in the file.
    (size,) = struct.unpack_from(">I", chain_bytes, parsed.end_offset)
    assert parsed.end_offset + 4 + size == len(chain_bytes)


def test_hashes_ids_and_signatures_are_as_documented(chain_bytes: bytes) -> None:
    parsed = read(chain_bytes)
    genesis = parsed.records[0][2]["genesis"]
    genesis_hash = H(["genesis", genesis])
    assert genesis_hash == example_genesis().hash  # cross-check with the implementation

    nodes = {n["id"]: n for n in genesis["nodes"]}
    accounts = {a["id"]: a for a in genesis["accounts"]}
    for node_id, node in nodes.items():
        assert node_id == derive_id("node", node["public_key"])
    assert account_id_for("alice") == derive_id("account", "alice")
    shards = {s["id"]: s for s in genesis["shards"]}

    parents: dict[str, bytes] = {}
    heights: dict[str, int] = {}
    for _, _, record in parsed.records[1:]:
        blk = record["block"]
        assert set(blk) == {"header", "entries", "qc"}
        header = blk["header"]
        assert set(header) == set(wire_fields(BlockHeader))
        block_hash = H(["block", header])
        assert header["chain"] == genesis_hash
        assert header["parent"] == parents.get(header["shard"], genesis_hash)
        assert header["height"] == heights.get(header["shard"], 0) + 1
        heights[header["shard"]] = header["height"]
        assert header["body"] == H(["body", blk["entries"]])
        shard = shards[header["shard"]]
        assert header["committee"] == H(["committee", shard["id"], shard["committee"]])
        signers = set()
        for vote in blk["qc"]:
            VerifyKey(nodes[vote["signer"]]["public_key"]).verify(block_hash, vote["signature"])
            signers.add(vote["signer"])
        assert 3 * len(signers) > 2 * len(shard["committee"]) and header["producer"] in signers
        parents[header["shard"]] = block_hash
        for entry in blk["entries"]:
            if entry["type"] in ("open", "enclave", "mixed"):
                tx = entry["tx"]
                unsigned = {k: v for k, v in tx.items() if k != "signature"}
                assert len(unsigned) == 6
                VerifyKey(accounts[tx["sender"]]["public_key"]).verify(H(["tx", unsigned]), tx["signature"])
            if entry["type"] == "deploy":
                cls = entry["cls"]
                assert cls["id"] == derive_id("class", cls["name"])
                assert cls["code_hash"] == H(["code", cls["code"]])
                digest = H(["deploy", cls, entry["deployer"]])
                VerifyKey(accounts[entry["deployer"]]["public_key"]).verify(digest, entry["signature"])
    _, blocks = build_example()
    assert parents["P0"] == blocks[-1].hash  # cross-check with the implementation


def test_object_references_inside_records_are_ext_type_1(chain_bytes: bytes) -> None:
    """FORMAT.md section 4: an ObjRef inside a record is written as ext type 1 (c7 20 01 + id)."""
    parsed = read(chain_bytes)
    log = parsed.records[1][2]["block"]["entries"][0]["log"]
    ext = msgpack.ExtType(1, account_id_for("alice"))
    assert log == ["hello", ext, -40, 2**40]
    assert b"\xc7\x20\x01" + account_id_for("alice") in chain_bytes
    assert canon(ext) == b"\xc7\x20\x01" + account_id_for("alice")


def test_key_order_is_by_encoded_key_not_alphabetical(chain_bytes: bytes) -> None:
    parsed = read(chain_bytes)
    raw = parsed.records[1][1]
    assert list(unpack(raw)["block"]) == ["qc", "header", "entries"]
    assert list(unpack(raw)) == ["type", "block"]


@pytest.mark.parametrize("where", ["magic", "genesis", "block", "digest"])
def test_any_changed_byte_is_refused(chain_bytes: bytes, where: str) -> None:
    parsed = read(chain_bytes)
    offset = {
        "magic": 7,
        "genesis": parsed.records[0][0] + 40,
        "block": parsed.records[2][0] + 4 + len(parsed.records[2][1]) - 3,
        "digest": len(chain_bytes) - 12,
    }[where]
    broken = bytearray(chain_bytes)
    broken[offset] ^= 0x01
    with pytest.raises(FormatError):
        read(bytes(broken))


def test_truncated_file_is_refused(chain_bytes: bytes) -> None:
    for cut in (3, 10, len(chain_bytes) - 1):
        with pytest.raises(FormatError):
            read(chain_bytes[:cut])


def test_worked_example_matches_the_writer(tmp_path: Path) -> None:
    """The hexdump of section 10 is what write_chain produces for the example genesis."""
    path = tmp_path / "doc.sgc"
    write_chain(path, example_genesis(), [])
    data = path.read_bytes()
    text = DOC.read_text()
    block = re.search(r"```hexdump\n(.*?)```", text, re.S)
    assert block, "FORMAT.md has no ```hexdump block"
    lines = [ln for ln in block.group(1).splitlines() if re.match(r"^[0-9a-f]{8}: ", ln)]
    assert lines
    for line in lines:
        offset = int(line[:8], 16)
        expected = bytes.fromhex(line[10:49].replace(" ", ""))
        assert data[offset : offset + len(expected)] == expected, f"FORMAT.md hexdump line {line[:8]} is stale"
    assert f"it is {len(data)}\nbytes" in text or f"it is {len(data)} bytes" in text
    parsed = read(data)
    assert parsed.end["records"] == 1


RECORDS = [
    block_mod.BlockHeader, block_mod.Block, block_mod.Head, block_mod.Vote, block_mod.ObjectUpdate, block_mod.EntryRef,
    block_mod.OpenEntry, block_mod.EnclaveEntry, block_mod.MixedEntry, block_mod.ReleaseEntry, block_mod.AcquireEntry,
    block_mod.DeployEntry, block_mod.RollbackEntry, block_mod.BreakawayEntry, tx_mod.Transaction, tx_mod.AccountUse,
    genesis_mod.Genesis, genesis_mod.Params, genesis_mod.PublicObject, objects_mod.StoredObject, objects_mod.ClassRecord,
    objects_mod.MethodSig, objects_mod.RuntimeRecord, objects_mod.NodeRecord, objects_mod.AccountRecord,
    objects_mod.ShardRecord, objects_mod.EnclaveRecord,
]


def test_doc_names_every_block_header_field() -> None:
    text = DOC.read_text()
    missing = [name for name in wire_fields(BlockHeader) if f"`{name}`" not in text]
    assert not missing, f"docs/FORMAT.md does not describe BlockHeader fields {missing}"


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.__name__)
def test_doc_names_every_record_and_field(record: type) -> None:
    text = DOC.read_text()
    assert record.__name__ in text, f"docs/FORMAT.md does not mention {record.__name__}"
    missing = [name for name in wire_fields(record) if f"`{name}`" not in text]
    assert not missing, f"docs/FORMAT.md does not describe {record.__name__} fields {missing}"


def test_doc_names_every_entry_type() -> None:
    text = DOC.read_text()
    for kind in block_mod.ENTRY_TYPES:
        assert f'`"{kind}"`' in text, f"entry type {kind!r} is not in docs/FORMAT.md"


def write_from_doc(values: list[dict[str, Any]]) -> bytes:
    """A writer from FORMAT.md section 9 alone."""
    out = bytearray(MAGIC)
    for value in values:
        body = canon(value)
        out += struct.pack(">I", len(body)) + body
    end = canon({"type": "end", "records": len(values), "digest": blake3.blake3(bytes(out)).digest()})
    return bytes(out + struct.pack(">I", len(end)) + end)


def test_a_writer_from_the_doc_reproduces_the_file_byte_for_byte(chain_bytes: bytes) -> None:
    parsed = read(chain_bytes)
    assert write_from_doc([v for _, _, v in parsed.records]) == chain_bytes


def test_non_canonical_records_are_refused(chain_bytes: bytes) -> None:
    parsed = read(chain_bytes)
    genesis = parsed.records[0][2]
    # Same value, keys in alphabetical order instead of encoded-key order: not canonical.
    plain = msgpack.packb(_alphabetical(genesis), use_bin_type=True)
    assert plain != parsed.records[0][1]
    out = bytearray(MAGIC) + struct.pack(">I", len(plain)) + plain
    end = canon({"type": "end", "records": 1, "digest": blake3.blake3(bytes(out)).digest()})
    with pytest.raises(FormatError, match="not canonical"):
        read(bytes(out + struct.pack(">I", len(end)) + end))


def _alphabetical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _alphabetical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_alphabetical(v) for v in value]
    return value
