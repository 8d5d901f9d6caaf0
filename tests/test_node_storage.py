"""The node's SQLite file: round trips, all-or-nothing appends, refusals, reopening,
exports that audit well-formed, and surviving SIGKILL at random moments."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
from chainkit import Run, simulate, small

from node.storage import NodeStore
from sagachain.sim.scenario import Scenario
from sagachain.audit.auditor import audit_chain
from sagachain.core.block import Block, MixedEntry, OpenEntry
from sagachain.core.chainfile import read_chain
from sagachain.core.objects import StoredObject
from sagachain.errors import InputError, RuleViolation
from shards.enclave_store import EnclaveStore
from shards.tools import default_tools

ROOT = Path(__file__).resolve().parents[1]
KEY = bytes(range(32))


@pytest.fixture(scope="module")
def run() -> Run:
    return simulate(small)


def updates_of(block: Block) -> dict[bytes, StoredObject | None]:
    """The public object changes a block's entries carry, as a node would store them."""
    changes: dict[bytes, StoredObject | None] = {}
    for entry in block.entries:
        if isinstance(entry, OpenEntry | MixedEntry):
            changes.update({u.id: u.value for u in entry.updates})
    return changes


def sealed_for(run: Run, block: Block, nonce: int) -> dict[str, bytes]:
    """A sealed enclave state for blocks of enclave shards (distinct per block by its nonce)."""
    enclave = next((e.id for e in run.genesis.enclaves if block.shard in e.shards), None)
    if enclave is None:
        return {}
    return {enclave: run.initial[enclave].seal(KEY, nonce.to_bytes(24, "big"))}


def fill(store: NodeStore, run: Run, blocks: list[Block]) -> None:
    for i, block in enumerate(blocks):
        store.append_final(block, updates_of(block), sealed_for(run, block, i))


def test_round_trip(tmp_path: Path, run: Run) -> None:
    public = tuple(s.id for s in run.genesis.shards if not s.id.startswith("acme"))
    store = NodeStore.create(tmp_path / "node.sqlite", run.genesis, shards=public)
    assert store.genesis() == run.genesis
    alice = next(a.id for a in run.genesis.accounts if a.name == "alice")
    assert store.objects_of(alice) == {o.id: o.value for o in run.genesis.objects if o.value.owner == alice}

    txs = [e.tx for b in run.blocks for e in b.tx_entries()]
    assert all(store.add_pending(tx) for tx in txs)
    assert not store.add_pending(txs[0])
    assert store.pending() == txs
    assert store.remove_pending([txs[0].id, b"\0" * 32]) == 1  # a refused transaction leaves the queue
    assert store.pending() == txs[1:]

    fill(store, run, run.blocks)
    finals = store.blocks()
    assert [f.block for f in finals] == run.blocks
    assert [f.seq for f in finals] == sorted({f.seq for f in finals})
    assert store.pending() == []
    for shard in store.genesis().shards:
        mine = [b for b in run.blocks if b.shard == shard.id]
        assert [f.block for f in store.blocks(shard=shard.id)] == mine
        head = store.head(shard.id)
        assert (head.height, head.hash) == ((mine[-1].height, mine[-1].hash) if mine else (0, run.genesis.hash))
    assert [f.block for f in store.blocks(since_seq=finals[4].seq)] == run.blocks[5:]

    last: dict[bytes, StoredObject | None] = {}
    for block in run.blocks:
        last.update(updates_of(block))
    assert last and all(store.object(oid) == value for oid, value in last.items())

    sealed = store.enclave_state("acme")
    assert sealed is not None and sealed.seq == max(f.seq for f in finals if f.block.shard.startswith("acme"))
    assert EnclaveStore.unseal(KEY, sealed.sealed).objects == run.initial["acme"].objects
    assert store.enclave_state("beta") is None

    replayed = store.replay()
    assert replayed.heads == run.result.chain.heads
    assert replayed.objects == run.result.chain.objects
    store.set_meta("listen", b"127.0.0.1:7000")
    assert store.meta("listen") == b"127.0.0.1:7000" and store.meta("other") is None
    store.close()


def test_append_is_all_or_nothing(tmp_path: Path, run: Run) -> None:
    store = NodeStore.create(tmp_path / "node.sqlite", run.genesis)
    k = next(i for i, b in enumerate(run.blocks) if b.tx_entries() and updates_of(b))
    fill(store, run, run.blocks[:k])
    block = run.blocks[k]
    for entry in block.tx_entries():
        store.add_pending(entry.tx)
    good = updates_of(block)
    owner = next(v for v in good.values() if v is not None).owner
    bad = StoredObject(class_id=b"\1" * 32, owner=owner, fields={"ratio": 0.5})  # floats do not encode (OBJ-5)
    before = (store.blocks(), store.head(block.shard), store.pending(), store.enclave_state("acme"))

    with pytest.raises(RuleViolation, match="OBJ-5"):
        store.append_final(block, {**good, b"\2" * 32: bad}, {"acme": run.initial["acme"].seal(KEY, b"\3" * 24)})
    assert (store.blocks(), store.head(block.shard), store.pending(), store.enclave_state("acme")) == before
    assert all(store.object(oid) is None for oid in good) and store.object(b"\2" * 32) is None

    with pytest.raises(RuleViolation, match="MEM-4.*unsealed"):
        store.append_final(block, good, {"acme": run.initial["acme"].to_bytes()})
    assert store.blocks() == before[0]

    store.append_final(block, good)
    assert store.head(block.shard).hash == block.hash and store.pending() == []
    store.close()


def test_refuses_conflicting_and_unchained_blocks(tmp_path: Path, run: Run) -> None:
    store = NodeStore.create(tmp_path / "node.sqlite", run.genesis)
    first = run.blocks[0]
    second = next(b for b in run.blocks if b.shard == first.shard and b.height == 2)
    seq = store.append_final(first, {})
    assert store.append_final(first, {}) == seq  # repeating a committed append is harmless

    def altered(block: Block, **header: object) -> Block:
        return Block(header=replace(block.header, **header), entries=block.entries, qc=block.qc)

    with pytest.raises(RuleViolation, match=r"TX-5.*node\.sqlite.*conflicts with the final block"):
        store.append_final(altered(first, time=first.header.time + 1), {})
    with pytest.raises(RuleViolation, match=r"TX-5.*names parent"):
        store.append_final(altered(second, parent=b"\0" * 32), {})
    with pytest.raises(RuleViolation, match=r"TX-5.*does not follow the shard's stored head at height 1"):
        store.append_final(altered(second, height=3), {})
    with pytest.raises(RuleViolation, match=r"TX-5.*another chain"):
        store.append_final(altered(second, chain=b"\0" * 32), {})
    assert [f.block for f in store.blocks()] == [first]
    store.append_final(second, {})
    assert store.head(first.shard).height == 2
    store.close()


def test_reopen_and_refuse_foreign_files(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "node.sqlite"
    final = next(e.tx for b in run.blocks for e in b.tx_entries())
    fresh = replace(final, nonce=final.nonce + 1_000)
    with NodeStore.create(path, run.genesis) as store:
        fill(store, run, run.blocks)
        assert not store.add_pending(final)  # already final: a resubmission is not queued
        assert store.add_pending(fresh)
    with NodeStore.open(path) as store:
        assert [f.block for f in store.blocks()] == run.blocks
        assert store.pending() == [fresh]
        assert store.enclave_state("acme") is not None
        fill(store, run, run.blocks)  # every block is already there: nothing changes
        assert len(store.blocks()) == len(run.blocks)

    with pytest.raises(InputError, match="already exists"):
        NodeStore.create(path, run.genesis)
    broken = replace(run.genesis, objects=(*run.genesis.objects, replace(run.genesis.objects[0], id=b"\4" * 32,
                     value=run.genesis.objects[0].value.with_fields(ratio=0.5))))
    with pytest.raises(RuleViolation, match="OBJ-5"):
        NodeStore.create(tmp_path / "new.sqlite", broken)
    assert list(tmp_path.glob("new.sqlite*")) == []  # a failed create leaves no stub behind
    with pytest.raises(InputError, match=r"new.sqlite: shards \['Q9'\] are not in the genesis"):
        NodeStore.create(tmp_path / "new.sqlite", run.genesis, shards=("Q9",))
    with pytest.raises(InputError, match="missing.sqlite: no node database"):
        NodeStore.open(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InputError, match="junk.sqlite is not a SagaChain node database"):
        NodeStore.open(junk)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(InputError, match="other.sqlite is not a SagaChain node database"):
        NodeStore.open(other)
    with sqlite3.connect(other) as db:  # the foreign file was not touched (not switched to WAL)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    with sqlite3.connect(path) as db:
        db.execute("UPDATE sagachain_schema SET version = version + 1")
    with pytest.raises(InputError, match="node.sqlite has node database schema version 2, newer"):
        NodeStore.open(path)


def test_export_audits_well_formed(tmp_path: Path, run: Run) -> None:
    with NodeStore.create(tmp_path / "node.sqlite", run.genesis) as store:
        fill(store, run, run.blocks)
        store.export_chain(tmp_path / "export.sgc")
    chain = read_chain(tmp_path / "export.sgc")
    assert chain.blocks == run.blocks
    report = audit_chain(chain, default_tools())
    assert report.verdict == "well-formed", report.violations


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from node.storage import NodeStore
    from sagachain.core.chainfile import read_chain
    from test_node_storage import KEY, updates_of
    from shards.enclave_store import EnclaveStore

    db, chain = Path(sys.argv[1]), read_chain(Path(sys.argv[2]))
    store = NodeStore.open(db)
    state = EnclaveStore("acme")
    for i, block in enumerate(chain.blocks):
        for entry in block.tx_entries():
            store.add_pending(entry.tx)
        sealed = {"acme": state.seal(KEY, i.to_bytes(24, "big"))} if block.shard.startswith("acme") else {}
        store.append_final(block, updates_of(block), sealed)
        print(i, flush=True)
    """
)


def longer(s: Scenario) -> None:
    """``small`` stretched to about a hundred blocks, so kills can land at many different points."""
    small(s)
    s.configure(duration=40_000, block_interval=300)
    s.random_transfers(150, start=6_000, end=38_000)


def test_survives_sigkill(tmp_path: Path) -> None:
    """A child appends a chain block by block and is killed at random moments; after each
    kill the file is intact, holds every block the child reported, and takes more."""
    run = simulate(longer)
    db, chain = tmp_path / "node.sqlite", tmp_path / "chain.sgc"
    NodeStore.create(db, run.genesis).close()
    with NodeStore.create(tmp_path / "source.sqlite", run.genesis) as source:
        fill(source, run, run.blocks)
        source.export_chain(chain)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    rng = random.Random(7)
    for target in sorted(rng.sample(range(len(run.blocks) - 5), 5)):
        child = subprocess.Popen(
            [sys.executable, str(script), str(db), str(chain)], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
        )
        assert child.stdout is not None
        reported = -1
        for line in child.stdout:
            reported = int(line)
            if reported >= target:
                break
        assert reported >= target, f"the child stopped at block {reported} before it was killed"
        time.sleep(rng.random() * 0.003)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()

        with sqlite3.connect(db) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        with NodeStore.open(db) as store:
            stored = [f.block for f in store.blocks()]
            assert len(stored) > reported
            assert stored == run.blocks[: len(stored)]
            if len(stored) < len(run.blocks):  # appending goes on where the child stopped
                nxt = run.blocks[len(stored)]
                store.append_final(nxt, updates_of(nxt))

    with NodeStore.open(db) as store:
        fill(store, run, run.blocks)
        assert store.pending() == []
        store.export_chain(tmp_path / "after.sgc")
    assert audit_chain(read_chain(tmp_path / "after.sgc"), default_tools()).ok
