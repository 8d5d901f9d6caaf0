"""A node's one SQLite file: final blocks, owned state, pending transactions, sealed enclave state.

The protocol machines in ``shards`` say *what* to persist; this module is where
it lands, so that a node killed at any instant (SIGKILL, power loss) restarts
with every block it had declared final, the object state those blocks left,
the transactions it had accepted but not yet seen final, and its enclaves'
off-chain state as of the same block. Each finalized block is written with its
consequences in ONE SQLite transaction (``NodeStore.append_final``), so the
file never holds a block without its state changes or the reverse.

Tables (schema version ``SCHEMA_VERSION``):

``sagachain_schema``  one row: format name and version, so that a file made by
                      something else, or by a newer SagaChain, is refused.
``meta``              small key/value settings of the node.
``genesis``           one row: the chain's genesis, canonical bytes and hash.
``blocks``            final blocks; ``seq`` is the order they became final here.
``final_txs``         the id of every transaction in a final block, and its block.
``objects``           the public objects of the accounts this node's shards own.
``pending``           transactions accepted by this node and not yet final.
``enclave_states``    per enclave, the sealed (encrypted, MEM-4) off-chain state
                      as of the block ``seq`` that last changed it.

Blocks, genesis, objects and transactions are stored as their canonical
MessagePack (OBJ-5), the very bytes a chain file holds, so an export is a copy.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sagachain.core.block import Block, block_from_wire, block_to_wire
from sagachain.core.chainfile import write_chain
from sagachain.core.encoding import decode, encode
from sagachain.core.genesis import Genesis
from sagachain.core.ledger import ChainState
from sagachain.core.objects import StoredObject
from sagachain.core.tx import Transaction
from sagachain.core.wire import from_wire
from sagachain.errors import InputError, RuleViolation, StorageError

FORMAT = "sagachain-node"
SCHEMA_VERSION = 1
T = TypeVar("T")

SCHEMA = """
CREATE TABLE sagachain_schema (
    format  TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE genesis (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    hash    BLOB NOT NULL,
    encoded BLOB NOT NULL
);
-- Blocks are never deleted, so the rowid ``seq`` (max + 1) only increases.
CREATE TABLE blocks (
    seq     INTEGER PRIMARY KEY,
    shard   TEXT NOT NULL,
    height  INTEGER NOT NULL CHECK (height >= 1),
    hash    BLOB NOT NULL UNIQUE,
    parent  BLOB NOT NULL,
    encoded BLOB NOT NULL,
    UNIQUE (shard, height)
);
-- ``seq`` is the block that last wrote the object; NULL for a genesis value.
CREATE TABLE objects (
    id    BLOB PRIMARY KEY,
    owner BLOB NOT NULL,
    value BLOB NOT NULL,
    seq   INTEGER REFERENCES blocks (seq)
) WITHOUT ROWID;
CREATE INDEX objects_by_owner ON objects (owner);
-- The transactions of the final blocks: a resubmitted final transaction is not queued again.
CREATE TABLE final_txs (
    tx_id BLOB PRIMARY KEY,
    seq   INTEGER NOT NULL REFERENCES blocks (seq)
) WITHOUT ROWID;
CREATE TABLE pending (
    seq     INTEGER PRIMARY KEY,
    tx_id   BLOB NOT NULL UNIQUE,
    encoded BLOB NOT NULL
);
CREATE TABLE enclave_states (
    enclave TEXT PRIMARY KEY,
    seq     INTEGER NOT NULL REFERENCES blocks (seq),
    sealed  BLOB NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class FinalBlock:
    """A stored block and its place in this node's order of finality."""

    seq: int
    block: Block


@dataclass(frozen=True, slots=True)
class ShardHead:
    """A shard's last final block here; height 0 and the genesis hash when it has none,
    which is exactly what the next block must name as its parent (TX-5)."""

    shard: str
    height: int
    hash: bytes
    seq: int


@dataclass(frozen=True, slots=True)
class SealedState:
    """An enclave's sealed off-chain state and the final block (``seq``) it goes with."""

    enclave: str
    seq: int
    sealed: bytes


class NodeStore:
    """The node's SQLite file. Open with :meth:`open` or make with :meth:`create`.

    One connection, for one caller at a time. Every write method is one
    SQLite transaction and waits for its fsync, so a trio node should call it
    from a worker thread (``trio.to_thread.run_sync`` under a limiter of 1)
    rather than stall its event loop; hence the connection is not tied to
    the thread that opened it.
    """

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        """Use :meth:`open` or :meth:`create`: they check the file before handing it over."""
        self.path = path
        self._db = db
        self._genesis = self._load_genesis()
        self._shards = frozenset(s.id for s in self._genesis.shards)
        self._enclaves = frozenset(e.id for e in self._genesis.enclaves)

    # -- opening ---------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, genesis: Genesis, *, shards: tuple[str, ...] = ()) -> NodeStore:
        """Make a new node file for the chain of ``genesis``.

        ``shards`` are the shards this node serves: the genesis objects of the
        accounts they own are copied into ``objects``, so the node starts with
        the state its first block will change.
        """
        path = Path(path)
        if path.exists():
            raise InputError(f"{path} already exists; open it instead, or move it away to start a new node database")
        unknown = sorted(set(shards) - {s.id for s in genesis.shards})
        if unknown:
            raise InputError(f"{path}: shards {unknown} are not in the genesis; check the node's configured shards")
        db = _connect(path, "rwc")
        try:
            _configure(db, path)
            owned = {a.id for a in genesis.accounts if a.shard in shards}
            with _transaction(db, path, "creating the database"):
                for statement in _statements(SCHEMA):
                    db.execute(statement)
                db.execute("INSERT INTO sagachain_schema VALUES (?, ?)", (FORMAT, SCHEMA_VERSION))
                db.execute("INSERT INTO genesis VALUES (1, ?, ?)", (genesis.hash, encode(genesis)))
                db.executemany(
                    "INSERT INTO objects VALUES (?, ?, ?, NULL)",
                    [(o.id, o.value.owner, encode(o.value)) for o in genesis.objects if o.value.owner in owned],
                )
        except BaseException:
            db.close()
            for made in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):  # ours and empty: do not leave a stub
                made.unlink(missing_ok=True)
            raise
        return cls(path, db)

    @classmethod
    def open(cls, path: Path) -> NodeStore:
        """Open an existing node file; refuse anything that is not one this program can read."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no node database there; create one with `sagachain node init`")
        db = _connect(path, "rw")
        try:
            _check_schema(db, path)  # before any PRAGMA that would change a foreign file
            _configure(db, path)
            return cls(path, db)
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> NodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------

    def append_final(
        self,
        block: Block,
        object_updates: dict[bytes, StoredObject | None],
        enclave_sealed: dict[str, bytes] | None = None,
        meta: dict[str, bytes] | None = None,
    ) -> int:
        """Record ``block`` as final with its consequences, all or nothing; return its ``seq``.

        In one transaction: the block, the new values of the objects it changed
        (None deletes), the enclaves' sealed state after it, ``meta`` settings
        that describe that state (which heights it reflects), and the removal of
        its transactions from the pending queue. A block already stored (same
        hash) is not written again and its ``seq`` is returned, so a node that
        does not know whether its last append committed before a crash may
        simply repeat it. A block that conflicts with a stored one, or does not
        extend its shard's stored head, is refused (TX-5) and nothing is written.
        """
        sealed = enclave_sealed or {}
        for enclave, data in sealed.items():
            self._check_sealed(enclave, data)
        with _transaction(self._db, self.path, f"storing block {block.shard}/{block.height}"):
            existing = self._seq_of(block)
            if existing is not None:
                return existing
            cursor = self._db.execute(
                "INSERT INTO blocks (shard, height, hash, parent, encoded) VALUES (?, ?, ?, ?, ?)",
                (block.shard, block.height, block.hash, block.header.parent, encode(block_to_wire(block))),
            )
            seq = cursor.lastrowid
            assert seq is not None
            for oid, value in object_updates.items():
                if value is None:
                    self._db.execute("DELETE FROM objects WHERE id = ?", (oid,))
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)", (oid, value.owner, encode(value), seq)
                    )
            self._db.executemany(
                "INSERT OR REPLACE INTO enclave_states VALUES (?, ?, ?)",
                [(enclave, seq, data) for enclave, data in sealed.items()],
            )
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list((meta or {}).items()))
            tx_ids = [(e.tx.id,) for e in block.tx_entries()]
            self._db.executemany("INSERT OR IGNORE INTO final_txs VALUES (?, ?)", [(i, seq) for (i,) in tx_ids])
            self._db.executemany("DELETE FROM pending WHERE tx_id = ?", tx_ids)
            return seq

    def _seq_of(self, block: Block) -> int | None:
        """The stored seq of ``block`` if it is already final here; raise if it cannot be appended."""
        where = f"{self.path}: block {block.shard}/{block.height} ({block.hash.hex()[:12]})"
        if block.header.chain != self._genesis.hash:
            raise RuleViolation("TX-5", f"{where} names chain {block.header.chain.hex()[:12]}, not this database's "
                                f"genesis {self._genesis.hash.hex()[:12]}; it belongs to another chain")
        if block.shard not in self._shards:
            raise RuleViolation("TX-5", f"{where}: shard {block.shard!r} is not in the genesis {sorted(self._shards)}")
        row = self._db.execute(
            "SELECT seq, hash FROM blocks WHERE shard = ? AND height = ?", (block.shard, block.height)
        ).fetchone()
        if row is not None:
            if row[1] == block.hash:
                return int(row[0])
            raise RuleViolation("TX-5", f"{where} conflicts with the final block {row[1].hex()[:12]} stored at that "
                                "height; two final blocks at one height mean the committee equivocated: keep the "
                                "stored chain and report the pair")
        head = self.head(block.shard)
        if block.height != head.height + 1:
            raise RuleViolation("TX-5", f"{where} does not follow the shard's stored head at height {head.height}; "
                                "append the missing blocks first")
        if block.header.parent != head.hash:
            raise RuleViolation("TX-5", f"{where} names parent {block.header.parent.hex()[:12]}, but the stored "
                                f"block at height {head.height} is {head.hash.hex()[:12]}")
        return None

    def _check_sealed(self, enclave: str, data: bytes) -> None:
        """Refuse an unknown enclave, and a plaintext state bundle: only sealed bytes go to disk (MEM-4)."""
        if enclave not in self._enclaves:
            raise InputError(f"{self.path}: enclave {enclave!r} is not in the genesis {sorted(self._enclaves)}")
        try:
            tree = decode(data)
        except Exception:  # msgpack raises several unrelated types on bytes that are not MessagePack
            return
        if isinstance(tree, dict) and {"enclave", "objects"} <= set(tree):
            raise RuleViolation("MEM-4", f"{self.path}: the state of enclave {enclave!r} was given unsealed; seal it "
                                "with the enclave key (EnclaveStore.seal) before storing it")

    def add_pending(self, tx: Transaction) -> bool:
        """Queue an accepted transaction so a restart still has it; False when already queued or final."""
        with _transaction(self._db, self.path, "queueing a transaction"):
            if self._db.execute("SELECT 1 FROM final_txs WHERE tx_id = ?", (tx.id,)).fetchone() is not None:
                return False
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO pending (tx_id, encoded) VALUES (?, ?)", (tx.id, encode(tx))
            )
            return cursor.rowcount == 1

    def remove_pending(self, tx_ids: list[bytes]) -> int:
        """Drop queued transactions that will never be final here (refused, expired); return how many."""
        with _transaction(self._db, self.path, "removing pending transactions"):
            return sum(self._db.execute("DELETE FROM pending WHERE tx_id = ?", (i,)).rowcount for i in tx_ids)

    def set_meta(self, key: str, value: bytes) -> None:
        with _transaction(self._db, self.path, f"setting {key!r}"):
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- reading ---------------------------------------------------------------

    def genesis(self) -> Genesis:
        return self._genesis

    def blocks(self, shard: str | None = None, since_seq: int = 0) -> list[FinalBlock]:
        """Final blocks with ``seq`` above ``since_seq``, in the order they became final here."""
        rows = self._db.execute(
            "SELECT seq, hash, encoded FROM blocks WHERE seq > ? AND (? IS NULL OR shard = ?) ORDER BY seq",
            (since_seq, shard, shard),
        ).fetchall()
        return [FinalBlock(seq, self._load_block(seq, stored_hash, encoded)) for seq, stored_hash, encoded in rows]

    def final_block_of(self, tx_id: bytes) -> Block | None:
        """The final block holding transaction ``tx_id``, if it is final here."""
        row = self._db.execute(
            "SELECT b.seq, b.hash, b.encoded FROM final_txs f JOIN blocks b ON b.seq = f.seq WHERE f.tx_id = ?", (tx_id,)
        ).fetchone()
        return None if row is None else self._load_block(int(row[0]), bytes(row[1]), row[2])

    def block_at(self, shard: str, height: int) -> Block | None:
        row = self._db.execute("SELECT seq, hash, encoded FROM blocks WHERE shard = ? AND height = ?", (shard, height)).fetchone()
        return None if row is None else self._load_block(int(row[0]), bytes(row[1]), row[2])

    def blocks_from(self, shard: str, height: int, limit: int) -> list[Block]:
        """Up to ``limit`` final blocks of ``shard`` from ``height`` on, in height order (catch-up)."""
        rows = self._db.execute(
            "SELECT seq, hash, encoded FROM blocks WHERE shard = ? AND height >= ? ORDER BY height LIMIT ?",
            (shard, height, limit),
        ).fetchall()
        return [self._load_block(int(seq), bytes(h), encoded) for seq, h, encoded in rows]

    def head(self, shard: str) -> ShardHead:
        if shard not in self._shards:
            raise InputError(f"{self.path}: shard {shard!r} is not in the genesis {sorted(self._shards)}")
        row = self._db.execute(
            "SELECT height, hash, seq FROM blocks WHERE shard = ? ORDER BY height DESC LIMIT 1", (shard,)
        ).fetchone()
        if row is None:
            return ShardHead(shard, 0, self._genesis.hash, 0)
        return ShardHead(shard, int(row[0]), bytes(row[1]), int(row[2]))

    def object(self, oid: bytes) -> StoredObject | None:
        row = self._db.execute("SELECT value FROM objects WHERE id = ?", (oid,)).fetchone()
        return None if row is None else self._load(StoredObject, row[0], f"object {oid.hex()[:12]}")

    def objects_of(self, owner: bytes) -> dict[bytes, StoredObject]:
        """Every stored object ``owner`` owns: what an account's state hash is over (L2L-1)."""
        rows = self._db.execute("SELECT id, value FROM objects WHERE owner = ? ORDER BY id", (owner,)).fetchall()
        return {bytes(oid): self._load(StoredObject, value, f"object {oid.hex()[:12]}") for oid, value in rows}

    def pending(self) -> list[Transaction]:
        """Queued transactions in the order they were accepted."""
        rows = self._db.execute("SELECT tx_id, encoded FROM pending ORDER BY seq").fetchall()
        return [self._load(Transaction, encoded, f"pending transaction {tx_id.hex()[:12]}") for tx_id, encoded in rows]

    def enclave_state(self, enclave: str) -> SealedState | None:
        row = self._db.execute("SELECT seq, sealed FROM enclave_states WHERE enclave = ?", (enclave,)).fetchone()
        return None if row is None else SealedState(enclave, int(row[0]), bytes(row[1]))

    def meta_items(self, prefix: str) -> dict[str, bytes]:
        """Every setting whose key starts with ``prefix`` (the node's pinned peer keys, for one)."""
        rows = self._db.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)).fetchall()
        return {key: value for key, value in rows}

    def meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def export_chain(self, path: Path) -> None:
        """Write the stored chain as a chain file (``sagachain audit`` reads it).

        Written beside ``path`` and renamed over it, so a crash never leaves a
        half-written file under the name an auditor will read.
        """
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        write_chain(partial, self._genesis, [f.block for f in self.blocks()])
        os.replace(partial, path)

    def replay(self) -> ChainState:
        """The public ledger rebuilt from genesis and the stored blocks, in final order."""
        state = ChainState(self._genesis)
        for final in self.blocks():
            state.apply_block(final.block)
        return state

    # -- decoding what was stored ---------------------------------------------

    def _load_genesis(self) -> Genesis:
        stored_hash, encoded = self._db.execute("SELECT hash, encoded FROM genesis WHERE id = 1").fetchone()
        genesis = self._load(Genesis, encoded, "the genesis")
        if genesis.hash != stored_hash:
            raise InputError(f"{self.path}: the stored genesis does not match its hash; the file is damaged: "
                             "restore it from a backup")
        return genesis

    def _load_block(self, seq: int, stored_hash: bytes, encoded: bytes) -> Block:
        try:
            block = block_from_wire(decode(encoded), f"block seq {seq}")
        except (ValueError, TypeError, RuleViolation) as exc:  # WireError is a ValueError, as are msgpack's errors
            raise InputError(f"{self.path}: stored block seq {seq} does not decode ({exc}); the file is damaged: "
                             "restore it from a backup") from None
        if block.hash != stored_hash:
            raise InputError(f"{self.path}: stored block seq {seq} does not match its hash; the file is damaged: "
                             "restore it from a backup")
        return block

    def _load(self, cls: type[T], encoded: bytes, what: str) -> T:
        try:
            return from_wire(cls, decode(encoded), what)
        except (ValueError, TypeError, RuleViolation) as exc:  # WireError is a ValueError, as are msgpack's errors
            raise InputError(f"{self.path}: {what} does not decode ({exc}); the file is damaged: "
                             "restore it from a backup") from None


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    """Open without creating (``rw``) or creating (``rwc``); transactions are begun explicitly."""
    try:
        return sqlite3.connect(f"{path.absolute().as_uri()}?mode={mode}", uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise InputError(f"{path}: cannot open the node database ({exc}); check the path and its permissions") from None


def _configure(db: sqlite3.Connection, path: Path) -> None:
    """Set the durability the node relies on, every time the file is opened.

    WAL: a commit appends to the log and readers (an operator's ``sqlite3``
    shell, a metrics scrape) never block the node's writes. ``synchronous=FULL``:
    in WAL mode NORMAL syncs the log only at checkpoints, so the last commits
    can vanish on power loss; a block the node has announced as final must not,
    so every commit waits for its fsync. Foreign keys: SQLite leaves them off
    unless asked, and the snapshot and object rows must name a stored block.
    """
    try:
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 5000")
    except sqlite3.Error as exc:
        raise InputError(f"{path}: cannot configure the node database ({exc}); check the file and its directory "
                         "are writable") from None
    if mode != "wal":
        raise InputError(f"{path}: SQLite refused write-ahead logging (journal mode {mode!r}); put the node's "
                         "directory on a local file system")


def _check_schema(db: sqlite3.Connection, path: Path) -> None:
    not_ours = (f"{path} is not a SagaChain node database; check the path, or move the file away and create "
                "the node again with `sagachain node init`")
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sagachain_schema'").fetchone() is None:
            raise InputError(not_ours)
        row = db.execute("SELECT format, version FROM sagachain_schema").fetchone()
    except sqlite3.DatabaseError:  # "file is not a database"
        raise InputError(not_ours) from None
    if row is None or row[0] != FORMAT:
        raise InputError(not_ours)
    if row[1] > SCHEMA_VERSION:
        raise InputError(f"{path} has node database schema version {row[1]}, newer than this program's "
                         f"{SCHEMA_VERSION}; upgrade sagachain to open it")
    if row[1] != SCHEMA_VERSION:
        raise InputError(f"{path} has unknown node database schema version {row[1]}; it was not written by sagachain")


def _statements(script: str) -> Iterator[str]:
    """The statements of the schema script, one by one, so they run inside our own transaction
    (``executescript`` would commit first)."""
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    yield from (statement for statement in code.split(";") if statement.strip())


@contextmanager
def _transaction(db: sqlite3.Connection, path: Path, what: str) -> Iterator[None]:
    """One write transaction: committed whole when the block exits normally, else rolled back whole.

    ``BEGIN IMMEDIATE`` takes the write lock before the checks that decide
    what to write, so nothing can change between checking and writing.
    """
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: {what} failed ({exc}); nothing of it was written. Check free disk space and "
                        "that no other process is writing the file") from exc

